"""Benchmarks of the regimes' solvers: the neural-tangent conjugate gradient.

(a) Exact population NT fit (lazylab.models.optimal_tangent through NeuralTangent.fit(task)): ReLU,
    quadratic target B = diag(Exp(1))/√d, w_i ~ N(0, I/d), N = 10·d (ρ = 10, Ghorbani et al.'s
    largest width), up to N·d = 2·10⁶ (d = 450, N = 4500, the paper's setting). Reports the
    operator build time (dual activations of all N² pairs), CG iterations to a 1e-8 relative
    residual, seconds per iteration, and the throughput of one operator application (6·N²·d
    flops: three N × N × d GEMMs) against the float64 matmul peak measured in the same run.
    A size is skipped (and reported as skipped, with the projected time) when the previous
    case's time scaled by (N_next/N)² — the N² pair count of the operator build, which
    dominates — exceeds ``budget`` seconds.
(b) The sample-based matrix-free NT CG (NeuralTangent(solver="cg")): n samples in row blocks,
    6·n·N·d flops per iteration (three GEMMs per block), capped at ``sample_iterations``
    iterations (the residual reached is reported).
(c) At the target size N·d = 2·10⁶ (d = 450, N = 4500) one application of each CG operator is
    timed even when the full fit is skipped: the exact operator with synthetic coefficient
    matrices (its cost does not depend on their values) and the sample Gram Φᵀ(Φv) for
    n = 2000 samples. Iterations × that time is the CG cost once the operator exists.

Run: ``python benchmarks/bench_regimes.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_gflops, peak_memory_mb, row, timer  # noqa: E402

from lazylab.activations import get_activation  # noqa: E402
from lazylab.gaussian.tangent import TangentOperator, tangent_operator  # noqa: E402
from lazylab.models import NeuralTangent  # noqa: E402
from lazylab.models._common import draw_weights  # noqa: E402
from lazylab.models.neural_tangent import GatedFeatures  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "regimes"
FULL = {"population": [(20, 200), (30, 300), (40, 400), (100, 1000), (450, 4500)],
        "samples": [(50, 500, 10_000)], "budget": 150.0, "sample_iterations": 200,
        "apply": (450, 4500, 2000)}
QUICK = {"population": [(20, 200), (50, 500)], "samples": [(20, 100, 2000)], "budget": 30.0,
         "sample_iterations": 100, "apply": (100, 1000, 1000)}
TOL = 1e-8


def _population_case(dim: int, width: int, peak: float) -> list[dict]:
    case = f"d={dim}, N={width}, N·d={dim * width:.1e}"
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    weights = draw_weights(np.random.default_rng(1), width, dim)
    with timer() as build:
        operator = tangent_operator("relu", weights)
    probe = torch.from_numpy(np.random.default_rng(2).standard_normal((width, dim)))
    with timer() as one:
        operator.apply(probe)
    del operator
    regime = NeuralTangent(width=width, activation="relu", tol=TOL)
    with timer() as total:
        model = regime.fit(task, rng=np.random.default_rng(1))
    iterations = int(model.diagnostics["cg_iterations"])
    apply_gflops = 6 * width ** 2 * dim / one["seconds"] / 1e9
    return [
        row(BENCHMARK, f"population NT {case}", "operator build", build["seconds"], "s",
            "dual activations κ, D¹¹, D¹², D²² over all N² pairs"),
        row(BENCHMARK, f"population NT {case}", "CG iterations", iterations, "",
            f"relative residual {model.diagnostics['cg_residual']:.1e} (tol {TOL})"),
        row(BENCHMARK, f"population NT {case}", "fit total", total["seconds"], "s",
            f"build + PCG; risk/R0 = {model.diagnostics['population_risk'] / task.null_risk:.4f}"),
        row(BENCHMARK, f"population NT {case}", "operator apply", one["seconds"], "s",
            f"{apply_gflops:.1f} GFLOP/s = {apply_gflops / peak:.0%} of matmul peak"),
        row(BENCHMARK, f"population NT {case}", "peak memory", peak_memory_mb(), "MB", ""),
    ]


def _sample_case(dim: int, width: int, n: int, peak: float, cap: int) -> list[dict]:
    case = f"d={dim}, N={width}, n={n}"
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal",
                              noise=0.1)
    data = task.sample(n, rng=np.random.default_rng(3))
    regime = NeuralTangent(width=width, solver="cg", ridge=1e-3, tol=TOL, max_iter=cap)
    with timer() as total:
        model = regime.fit(data, rng=np.random.default_rng(1))
    iterations = int(model.diagnostics["cg_iterations"])
    per = total["seconds"] / max(iterations, 1)
    gflops = 6 * n * width * dim / per / 1e9
    return [
        row(BENCHMARK, f"sample NT CG {case}", "CG iterations", iterations, "",
            f"ridge 1e-3, relative residual {model.diagnostics['cg_residual']:.1e}"),
        row(BENCHMARK, f"sample NT CG {case}", "seconds per iteration", per, "s",
            f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of matmul peak"),
    ]


def _apply_at_size(dim: int, width: int, n: int, peak: float) -> list[dict]:
    g = np.random.default_rng(4)
    weights = draw_weights(g, width, dim)
    coefficient = torch.from_numpy(g.standard_normal((width, width)))
    operator = TangentOperator(weights, coefficient, coefficient, coefficient, coefficient)
    probe = torch.from_numpy(g.standard_normal((width, dim)))
    with timer() as exact:
        operator.apply(probe)
    del operator, coefficient
    x = torch.from_numpy(g.standard_normal((n, dim)))
    features = GatedFeatures(weights, get_activation("step"))
    with timer() as sample:
        features.gram_apply(x, probe.reshape(-1))
    case = f"d={dim}, N={width}, N·d={dim * width:.1e}"
    exact_rate = 6 * width ** 2 * dim / exact["seconds"] / 1e9
    sample_rate = 6 * n * width * dim / sample["seconds"] / 1e9
    return [
        row(BENCHMARK, f"population NT {case}", "operator apply", exact["seconds"], "s",
            f"one CG product; {exact_rate:.1f} GFLOP/s = {exact_rate / peak:.0%} of peak"),
        row(BENCHMARK, f"sample NT {case}, n={n}", "Gram apply", sample["seconds"], "s",
            f"one CG product; {sample_rate:.1f} GFLOP/s = {sample_rate / peak:.0%} of peak"),
    ]


def run(quick: bool = False) -> list[dict]:
    sizes = QUICK if quick else FULL
    peak = matmul_gflops()
    rows = [row(BENCHMARK, "machine", "float64 matmul peak", peak, "GFLOP/s",
                f"{torch.get_num_threads()} threads")]
    last = None
    for dim, width in sizes["population"]:
        if last is not None:
            projected = last[1] * (width / last[0]) ** 2
            if projected > sizes["budget"]:
                rows.append(row(BENCHMARK, f"population NT d={dim}, N={width}", "projected fit",
                                projected, "s", f"skipped: over the {sizes['budget']:.0f} s budget "
                                "(N² scaling of the last measured case)"))
                continue
        with timer() as clock:
            rows.extend(_population_case(dim, width, peak))
        last = (width, clock["seconds"])
    rows.extend(_apply_at_size(*sizes["apply"], peak))
    for dim, width, n in sizes["samples"]:
        rows.extend(_sample_case(dim, width, n, peak, sizes["sample_iterations"]))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['case']:<42} {r['metric']:<22} {r['value']:>12.4g} {r['unit']:<8} {r['note']}")
