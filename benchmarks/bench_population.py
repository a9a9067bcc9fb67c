"""Exact population quantities at the paper's scale (Ghorbani et al. 2019, d = 450).

Exact population NT at d = 450, N ∈ {45, 450}, relu and quadratic: time, CG iterations, and the
share of the measured float64 matmul peak reached by its operator. (Exact RF against the
5·10⁵-sample method is benchmarks/bench_random_features.py.)

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

from lazylab.models import optimal_tangent  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "population"
FULL = dict(dim=450, nt_widths=(45, 450))
QUICK = dict(dim=90, nt_widths=(9, 90))


def _weights(width, dim, seed):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))


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
    return rows + neural_tangent(config, peak)


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv):
        print(entry)
