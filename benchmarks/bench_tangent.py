"""The neural-tangent model at the paper's sizes (Ghorbani et al. 2019, d = 450; issue 12 item 1).

(a) Exact population NT by preconditioned CG (κ ⊗ I preconditioner, lazylab.models.population)
    at N ∈ {45, 225, 450}, relu and quadratic, quadratic target B = diag(Exp(1))/√d: CG
    iterations, time, risk. The block-Jacobi numbers before this change are in issue 12
    (σ = u², N = d = 450: 3185 iterations, 39.6 s quiet / 292 s loaded; N = 225: 85; relu N = 450:
    104) and are quoted in the note, not re-run.
(b) NT least squares on n = 10⁵ samples at N = 45 (Nd = 20 250 unknowns) by the matrix-free
    Kronecker-preconditioned CG, against the Jacobi-preconditioned CG it replaces (same operator,
    capped at 300 iterations): iterations, time, and the exact risk of the fit.
(c) NT online SGD throughput at N = 225 (samples/s, batch 100, float64), sample draws included.
(d) σ = u² at N ≥ d on ghorbani-fig2's mixture: the best quadratic form
    (lazylab.models._tangent_quadratic) against the CG fit it replaces there, in one run: time,
    ratio and the two risks. (a) keeps measuring the CG (the shortcut switched off).
(e) The dual with few samples (xie-semirandom's digits: n = 1000, d = 64, N = 1024 semi-random
    units of degree 1, p = 65,536; the selection's 11-ridge default grid): the ridge path from
    the dense dual matrix (lazylab.models._tangent_dual.DenseDual) against the dual CG path
    (one multishift Krylov space) and against a cold dual CG fit per ridge (the route before
    SemiRandom had a path), in one run: time, ratios, and the largest difference of the
    predictions on held-out inputs relative to their norm.

Run: ``python benchmarks/bench_tangent.py [--quick] [--dual]`` (``--dual``: part (e) alone).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import row, timer  # noqa: E402

from lazylab.activations import get_activation  # noqa: E402
from lazylab.experiments.selection import default_ridge_grid, feature_scale  # noqa: E402
from lazylab.models import NeuralTangent, SemiRandom, optimal_tangent, population  # noqa: E402
from lazylab.models import _tangent_dual  # noqa: E402
from lazylab.models.neural_tangent import GatedFeatures  # noqa: E402
from lazylab.risk import population_risk  # noqa: E402
from lazylab.solvers import conjugate_gradient  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "tangent"
FULL = dict(dim=450, widths=(45, 225, 450), ls_width=45, samples=100_000, sgd_width=225,
            sgd_steps=300, form_widths=(900, 2250, 4500), dual_samples=1000, dual_width=1024)
QUICK = dict(dim=60, widths=(6, 30, 60), ls_width=6, samples=10_000, sgd_width=30,
             sgd_steps=200, form_widths=(120, 300), dual_samples=300, dual_width=128)
BEFORE = {("quadratic", 450): "3185 its, 39.6 s quiet / 292 s loaded", ("quadratic", 225): "85 its",
          ("relu", 450): "104 its"}


def _task(dim):
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, noise=0.0)


def _conjugate_gradient_fit(task, activation, weights):
    """optimal_tangent with the quadratic-form shortcut switched off: the CG route."""
    shortcut = population.quadratic_tangent
    population.quadratic_tangent = lambda *args, **kwargs: None
    try:
        return optimal_tangent(task, activation, weights, tol=1e-10)
    finally:
        population.quadratic_tangent = shortcut


def exact_tangent(config):
    task, rows = _task(config["dim"]), []
    for activation in ("relu", "quadratic"):
        for width in config["widths"]:
            weights = torch.as_tensor(np.random.default_rng(width).standard_normal(
                (width, config["dim"])) / math.sqrt(config["dim"]))
            with timer() as t:
                fit = _conjugate_gradient_fit(task, activation, weights)
            case = f"{activation} N={width} d={config['dim']}"
            before = BEFORE.get((activation, width), "") if config["dim"] == 450 else ""
            note = f"risk {fit.diagnostics['population_risk']:.10g}; converged " \
                   f"{fit.diagnostics['cg_converged']:.0f}" + (f"; before: {before}" if before else "")
            rows += [row(BENCHMARK, case, "cg_iterations", fit.diagnostics["cg_iterations"], "",
                         note),
                     row(BENCHMARK, case, "time", t["seconds"], "s", "exact NT fit, tol 1e-10")]
    return rows


def _jacobi_cg(features, x, y, max_iter):
    """The replaced sample solver: CG on the centered normal equations, Jacobi preconditioner."""
    n = x.shape[0]
    cache = features.cache(x)
    rhs, total, diagonal = features.moments(x, y - y.mean(), cache)
    mean = total / n
    jacobi = (diagonal / n - mean * mean).clamp_min(1e-300)
    return conjugate_gradient(lambda v: features.gram_apply(x, v, cache) / n - mean * (mean @ v),
                              rhs / n, preconditioner=lambda r: r / jacobi, tol=1e-10,
                              max_iter=max_iter)


def least_squares(config):
    task, dim, width = _task(config["dim"]), config["dim"], config["ls_width"]
    data = task.sample(config["samples"], rng=np.random.default_rng(1))
    regime = NeuralTangent(width=width, solver="cg", tol=1e-10)
    with timer() as t:
        fit = regime.fit(data, rng=np.random.default_rng(2))
    case = f"relu N={width} d={dim} n={config['samples']}"
    d = fit.diagnostics
    rows = [row(BENCHMARK, case, "cg_iterations", d["cg_iterations"], "",
                f"Kronecker preconditioner; residual {d['cg_residual']:.1e}, converged "
                f"{d['cg_converged']:.0f}; exact risk {float(population_risk(fit, task)):.6g}"),
            row(BENCHMARK, case, "time", t["seconds"], "s", "NT least squares, matrix-free CG")]
    features = GatedFeatures(fit.weights, get_activation("relu").derivative())
    with timer() as t:
        jacobi = _jacobi_cg(features, data.x, data.y, max_iter=300)
    rows += [row(BENCHMARK, case, "jacobi_cg_iterations", jacobi.iterations, "",
                 f"the replaced Jacobi preconditioner; residual {jacobi.residual:.1e}, "
                 f"converged {jacobi.converged:d} (cap 300)"),
             row(BENCHMARK, case, "jacobi_time", t["seconds"], "s", "same operator, Jacobi PCG")]
    return rows


def online_sgd(config):
    task, dim, width = _task(config["dim"]), config["dim"], config["sgd_width"]
    regime = NeuralTangent(width=width, solver="sgd", batch_size=100, steps=config["sgd_steps"],
                           sgd_tol=1e-12)
    with timer() as t:
        fit = regime.fit(task, rng=np.random.default_rng(3))
    samples = fit.diagnostics["samples_seen"] + fit.diagnostics["calibration_samples"]
    return [row(BENCHMARK, f"relu N={width} d={dim} batch 100", "throughput",
                samples / t["seconds"], "samples/s",
                f"{fit.diagnostics['steps']:.0f} steps in {t['seconds']:.2f} s, float64, "
                "fresh task samples each step")]


def quadratic_form(config):
    dim = config["dim"]
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(0), dim=dim, delta="paper")
    rows = []
    for width in config["form_widths"]:
        weights = torch.as_tensor(np.random.default_rng(width).standard_normal((width, dim))
                                  / math.sqrt(dim))
        with timer() as fast:
            form = optimal_tangent(task, "quadratic", weights, tol=1e-10)
        with timer() as slow:
            cg = _conjugate_gradient_fit(task, "quadratic", weights)
        case = f"quadratic N={width} d={dim} mixture"
        rows += [row(BENCHMARK, case, "time, quadratic form", fast["seconds"], "s",
                     f"risk {form.diagnostics['population_risk']:.12g}, residual "
                     f"{form.diagnostics['cg_residual']:.1e}"),
                 row(BENCHMARK, case, "speed-up over CG", slow["seconds"] / fast["seconds"], "x",
                     f"CG {slow['seconds']:.2f} s, {cg.diagnostics['cg_iterations']:.0f} its, "
                     f"risk {cg.diagnostics['population_risk']:.12g}")]
    return rows


def _dual_cg(function):
    """``function()`` with the dense dual switched off (the dual by CG)."""
    limit = _tangent_dual.DENSE_MAX_SAMPLES
    _tangent_dual.DENSE_MAX_SAMPLES = 0
    try:
        return function()
    finally:
        _tangent_dual.DENSE_MAX_SAMPLES = limit


def dense_dual(config):
    task = TASKS["digits"](rng=np.random.default_rng(0), label="parity")
    data = task.sample(config["dual_samples"], rng=np.random.default_rng(1))
    held_out = task.sample(400, rng=np.random.default_rng(2)).x
    regime = SemiRandom(width=config["dual_width"], degree=1, solver="cg")  # auto at full size
    initial = regime.initial_model(data, rng=np.random.default_rng(3))
    ridges = list(default_ridge_grid(feature_scale(initial, data.x)))
    with timer() as dense:
        path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    with timer() as krylov:
        shared = _dual_cg(lambda: regime.fit_path(data, ridges, rng=np.random.default_rng(3)))
    with timer() as cold:
        fits = _dual_cg(lambda: [dataclasses.replace(regime, ridge=ridge).fit(
            data, rng=np.random.default_rng(3)) for ridge in ridges])

    def gap(models):
        return max(float((a.predict(held_out) - b.predict(held_out)).norm()
                         / b.predict(held_out).norm()) for a, b in zip(path, models))

    case = (f"semi-random s=1 N={regime.width} digits n={data.x.shape[0]} "
            f"p={regime.width * data.x.shape[1]}, {len(ridges)} ridges")
    iterations = [int(m.diagnostics["cg_iterations"]) for m in path]
    return [row(BENCHMARK, case, "time, dense dual path", dense["seconds"], "s",
                f"continuing CG iterations {sum(iterations)}; every ridge certified: "
                f"{all(m.diagnostics['cg_converged'] == 1.0 for m in path)}"),
            row(BENCHMARK, case, "speed-up over the dual CG path", krylov["seconds"]
                / dense["seconds"], "x", f"multishift CG {krylov['seconds']:.2f} s; predictions "
                f"within {gap(shared):.1e}"),
            row(BENCHMARK, case, "speed-up over a cold dual CG fit per ridge", cold["seconds"]
                / dense["seconds"], "x", f"{cold['seconds']:.2f} s, "
                f"{sum(int(m.diagnostics['cg_iterations']) for m in fits)} iterations; "
                f"predictions within {gap(fits):.1e}")]


def run(quick: bool = False, dual_only: bool = False) -> list[dict]:
    config = QUICK if quick else FULL
    if dual_only:
        return dense_dual(config)
    return (exact_tangent(config) + least_squares(config) + online_sgd(config)
            + quadratic_form(config) + dense_dual(config))


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv, dual_only="--dual" in sys.argv):
        print(entry)
