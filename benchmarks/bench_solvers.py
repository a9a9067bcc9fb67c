"""Benchmarks of the generic solvers: streaming ridge on ReLU random features, kernel ridge.

(a) The paper's random-features least squares: n = 5·10⁵ fresh samples in blocks, N = p = 4500
    ReLU features of x ∈ R^450, W ~ N(0, I/d). Reports the Gram accumulation throughput
    (2·n·p² flops for FᵀF plus 2·n·p·d for the feature map, over the time spent outside sample
    generation) as a fraction of the float64 matmul peak measured in the same run.
(b) Kernel ridge with the arc-cosine ReLU kernel at d = 450: exact Cholesky at n = 2·10⁴ and
    FALKON at n = 2·10⁵ (see bench_kernels.py for the NTK Gram and FALKON's share of peak).

Every case runs in a fresh (spawned) process so its peak resident memory is its own.
Run: ``python benchmarks/bench_solvers.py [--quick]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (isolated, machine_framed, matmul_gflops, peak_memory_mb,  # noqa: E402
                    print_rows, row, timer)

from lazylab.models.kernel import DualKernel  # noqa: E402
from lazylab.solvers import kernel_ridge, streaming_ridge  # noqa: E402

BENCHMARK = "solvers"
FULL = {"streaming": dict(n=500_000, width=4500, dim=450, block=5000),
        "cholesky": dict(n=20_000, dim=450),
        "falkon": dict(n=200_000, dim=450, centers=2000)}
QUICK = {"streaming": dict(n=50_000, width=450, dim=45, block=5000),
         "cholesky": dict(n=2000, dim=450),
         "falkon": dict(n=20_000, dim=450, centers=300)}
RIDGE = 1e-4


def arccos_relu_kernel(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """k(x, y) = ‖x‖‖y‖(sin θ + (π − θ) cos θ)/(2π) = E_w[relu(w·x) relu(w·y)], w ~ N(0, I).

    The library's fused pass (:func:`lazylab.models.kernel.arc_cosine_gram`: one float64 GEMM,
    one arccos) times d, since its DualKernel("rf") draws w ~ N(0, I/d).
    """
    return x1.shape[1] * DualKernel("rf")(x1, x2)


def _target(x: torch.Tensor) -> torch.Tensor:
    """A smooth single-index target with a quadratic part: y = relu(√d x₁) + (‖x‖² − 1)√d."""
    dim = x.shape[1]
    return torch.relu(math.sqrt(dim) * x[:, 0]) + (x.square().sum(dim=1) - 1.0) * math.sqrt(dim)


def _gaussian(rng: np.random.Generator, n: int, dim: int) -> torch.Tensor:
    """x ~ N(0, I_d / d), (n, d) float64."""
    return torch.from_numpy(rng.standard_normal((n, dim))) / math.sqrt(dim)


def _streaming_case(n: int, width: int, dim: int, block: int, peak: float) -> list[dict]:
    rng = np.random.default_rng(0)
    weights = torch.from_numpy(rng.standard_normal((width, dim))) / math.sqrt(dim)
    data_seconds = [0.0]

    def blocks():
        for start in range(0, n, block):
            begin = time.perf_counter()
            x = _gaussian(rng, min(block, n - start), dim)
            y = _target(x)
            data_seconds[0] += time.perf_counter() - begin
            yield x, y

    before = matmul_gflops()
    with timer() as clock:
        solution = streaming_ridge(lambda x: torch.relu_(x @ weights.T), blocks(), ridge=RIDGE)
    after = matmul_gflops()
    peak = max(peak, before, after)  # the machine is shared: compare with the best seen
    compute = clock["seconds"] - data_seconds[0]
    gflops = (2 * n * width**2 + 2 * n * width * dim) / compute / 1e9
    case = f"streaming ridge n={n} p={width} d={dim} block={block}"
    return [row(BENCHMARK, case, "time", clock["seconds"], "s", f"method={solution.method}"),
            row(BENCHMARK, case, "time_sampling", data_seconds[0], "s", "excluded from GFLOP/s"),
            row(BENCHMARK, case, "gram_throughput", gflops, "GFLOP/s", "2np² + 2npd flops"),
            row(BENCHMARK, case, "fraction_of_matmul_peak", gflops / peak, "",
                f"peak {peak:.1f} GFLOP/s: best of parent/before/after "
                f"({before:.1f} before, {after:.1f} after)"),
            row(BENCHMARK, case, "peak_memory", peak_memory_mb(), "MB", "whole process")]


def _kernel_case(method: str, n: int, dim: int, centers: int | None = None) -> list[dict]:
    rng = np.random.default_rng(1)
    x = _gaussian(rng, n, dim)
    y = _target(x) + 0.1 * torch.from_numpy(rng.standard_normal(n))
    with timer() as clock:
        fit = kernel_ridge(arccos_relu_kernel, x, y, ridge=RIDGE, method=method,
                           n_centers=centers, rng=rng, tol=1e-8)
    x_test = _gaussian(rng, 2000, dim)
    error = float(torch.mean((fit.predict(x_test) - _target(x_test)) ** 2))
    case = f"kernel ridge arccos-relu {method} n={n} d={dim}" + (f" M={centers}" if centers else "")
    return [row(BENCHMARK, case, "time", clock["seconds"], "s", f"ridge={RIDGE}"),
            row(BENCHMARK, case, "iterations", fit.iterations, "",
                f"converged={fit.converged} K_nM {fit.storage or 'n/a'}"),
            row(BENCHMARK, case, "relative_residual", fit.residual, "",
                "CG's, recomputed (NaN for cholesky: not computed)"),
            row(BENCHMARK, case, "test_mse", error, "", "noiseless target, 2000 test points"),
            row(BENCHMARK, case, "peak_memory", peak_memory_mb(), "MB", "whole process")]


def _cases(quick: bool):
    """Yield each case's rows as soon as it finishes (the matmul peak first)."""
    sizes = QUICK if quick else FULL

    def cases(peak):
        yield isolated(_streaming_case, *sizes["streaming"].values(), peak)
        yield isolated(_kernel_case, "cholesky", *sizes["cholesky"].values())
        yield isolated(_kernel_case, "falkon", *sizes["falkon"].values())

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """All solver benchmarks; ``quick`` shrinks every size about tenfold."""
    return [result for rows in _cases(quick) for result in rows]


if __name__ == "__main__":
    print_rows(_cases(quick="--quick" in sys.argv), width=58)
