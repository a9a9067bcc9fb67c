"""Benchmarks of the trainers through the Network regime (the paper's NN setting, THEORY §1.7).

(a) Online SGD throughput (samples/s) of the mean-field quadratic-activation network at the
    paper's largest size, N = 4500, d = 450, batch 100, fresh samples every step: float32 and
    float64 on the CPU, and on CUDA when ``torch.cuda.is_available()``. The matrix work per step
    is 4·b·N·d flops (forward XWᵀ, backward ∇W = (∂ℓ/∂pre)ᵀX); its rate is reported against the
    float64 matmul peak of this run (float32 can exceed 1); fresh draws and Python work included.
(e) Online SGD against a plain torch loop of the same model (issue 12: ≥ 1.0× at every width):
    σ = u², mean field, float32, d = 450, batch 100, N ∈ {45, 450, 4500} (quick: d = 45,
    N ∈ {9, 45}). The plain loops draw x = torch.randn(b, d), y = Σ_j B_jj x_j² + b₀ each step,
    then forward, loss, backward (autograd: the loss written out, or F.mse_loss with updates on
    .data; the faster in the run is "best autograd") or hand-written gradients, and the SGD
    update with the same multipliers (mean field: η·N on U and v, η on c). lazylab's fits and
    the loops alternate in rounds (same steps, initialization included); the ratio is the plain
    loop's time per step over lazylab's (> 1: lazylab faster), by CPU time (wall in the note),
    lazylab's fixed cost per fit (initialization, diagnostics) left out by 1-step fits.
(f) NT online SGD (σ = relu, float64, batch 100, d = 450, N ∈ {45, 450}; quick d = 45) per step
    against the plain loop of the same linear model (x by numpy, gates 1[XWᵀ > 0],
    f = c + Σ_i g_i a_i·x, A ← A − (η/b)(G∘r)ᵀX), the fixed cost (step-size calibration) left
    out as in (e); x by numpy's PCG64 bits, or SFC64 ("plain, SFC64") as lazylab's NT draws.
    ``--against PATH`` (e, f): also time the lazylab of another source tree (main's ``src``) in
    a worker process, alternating with this tree's fits in the same rounds.
(g) A learning curve of online SGD (σ = u², mean field, float32, batch 100, N = 45, d = 450;
    quick d = 45) at the step counts ``marks``: separate runs of each length against one run of
    the longest with ``checkpoints`` (models._network_checkpoints), alternating in rounds; the
    curves agree to the bit (tested), and the ratio is the restarts' time over the one run's.
(b) Population gradient descent: seconds per step of GD on the exact population risk
    (lazylab.risk.population_risk and its autograd gradient) at N = 450, d = 450 on the quadratic
    task, against the seconds per online SGD step at the same size (one step of each).
(c) One risk + gradient evaluation of the quadratic network (σ(u) = u²) on the quadratic task
    and the mixture, by the closed-form matrix polynomial (lazylab.risk.quadratic, O(N d²))
    against the general engine (population_risk of the TwoLayer): N = 225, d = 450 (best of
    repeats, after a warm-up), with the two risks' relative difference.

(g) The same risk + gradient at N ≥ d (the route that forms M = Wᵀdiag(a)W) with M's
    hand-written backward (lazylab.risk.quadratic._QuadraticForm: one N × d × d product) against
    autograd of (W∘a)ᵀW (two), mixture task, d = 450, N ∈ {900, 4500}: CPU seconds per
    evaluation, interleaved rounds, one thread; the ratio is autograd's time over lazylab's.

(d) Ghorbani et al.'s Fig. 1 network (σ = u², head fixed to ones, W and c trained) by population
    gradient descent to convergence on the quadratic task with B = diag(Exp(1))/√d: steps, time
    per fit, ms per step, the certificate and the gap of the normalized risk to Theorem 3
    (lazylab.theory.network_risk), per width. Settings: η = 0.01, momentum 0.9, tol 1e-4 (the
    population criterion), rate_scaling "none", the offset centered, and the initialization
    at the target's scale s_w² = Tr B / N (Tr M₀ = Tr B whatever N: the curvature of the mean
    direction, 8 Tr M + 2, stays ≈ 8 Tr B, so one η is stable at every width, and no eigen-
    direction starts far below its target). d = 450 at N ∈ {45, 97, 209, 450, 970, 4500} (full),
    d = 20 at N ∈ {5, 20, 40} (quick).

Run: ``python benchmarks/bench_training.py [--quick] [--plain] [--against PATH]`` (``--plain``:
cases (e) and (f) only).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import isolated, machine_framed, peak_memory_mb, print_rows, row, timer  # noqa

from lazylab.models.network import Network  # noqa: E402
from lazylab.models.neural_tangent import NeuralTangent  # noqa: E402
from lazylab.predictors import TwoLayer  # noqa: E402
from lazylab.risk import population_risk  # noqa: E402
from lazylab.risk import quadratic as quadratic_risk  # noqa: E402
from lazylab.risk.quadratic import quadratic_network_risk  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402
from lazylab.theory import network_risk  # noqa: E402

BENCHMARK = "training"
FULL = {"online": dict(width=4500, dim=450, batch=100, steps=200),
        "population": dict(width=450, dim=450, steps=3),
        "closed_form": dict(width=225, dim=450, repeats=5),
        "quadratic_form": dict(dim=450, widths=(900, 4500), rounds=4),
        "theorem3": dict(dim=450, widths=(45, 97, 209, 450, 970, 4500), max_steps=20_000),
        "against_plain": dict(dim=450, widths=(45, 450, 4500), steps=(2000, 500, 100), rounds=3),
        "tangent": dict(dim=450, widths=(45, 450), steps=(1000, 200), rounds=3),
        "curve": dict(dim=450, width=45, marks=(300, 1000, 3000), rounds=3)}
QUICK = {"online": dict(width=450, dim=45, batch=100, steps=50),
         "population": dict(width=45, dim=45, steps=3),
         "closed_form": dict(width=225, dim=450, repeats=3),
         "quadratic_form": dict(dim=45, widths=(90,), rounds=2),
         "theorem3": dict(dim=20, widths=(5, 20, 40), max_steps=20_000),
         "against_plain": dict(dim=45, widths=(9, 45), steps=(300, 300), rounds=2),
         "tangent": dict(dim=45, widths=(9, 45), steps=(300, 300), rounds=2),
         "curve": dict(dim=45, width=9, marks=(100, 300, 1000), rounds=2)}


def _network(width: int, **options) -> Network:
    return Network(width=width, activation="quadratic", parameterization="mean_field",
                   learning_rate=1e-4, **options)


def online_case(width: int, dim: int, batch: int, steps: int, dtype: str, device: str,
                peak: float) -> list[dict]:
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    net = _network(width, training="online", batch_size=batch, steps=steps, dtype=dtype,
                   device=device)
    replace(net, steps=min(steps, 5)).fit(task, rng=np.random.default_rng(1))  # warm-up
    if device != "cpu":
        torch.cuda.synchronize()
    with timer() as clock:
        model = net.fit(task, rng=np.random.default_rng(2))
        if device != "cpu":
            torch.cuda.synchronize()
    seconds = clock["seconds"]
    samples = model.diagnostics["samples_seen"] / seconds
    gflops = 4 * batch * width * dim * steps / seconds / 1e9
    case = f"online N={width} d={dim} batch={batch} {dtype} {device}"
    note = f"{steps} steps in {seconds:.2f} s, {torch.get_num_threads()} torch threads"
    return [row(BENCHMARK, case, "throughput", samples, "samples/s", note),
            row(BENCHMARK, case, "matmul rate", gflops, "GFLOP/s", "4·b·N·d per step"),
            row(BENCHMARK, case, "fraction of float64 matmul peak", gflops / peak, "ratio",
                f"peak {peak:.1f} GFLOP/s measured in this run")]


def curve_case(dim: int, width: int, marks: tuple[int, ...], rounds: int) -> list[dict]:
    """(g) A learning curve by separate runs against one run with checkpoints."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    options = dict(training="online", batch_size=100, dtype="float32")
    one = _network(width, steps=marks[-1], checkpoints=marks, **options)
    runs = {"restarts": lambda: [_network(width, steps=t, **options).fit(
                task, rng=np.random.default_rng(2)) for t in marks],
            "checkpoints": lambda: one.fit(task, rng=np.random.default_rng(2))}
    totals = {name: 0.0 for name in runs}
    for _ in range(rounds):
        for name, function in runs.items():
            with timer() as clock:
                function()
            totals[name] += clock["seconds"]
    case = f"learning curve N={width} d={dim} batch=100 float32 at steps {list(marks)}"
    return [row(BENCHMARK, case, f"{name} time", total / rounds, "s", f"mean of {rounds} rounds")
            for name, total in totals.items()] + [
        row(BENCHMARK, case, "restarts / checkpoints", totals["restarts"] / totals["checkpoints"],
            "x", f"steps {sum(marks)} against {marks[-1]}")]


def _plain_loop(width: int, dim: int, steps: int, diagonal, offset: float, rate: float,
                kind: str, device: str = "cpu") -> None:
    """The simplest fast torch loops of the mean-field σ = u² network (case (e)): autograd with
    the loss written out ("autograd") or by ``F.mse_loss`` and updates on ``.data`` ("autograd,
    mse_loss"), or hand-written gradients ("hand-written"); every tensor on ``device``
    (``diagonal`` must be there already)."""
    generator = torch.Generator(device).manual_seed(0)
    u = torch.randn(width, dim, generator=generator, device=device) / math.sqrt(dim)
    v = torch.randn(width, generator=generator, device=device)
    c = torch.zeros((), device=device)
    if kind != "hand-written":
        u.requires_grad_(), v.requires_grad_(), c.requires_grad_()
    for _ in range(steps):
        x = torch.randn(100, dim, generator=generator, device=device)
        y = (x * x) @ diagonal + offset
        if kind == "hand-written":  # r = f − y, g = 2r/b: ηN∇U = η((2g vᵀ)∘pre)ᵀx, ηN∇v = η hᵀg
            pre = x @ u.T
            features = pre * pre
            g = (features @ v / width + c - y) * (2.0 / x.shape[0])
            u.sub_(((2.0 * g[:, None] * v) * pre).T @ x, alpha=rate)
            v.sub_(features.T @ g, alpha=rate)
            c.sub_(g.sum(), alpha=rate)
            continue
        output = (x @ u.T).square() @ v / width + c
        loss = (y - output).square().mean() if kind == "autograd" else F.mse_loss(output, y)
        u.grad = v.grad = c.grad = None
        loss.backward()
        if kind == "autograd":
            with torch.no_grad():
                u.sub_(u.grad, alpha=rate * width), v.sub_(v.grad, alpha=rate * width)
                c.sub_(c.grad, alpha=rate)
        else:  # the update on .data: no grad-mode switch
            u.data.sub_(u.grad, alpha=rate * width), v.data.sub_(v.grad, alpha=rate * width)
            c.data.sub_(c.grad, alpha=rate)


PLAIN_KINDS = ("autograd", "autograd, mse_loss", "hand-written")


def _fit_times(kind: str, width: int, dim: int, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one lazylab fit of case (e) ("network") or (f) ("tangent")."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    model = (_network(width, training="online", batch_size=100, steps=steps, dtype="float32")
             if kind == "network" else
             NeuralTangent(width=width, activation="relu", solver="sgd", batch_size=100,
                           steps=steps, sgd_tol=1e-12))
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(task, rng=np.random.default_rng(2))
    return time.perf_counter() - wall, time.process_time() - cpu


class _Tree:
    """lazylab fits timed in a worker process that imports lazylab from another source tree
    (``--against PATH``, e.g. the unchanged main checkout), so that the two trees' fits
    alternate in the same rounds; the worker times each fit itself (no pipe in the time)."""

    def __init__(self, source: str):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(torch.get_num_threads())],
            env=dict(os.environ, PYTHONPATH=source), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)

    def __call__(self, kind: str, width: int, dim: int, steps: int) -> tuple[float, float]:
        self.process.stdin.write(f"{kind} {width} {dim} {steps}\n")
        self.process.stdin.flush()
        wall, cpu = self.process.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self) -> None:
        self.process.stdin.close(), self.process.wait()


def _worker() -> None:
    """``--worker THREADS``: answer each line "kind width dim steps" by :func:`_fit_times`."""
    torch.set_num_threads(int(sys.argv[sys.argv.index("--worker") + 1]))
    for line in sys.stdin:
        kind, width, dim, steps = line.split()
        print(*_fit_times(kind, int(width), int(dim), int(steps)), flush=True)


def _interleaved(runs: dict, rounds: int) -> dict:
    """Total (wall, CPU) seconds of each run, alternating in rounds (or the times it returns)."""
    totals = {name: np.zeros(2) for name in runs}
    for _ in range(rounds):
        for name, function in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            times = function()
            totals[name] += (times if times is not None else
                             (time.perf_counter() - wall, time.process_time() - cpu))
    return totals


def _fit_runs(kind: str, width: int, dim: int, count: int, tree: _Tree | None) -> dict:
    """lazylab's fits of ``count`` steps and of 1 step, here and in ``tree``'s; warmed up."""
    runs = {"lazylab": lambda: _fit_times(kind, width, dim, count),
            "lazylab, 1 step": lambda: _fit_times(kind, width, dim, 1)}
    _fit_times(kind, width, dim, 5)
    if tree is not None:
        tree(kind, width, dim, 5)
        runs |= {"other tree": lambda: tree(kind, width, dim, count),
                 "other tree, 1 step": lambda: tree(kind, width, dim, 1)}
    return runs


def _ratio_rows(case: str, totals: dict, count: int, rounds: int, plain: tuple[str, ...],
                samples: int = 100) -> list[dict]:
    """Throughput, fixed cost, per-step ratios (fixed cost excluded) against each plain loop by
    CPU time (under load the wall clock also counts the waits for a core) and by wall time."""
    load, rows = f"load {os.getloadavg()[0]:.2f}", []
    for tree in ("lazylab", "other tree") if "other tree" in totals else ("lazylab",):
        total, one = totals[tree], totals[f"{tree}, 1 step"]
        steady = (total - one) / (count - 1)  # (wall, CPU) seconds per step, summed over rounds
        rows += [row(BENCHMARK, case, f"{tree} throughput", rounds * count * samples / total[0],
                     "samples/s", f"wall; {rounds} rounds × {count} steps, "
                     f"{torch.get_num_threads()} threads, {load}"),
                 row(BENCHMARK, case, f"{tree} CPU seconds per step", steady[1] / rounds, "s",
                     load),
                 row(BENCHMARK, case, f"{tree} fixed cost per fit", (one[0] - steady[0]) / rounds,
                     "s", "wall; initialization + diagnostics")]
        for name in plain:
            ratio = totals[name] / count / steady
            rows.append(row(BENCHMARK, case, f"per step, {tree} / plain ({name})", ratio[1],
                            "ratio", f"CPU time; wall {ratio[0]:.3f}; plain "
                            f"{rounds * count * samples / totals[name][0]:.4g} samples/s, {load}"))
    return rows


def against_plain_case(dim: int, widths: tuple[int, ...], steps: tuple[int, ...],
                       rounds: int, against: str | None = None) -> list[dict]:
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    diagonal, offset = torch.diagonal(task.matrix).float(), float(task.offset)
    tree, rows = (None if against is None else _Tree(against)), []
    for width, count in zip(widths, steps):
        runs = _fit_runs("network", width, dim, count, tree)
        for kind in PLAIN_KINDS:
            runs[kind] = (lambda kind=kind: _plain_loop(width, dim, count, diagonal, offset,
                                                        1e-4, kind))
        totals = _interleaved(runs, rounds)
        case = f"online SGD vs plain torch N={width} d={dim} batch=100 float32"
        best = min(PLAIN_KINDS[:2], key=lambda kind: totals[kind][1])
        totals[f"best autograd: {best}"] = totals[best]
        rows += _ratio_rows(case, totals, count, rounds, (f"best autograd: {best}",
                                                          "hand-written"))
    if tree is not None:
        tree.close()
    return rows


def _plain_tangent_loop(weights: torch.Tensor, steps: int, diagonal, offset: float,
                        rate: float, bits=np.random.PCG64) -> None:
    """The plain loop of NT online SGD, σ = relu (case (f)): x by numpy (1.7× faster than
    torch.randn in float64 here), f = c + Σ_i 1[w_i·x > 0] a_i·x, A −= (η/b)(G∘r)ᵀX."""
    generator = np.random.Generator(bits(0))
    width, dim = weights.shape
    a, c = torch.zeros(width, dim, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for _ in range(steps):
        x = torch.from_numpy(generator.standard_normal((100, dim)))
        y = (x * x) @ diagonal + offset
        gates = (x @ weights.T > 0).double()
        residual = (gates * (x @ a.T)).sum(1) + c - y
        a.sub_((gates * residual[:, None]).T @ x, alpha=rate / 100)
        c = c - rate * residual.mean()


def tangent_case(dim: int, widths: tuple[int, ...], steps: tuple[int, ...], rounds: int,
                 against: str | None = None) -> list[dict]:
    """(f) NT online SGD (relu, float64, batch 100) per step against the plain loop."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    diagonal, offset = torch.diagonal(task.matrix), float(task.offset)
    tree, rows = (None if against is None else _Tree(against)), []
    for width, count in zip(widths, steps):
        weights = torch.randn(width, dim, dtype=torch.float64) / math.sqrt(dim)
        runs = _fit_runs("tangent", width, dim, count, tree)
        for name, bits in (("plain", np.random.PCG64), ("plain, SFC64", np.random.SFC64)):
            runs[name] = lambda b=bits: _plain_tangent_loop(weights, count, diagonal, offset,
                                                            1e-4, b)
        totals = _interleaved(runs, rounds)
        case = f"NT online SGD vs plain torch N={width} d={dim} batch=100 float64 relu"
        rows += _ratio_rows(case, totals, count, rounds, ("plain", "plain, SFC64"))
    if tree is not None:
        tree.close()
    return rows


def population_case(width: int, dim: int, steps: int) -> list[dict]:
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    net = _network(width, training="population", steps=steps)
    with timer() as clock:
        model = net.fit(task, rng=np.random.default_rng(1))
    per_step = clock["seconds"] / (steps + 1)  # + 1: the exact risk of the diagnostics
    online = _network(width, training="online", steps=steps, batch_size=100)
    with timer() as sgd_clock:
        online.fit(task, rng=np.random.default_rng(1))
    sgd_step = sgd_clock["seconds"] / steps
    case = f"population GD N={width} d={dim} quadratic"
    return [row(BENCHMARK, case, "seconds per exact step", per_step, "s",
                f"risk {model.diagnostics['population_risk']:.4g} after {steps} steps"),
            row(BENCHMARK, case, "exact step / online SGD step (batch 100)", per_step / sgd_step,
                "ratio", f"online step {sgd_step * 1e3:.1f} ms"),
            row(BENCHMARK, case, "peak memory", peak_memory_mb(), "MB", "whole process so far")]


def _risk_and_gradient(risk, task, values) -> tuple[float, float]:
    """(seconds, risk) of one evaluation of risk(task, W, a, c) and its gradient."""
    weights, head, offset = (v.clone().requires_grad_(True) for v in values)
    with timer() as clock:
        value = risk(task, weights, head, offset)
        value.backward()
    return clock["seconds"], float(value.detach())


def _engine(task, weights, head, offset):
    return population_risk(TwoLayer("quadratic", weights, head, offset=offset), task)


def closed_form_case(width: int, dim: int, repeats: int) -> list[dict]:
    g = np.random.default_rng(0)
    values = (torch.from_numpy(g.standard_normal((width, dim))) / np.sqrt(dim),
              torch.from_numpy(g.standard_normal(width)) / width, torch.tensor(0.1))
    values = tuple(v.double() for v in values)
    rows = []
    for name in ("quadratic", "gaussian_mixture"):
        task = TASKS[name](rng=np.random.default_rng(1), dim=dim)
        timings = {}
        for label, risk in (("closed form", quadratic_network_risk), ("engine", _engine)):
            runs = [_risk_and_gradient(risk, task, values) for _ in range(repeats + 1)]
            timings[label] = (min(t for t, _ in runs[1:]), runs[0][1])
        (fast, exact), (slow, general) = timings["closed form"], timings["engine"]
        case = f"quadratic-network risk+gradient N={width} d={dim} {name}"
        rows += [row(BENCHMARK, case, "closed form (lazylab.risk.quadratic)", fast, "s",
                     f"best of {repeats}"),
                 row(BENCHMARK, case, "engine (population_risk of TwoLayer)", slow, "s",
                     f"best of {repeats}"),
                 row(BENCHMARK, case, "engine / closed form", slow / fast, "ratio",
                     f"risks agree to {abs(exact - general) / abs(general):.1e} relative")]
    return rows


def _autograd_form(weights, head):
    return (weights * head[:, None]).T @ weights


def quadratic_form_case(dim: int, widths: tuple[int, ...], rounds: int) -> list[dict]:
    """(g): risk + gradient with M's hand-written backward against autograd's, interleaved."""
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(0), dim=dim)
    hand_written, rows = quadratic_risk._m, []
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for width in widths:
            g = np.random.default_rng(width)
            values = (torch.from_numpy(g.standard_normal((width, dim)) / np.sqrt(dim)),
                      torch.from_numpy(g.standard_normal(width) / width), torch.tensor(0.1))
            times = {"lazylab": [], "autograd": []}
            for _ in range(rounds):
                for label, form in (("lazylab", hand_written), ("autograd", _autograd_form)):
                    quadratic_risk._m = form
                    start = time.process_time()
                    for _ in range(3):
                        _risk_and_gradient(quadratic_network_risk, task,
                                           tuple(v.double() for v in values))
                    times[label].append((time.process_time() - start) / 3)
            quadratic_risk._m = hand_written
            fast, slow = (float(np.median(times[k])) for k in ("lazylab", "autograd"))
            case = f"quadratic-network risk+gradient N={width} d={dim} mixture, N >= d"
            rows += [row(BENCHMARK, case, "CPU s per evaluation, hand-written backward", fast,
                         "s", f"median of {rounds} interleaved rounds, 1 thread"),
                     row(BENCHMARK, case, "autograd / hand-written", slow / fast, "ratio",
                         f"autograd {slow * 1e3:.1f} ms")]
    finally:
        quadratic_risk._m = hand_written
        torch.set_num_threads(previous)
    return rows


def theorem3_case(dim: int, widths: tuple[int, ...], max_steps: int) -> list[dict]:
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    trace = float(torch.trace(task.matrix))
    rows = []
    for width in widths:
        net = Network(width=width, activation="quadratic", train="first", head_init="ones",
                      weight_scale=float(np.sqrt(trace / width)), learning_rate=0.01,
                      momentum=0.9, rate_scaling="none", max_steps=max_steps, tol=1e-4)
        with timer() as clock:
            model = net.fit(task, rng=np.random.default_rng(1))
        found = model.diagnostics
        gap = found["population_risk"] / task.null_risk - float(network_risk(width / dim,
                                                                            task.matrix.numpy()))
        case = f"Theorem 3 network, population GD, N={width} d={dim}"
        note = (f"converged {found['converged']:.0f}, stop {found['stop_reason']:.0f}, "
                f"halvings {found['halvings']:.0f}")
        rows += [row(BENCHMARK, case, "steps", found["steps"], "steps", note),
                 row(BENCHMARK, case, "time per fit", clock["seconds"], "s", note),
                 row(BENCHMARK, case, "time per step", clock["seconds"] / found["steps"], "s"),
                 row(BENCHMARK, case, "normalized risk − Theorem 3", gap, "", "goal |gap| ≤ 1e-3")]
    return rows


def _cases(quick: bool, only_plain: bool, against: str | None = None):
    """Yield each case's rows as it finishes (machine-framed: the matmul peak first)."""
    sizes = QUICK if quick else FULL

    def cases(peak):
        yield isolated(against_plain_case, *sizes["against_plain"].values(), against)
        yield isolated(tangent_case, *sizes["tangent"].values(), against)
        if only_plain:
            return
        yield curve_case(**sizes["curve"])
        for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
            for dtype in ("float32", "float64"):
                yield online_case(**sizes["online"], dtype=dtype, device=device, peak=peak)
        yield population_case(**sizes["population"])
        yield closed_form_case(**sizes["closed_form"])
        yield quadratic_form_case(**sizes["quadratic_form"])
        yield theorem3_case(**sizes["theorem3"])

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    return [result for rows in _cases(quick, False) for result in rows]


if __name__ == "__main__":
    if "--worker" in sys.argv:
        _worker()
    else:
        source = sys.argv[sys.argv.index("--against") + 1] if "--against" in sys.argv else None
        print_rows(_cases("--quick" in sys.argv, "--plain" in sys.argv, source), width=64)
