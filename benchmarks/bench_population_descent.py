"""Population gradient descent of Theorem 3's model: the d × d form against the direct form.

Ghorbani et al.'s Fig. 1 network (σ = u², head fixed to ones, W and c trained, the ghorbani-fig1
spec: η = 0.01, momentum 0.9, s_w² = √d/N, rate_scaling "none", the offset centered) on the
quadratic task B = diag(Exp(1))/√d. The direct form descends on U (N, d) with the closed-form
risk (O(N d²) per step); the d × d form (lazylab.models._quadratic_descent, used by
Network.fit whenever it applies) descends on P = Q₀ᵀU (O(d³) per step). The direct form is
obtained by switching the d × d form off (``_network_training.applies`` replaced by a function
returning False, restored afterwards); both runs are the same trajectory up to round-off.

(a) Per-step time: fixed budgets of K and 1 steps, both forms, interleaved in rounds (d × d,
    direct, d × d, direct, …); time per step = (t_K − t_1)/(K − 1) (initialization, QR and the
    final diagnostics cancel), best of the rounds, in wall seconds and in CPU seconds of the
    process (all threads; steadier than wall on a shared, loaded machine); total fit time of the
    K-step fit; the ratios direct / d × d. d = 450, N ∈ {900, 2250, 4500}, K = 200 (quick:
    d = 45, N ∈ {90, 225, 450}, K = 300, where both are overhead-bound).
(b) ``--full`` (several minutes): one fig1 paper-width fit, N = 4500, d = 450, to the spec's
    tolerance 1e-4 within 20 000 steps, with both forms: steps, seconds, the certificate.

Run: ``python benchmarks/bench_population_descent.py [--quick] [--full]``. On a shared, loaded
machine ``OMP_NUM_THREADS=1`` keeps the threads of one process from spinning against each other
(CPU seconds then count work, not waiting).
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_framed, print_rows, row  # noqa: E402

import lazylab.models._network_training as network_training  # noqa: E402
from lazylab.models.network import Network  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "population_descent"
FULL = dict(dim=450, widths=(900, 2250, 4500), steps=200, rounds=2)
QUICK = dict(dim=45, widths=(90, 225, 450), steps=300, rounds=2)
PAPER_FIT = dict(dim=450, width=4500, max_steps=20_000, tol=1e-4)
FORMS = ("d×d", "direct")


@contextmanager
def _form(name: str):
    """Run Network.fit with the d × d form ("d×d") or the direct form ("direct")."""
    original = network_training.applies
    if name == "direct":
        network_training.applies = lambda *args: False
    try:
        yield
    finally:
        network_training.applies = original


def _fig1_network(width: int, dim: int, **budget) -> Network:
    """The ghorbani-fig1 NN spec (population GD to tolerance) at width N."""
    return Network(width=width, activation="quadratic", train="first", head_init="ones",
                   weight_scale=math.sqrt(math.sqrt(dim) / width), training="population",
                   learning_rate=0.01, momentum=0.9, rate_scaling="none", **budget)


def _task(dim: int):
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")


def _fit_seconds(form: str, width: int, dim: int, task, **budget) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, diagnostics) of one fig1 fit, seed 1."""
    with _form(form):
        wall, cpu = time.perf_counter(), time.process_time()
        found = _fig1_network(width, dim, **budget).fit(task, rng=np.random.default_rng(1))
        return time.perf_counter() - wall, time.process_time() - cpu, found.diagnostics


def step_case(dim: int, widths: tuple[int, ...], steps: int, rounds: int) -> list[dict]:
    """(a): per-step and K-step fit times of both forms, interleaved (best of ``rounds``)."""
    task, rows = _task(dim), []
    for width in widths:
        best = {(form, kind): math.inf for form in FORMS
                for kind in ("step wall", "step CPU", "fit wall", "fit CPU")}
        for _ in range(rounds):
            for form in FORMS:
                single = _fit_seconds(form, width, dim, task, steps=1)
                full = _fit_seconds(form, width, dim, task, steps=steps)
                for index, clock in enumerate(("wall", "CPU")):
                    step = (full[index] - single[index]) / (steps - 1)
                    best[form, f"step {clock}"] = min(best[form, f"step {clock}"], step)
                    best[form, f"fit {clock}"] = min(best[form, f"fit {clock}"], full[index])
        case = f"fig1 NN, N={width} d={dim}, {steps} steps, {torch.get_num_threads()} threads"
        rows += [row(BENCHMARK, case, f"{kind} {form}", value, "s",
                     "per step: (t_K − t_1)/(K − 1)" if kind.startswith("step") else "")
                 for (form, kind), value in best.items()]
        for clock in ("wall", "CPU"):
            rows.append(row(BENCHMARK, case, f"speed-up per step ({clock})",
                            best["direct", f"step {clock}"] / best["d×d", f"step {clock}"], "×",
                            f"direct / d×d, N/d = {width / dim:g}"))
    return rows


def paper_fit_case(dim: int, width: int, max_steps: int, tol: float) -> list[dict]:
    """(b): one fig1 paper-width fit to tolerance with each form."""
    task, rows = _task(dim), []
    case = f"fig1 NN to tol {tol:g}, N={width} d={dim}, {torch.get_num_threads()} threads"
    for form in FORMS:
        wall, cpu, found = _fit_seconds(form, width, dim, task, max_steps=max_steps, tol=tol)
        note = (f"converged {found['converged']:.0f}, stop {found['stop_reason']:.0f}, "
                f"halvings {found['halvings']:.0f}, criterion {found['criterion']:.6g}, "
                f"risk {found['population_risk']:.12g}")
        rows += [row(BENCHMARK, case, f"steps {form}", found["steps"], "steps", note),
                 row(BENCHMARK, case, f"fit wall {form}", wall, "s"),
                 row(BENCHMARK, case, f"fit CPU {form}", cpu, "s")]
    return rows


def _cases(quick: bool, full: bool):
    def cases(peak):
        yield step_case(**(QUICK if quick else FULL))
        if full:
            yield paper_fit_case(**PAPER_FIT)

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """The rows of case (a) (``benchmarks/run.py``; case (b) only from the command line)."""
    return [result for rows in _cases(quick, False) for result in rows]


if __name__ == "__main__":
    print_rows(_cases("--quick" in sys.argv, "--full" in sys.argv), width=48)
