"""Exact population quantities at the paper's scale (Ghorbani et al. 2019, d = 450).

(a) Exact population RF at d = 450, N ∈ {450, 1350, 4500} (ReLU features with an offset,
    quadratic target B = diag(Exp(1))/√d) against the paper's method: least squares on
    n = 5·10⁵ fresh samples accumulated in blocks. Reports the wall-time ratio and how far the
    sample fit's exact risk is from the exact optimum.
(b) Exact population NT at d = 450, N ∈ {45, 450}, relu and quadratic: time, CG iterations.
(c) Shares of the measured float64 matmul peak reached by the dense kernels.

Run: ``python benchmarks/bench_population.py [--quick]``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_gflops, row, timer  # noqa: E402

from lazylab.gaussian import dual_matrix  # noqa: E402
from lazylab.models import TwoLayer  # noqa: E402
from lazylab.models import optimal_head, optimal_tangent  # noqa: E402
from lazylab.risk import population_risk  # noqa: E402
from lazylab.solvers import streaming_ridge  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "population"
FULL = dict(dim=450, rf_widths=(450, 1350, 4500), samples=500_000, nt_widths=(45, 450))
QUICK = dict(dim=90, rf_widths=(90, 270), samples=50_000, nt_widths=(9, 90))
BLOCK = 10_000


def _weights(width, dim, seed):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))


def _sample_fit(task, weights, samples, seed):
    """The paper's RF method: least squares on fresh samples, normal equations in blocks."""
    rng = np.random.default_rng(seed)

    def blocks():
        for start in range(0, samples, BLOCK):
            data = task.sample(min(BLOCK, samples - start), rng=rng)
            yield data.x, data.y

    solution = streaming_ridge(lambda x: torch.relu(x @ weights.T), blocks(), fit_intercept=True)
    return TwoLayer("relu", weights, solution.coef, offset=solution.intercept)


def random_features(config, peak):
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=config["dim"])
    rows = []
    for width in config["rf_widths"]:
        weights = _weights(width, config["dim"], seed=width)
        case = f"d={config['dim']} N={width} relu"
        with timer() as exact_time:
            exact = optimal_head(task, "relu", weights)
        with timer() as sample_time:
            sampled = _sample_fit(task, weights, config["samples"], seed=1)
        gap = float(population_risk(sampled, task)) - exact.diagnostics["population_risk"]
        with timer() as gram_time:
            dual_matrix("relu", weights, None)
        gemm = 2 * width * width * config["dim"] / 1e9
        rows += [row(BENCHMARK, case, "exact RF time", exact_time["seconds"], "s"),
                 row(BENCHMARK, case, f"{config['samples']:.0e}-sample least squares time",
                     sample_time["seconds"], "s"),
                 row(BENCHMARK, case, "speed-up of exact over samples",
                     sample_time["seconds"] / exact_time["seconds"], "x"),
                 row(BENCHMARK, case, "exact optimal risk / ‖f*‖²",
                     exact.diagnostics["population_risk"] / task.null_risk, ""),
                 row(BENCHMARK, case, "sample fit's excess risk / ‖f*‖²", gap / task.null_risk, "",
                     "exact risk of the sample fit minus the exact optimum"),
                 row(BENCHMARK, case, "dual matrix (W Wᵀ + arc-cosine) time",
                     gram_time["seconds"], "s",
                     f"its W Wᵀ product alone is {gemm:.2f} GFLOP = "
                     f"{gemm / peak:.3f} s at peak")]
    return rows


def neural_tangent(config, peak):
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=config["dim"])
    rows = []
    for activation in ("relu", "quadratic"):
        for width in config["nt_widths"]:
            weights = _weights(width, config["dim"], seed=width)
            with timer() as elapsed:
                fit = optimal_tangent(task, activation, weights)
            d = fit.diagnostics
            iterations = max(d["cg_iterations"], 1)
            flops = 6 * width * width * config["dim"] * iterations / 1e9
            case = f"d={config['dim']} N={width} {activation}"
            rows += [row(BENCHMARK, case, "exact NT time", elapsed["seconds"], "s"),
                     row(BENCHMARK, case, "CG iterations", d["cg_iterations"], "",
                         f"relative residual {d['cg_residual']:.1e}"),
                     row(BENCHMARK, case, "NT risk / ‖f*‖²", d["population_risk"] / task.null_risk, ""),
                     row(BENCHMARK, case, "operator matmul share of peak",
                         flops / elapsed["seconds"] / peak, "",
                         "3 N×N×d products per CG step over the whole fit time")]
    return rows


def run(quick: bool = False) -> list[dict]:
    """All rows of this benchmark (``quick`` shrinks d and N by 5×)."""
    config = QUICK if quick else FULL
    torch.set_default_dtype(torch.float64)
    peak = matmul_gflops()
    rows = [row(BENCHMARK, "machine", "float64 matmul peak", peak, "GFLOP/s",
                f"{torch.get_num_threads()} threads")]
    return rows + random_features(config, peak) + neural_tangent(config, peak)


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv):
        print(entry)
