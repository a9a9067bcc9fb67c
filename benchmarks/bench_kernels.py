"""Benchmarks of the dual-activation kernels and of FALKON at d = 450 (issue 12 items 2 and 4).

(a) NTK Gram of a two-layer ReLU network, n = 8000, d = 450 (quick: n = 2000): the fused
    arc-cosine pass of :class:`lazylab.models.kernel.DualKernel`, float64 and float32 inputs
    (both computed with float64 dot products), and an x1 ≠ x2 call (no symmetry). Share of peak
    counts the Gram's 2·n1·n2·d flops (n²d for the symmetric call, which computes half).
(b) FALKON with the ReLU NTK at d = 450, n = 2·10⁴ (quick) and 5·10⁴, M = ⌈5√n⌉: time, CG
    iterations, converged, final residual, whether K_nM was kept, peak memory, and share of
    peak over the flops done: 2nMd for K_nM once (or per product when recomputed) plus 4nM
    per CG product. Non-quick mode adds n = 2·10⁴ with a zero memory budget: K_nM recomputed
    in row blocks at every product (the path taken when even its float32 copy does not fit).
(c) Paper size (issue 12's acceptance: ≤ 10 min and ≤ 4 GB on 2 cores): FALKON at n = 2·10⁵,
    d = 450 with the default M = ⌈5√n⌉ = 2237 (FALKON's M ∝ √n; K_nM is then 1.8 GB in
    float32 under the 2 GB budget, with x (0.72 GB) about 2.6 GB in all, while M = 5000 would
    need 4 GB for K_nM alone). In the full run, and alone with ``--paper``.

(d) Ridge path (issue 12 item 2, validated-ridge FALKON): the 14 ridges of the kernel studies'
    grid (λ = s·10^k, :data:`lazylab.studies._kernel_baselines.RIDGE_EXPONENTS`) with the ReLU
    NTK at d = 128, n = 2·10⁴, M = 2000: one FALKON fit per λ (what selection did) against
    :func:`lazylab.solvers.falkon.falkon_path` (one CG loop, one K_nM pass per round), with K_nM
    stored, and with memory budget 0 (the refits recompute K_nM; the path keeps the normal
    matrix, (e)), the path first (per-λ Cholesky factors, as the
    single fits: both sides solve the same systems). Reported: both times, the
    K_nM passes of each (Σ of the refits' rounds against the path's max), and the largest
    relative gap between the two sides' test predictions. In the full run and alone with ``--path``; quick: n = 5000,
    M = 500, stored.

(e) The normal matrix (:func:`lazylab.solvers.falkon.falkon_path`, storage "normal"): where
    K_nM fits no memory budget and the factor budget holds one Cholesky factor at a time (as at
    damian-onestep's paper size, M = 16,384), the 14 ridges run as 14 CG loops. Measured in one
    process, the path that keeps G = K_nMᵀK_nM against the one that recomputes K_nM every round,
    both with room for one factor beside G (n = 8192, M = 2048, d = 128; ``--normal``), and the
    normal-matrix path with one factor per λ instead of one per window of λ (SHARED_SPAN = 1).
    With ``--damian``, the paper size itself (n = 65,536, M = 16,384, d = 128, normal matrix
    only): time, peak memory, rounds, and the time of one K_nM pass (the recomputing path
    makes one per CG round: ≈ 185 rounds there, one factor per λ).

(f) The exact fit in mixed precision (``--mixed``; also in the full run): kernel ridge by
    Cholesky with the ReLU NTK at d = 128, n = 8192, over the kernel studies' 14-ridge grid,
    each λ fitted twice in turn: as shipped (a float32 factor refined in float64 wherever the
    trace bounds cond(K + nλI) by 10⁶, :func:`lazylab.solvers.ridge.solve_shifted`) and with
    the float64 factor forced. Reported: both totals, their ratio, how many ridges took the
    mixed route, and the largest relative gap between the two sides' coefficients.
(g) ``--reuse``: the exact 14-ridge NTK path (n = 2048, 4096, 8192, d = 128) on one kernel
    matrix, solved with a float64 factor per λ (``symmetric_path(method="cholesky")``) and with
    factors reused across λ by CG (``method="reuse"``, :mod:`lazylab.solvers.shifted`).
    Reported: both times, their ratio, the factorizations the reuse took, and the largest gap
    between the two sides' predictions on 2000 test points.
(h) ``--outer``: FALKON's TTᵀ (T the Cholesky factor of an NTK K_MM, M = 4096, 8192) by
    :func:`lazylab.solvers.structured.upper_outer` and by ``T @ T.T``: times, ratio, gap.

Every case runs in a fresh (spawned) process so its peak resident memory is its own.
Run: ``python benchmarks/bench_kernels.py [--quick | --paper | --path | --normal | --damian |
--mixed | --reuse | --outer]``.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (isolated, machine_framed, peak_memory_mb, print_rows, row,  # noqa: E402
                    timer)

from lazylab.models.kernel import DualKernel  # noqa: E402
from lazylab.solvers import kernel_ridge  # noqa: E402
from lazylab.solvers.falkon import SHARED_SPAN, falkon_path  # noqa: E402
from lazylab.solvers.kernel_ridge import kernel_matrix  # noqa: E402
from lazylab.solvers.ridge_path import symmetric_path  # noqa: E402
from lazylab.solvers.structured import upper_outer  # noqa: E402
from lazylab.studies._kernel_baselines import kernel_ridge_grid  # noqa: E402

kernel_ridge_module = importlib.import_module("lazylab.solvers.kernel_ridge")  # not the function
falkon_module = importlib.import_module("lazylab.solvers.falkon")
BENCHMARK = "kernels"
DIM = 450
PATH_DIM = 128
NONE = {"gram": [], "falkon": [], "path": [], "normal": [], "mixed": [], "reuse": [], "outer": []}
PATH = {**NONE, "path": [(20_000, 2000, 2e9), (20_000, 2000, 0.0)]}
PAPER = {**NONE, "falkon": [(200_000, 2e9)]}
NORMAL = {**NONE, "normal": [(8192, 2048, True)]}
DAMIAN = {**NONE, "normal": [(65_536, 16_384, False)]}
MIXED = {**NONE, "mixed": [8192]}
REUSE = {**NONE, "reuse": [2048, 4096, 8192]}
OUTER = {**NONE, "outer": [4096, 8192]}
FULL = {"gram": [8000], "falkon": [(20_000, 2e9), (50_000, 2e9), (20_000, 0.0)] + PAPER["falkon"],
        "path": PATH["path"], "normal": NORMAL["normal"], "mixed": MIXED["mixed"],
        "reuse": [4096], "outer": [4096]}
QUICK = {**NONE, "gram": [8000], "falkon": [(20_000, 2e9)], "path": [(5000, 500, 2e9)]}
SIZES = {"quick": QUICK, "full": FULL, "paper": PAPER, "path": PATH, "normal": NORMAL,
         "damian": DAMIAN, "mixed": MIXED, "reuse": REUSE, "outer": OUTER}
RIDGE = 1e-4


def _gaussian(rng: np.random.Generator, n: int) -> torch.Tensor:
    """x ~ N(0, I_d), (n, d) float64."""
    return torch.from_numpy(rng.standard_normal((n, DIM)))


def _gram_case(n: int, peak: float) -> list[dict]:
    x = _gaussian(np.random.default_rng(0), n)
    kernel = DualKernel("ntk")
    kernel(x[:64], x[:64])  # warm up
    rows = []
    for label, (left, right, flops) in {
            "float64 symmetric": (x, x, n * n * DIM),
            "float32 inputs symmetric": (x.float(), None, n * n * DIM),
            "float64 x1 != x2": (x, x.clone(), 2 * n * n * DIM)}.items():
        right = left if right is None else right
        with timer() as clock:
            kernel(left, right)
        case = f"ntk gram relu n={n} d={DIM} {label}"
        rows += [row(BENCHMARK, case, "time", clock["seconds"], "s", "warm"),
                 row(BENCHMARK, case, "fraction_of_matmul_peak",
                     flops / clock["seconds"] / 1e9 / peak, "", f"peak {peak:.1f} GFLOP/s")]
    return rows + [row(BENCHMARK, f"ntk gram relu n={n} d={DIM}", "peak_memory",
                       peak_memory_mb(), "MB", "whole process")]


def _target(x: torch.Tensor) -> torch.Tensor:
    """y = relu(x₁) + (‖x‖²/d − 1)√d: a single-index part and a quadratic part."""
    return torch.relu(x[:, 0]) + (x.square().mean(dim=1) - 1.0) * math.sqrt(DIM)


def _falkon_case(n: int, budget: float, peak: float) -> list[dict]:
    rng = np.random.default_rng(1)
    x = _gaussian(rng, n)
    y = _target(x) + 0.1 * torch.from_numpy(rng.standard_normal(n))
    with timer() as clock:
        fit = kernel_ridge(DualKernel("ntk"), x, y, ridge=RIDGE, method="falkon", rng=rng,
                           tol=1e-8, max_iter=200, memory_budget=budget)
    m = fit.centers.shape[0]
    products = fit.iterations + 2  # CG steps, the recomputed residual, the right-hand side
    kernel_passes = products if fit.storage == "recomputed" else 1
    flops = 2 * n * m * DIM * kernel_passes + 4 * n * m * products
    x_test = _gaussian(rng, 2000)
    error = float(torch.mean((fit.predict(x_test) - _target(x_test)) ** 2))
    case = f"falkon ntk relu n={n} d={DIM} M={m} K_nM {fit.storage}"
    return [row(BENCHMARK, case, "time", clock["seconds"], "s", f"ridge={RIDGE} tol=1e-8"),
            row(BENCHMARK, case, "iterations", fit.iterations, "",
                f"converged={fit.converged} budget={budget:.0e} B"),
            row(BENCHMARK, case, "relative_residual", fit.residual, "", "recomputed after CG"),
            row(BENCHMARK, case, "fraction_of_matmul_peak", flops / clock["seconds"] / 1e9 / peak,
                "", f"{flops / 1e9:.0f} GFLOP over peak {peak:.1f} GFLOP/s"),
            row(BENCHMARK, case, "test_mse", error, "", "noiseless target, 2000 test points"),
            row(BENCHMARK, case, "peak_memory", peak_memory_mb(), "MB", "whole process")]


def _path_problem(n: int):
    """(x (n, 128), y, x_test (2000, 128), the NTK, the 14 ridges of the kernel studies)."""
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((n, PATH_DIM)))
    y = torch.relu(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * torch.from_numpy(rng.standard_normal(n))
    x_test = torch.from_numpy(rng.standard_normal((2000, PATH_DIM)))
    kernel = DualKernel("ntk")
    kernel(x[:64], x[:64])  # warm up
    return x, y, x_test, kernel, list(kernel_ridge_grid("ntk"))


def _refits(kernel, x, y, ridges, options):
    """Yield (seconds, solution) of one FALKON fit per λ, each from the same generator state."""
    for ridge in ridges:
        with timer() as clock:
            fit = kernel_ridge(kernel, x, y, ridge=ridge, method="falkon",
                               rng=np.random.default_rng(3), **options)
        yield clock["seconds"], fit


def _path_case(n: int, m: int, budget: float, peak: float) -> list[dict]:
    """The path (one CG loop for the 14 ridges), then one FALKON fit per λ, timed."""
    x, y, x_test, kernel, ridges = _path_problem(n)
    options = dict(n_centers=m, tol=1e-8, max_iter=100, memory_budget=budget)
    with timer() as path_clock:
        path = falkon_path(kernel, x, y, ridges, rng=np.random.default_rng(3),
                           factorization="cholesky", **options)
    times, refits = zip(*_refits(kernel, x, y, ridges, options))
    gaps = [float((a.predict(x_test) - b.predict(x_test)).abs().max()
                  / b.predict(x_test).abs().max()) for a, b in zip(path, refits)]
    passes = sum(s.iterations + 2 for s in refits)  # CG steps, the residual check, K_nMᵀy
    case = f"falkon ridge path ntk relu n={n} d={PATH_DIM} M={m} L=14 K_nM {path[0].storage}"
    note = f"tol=1e-8 max_iter=100 budget={budget:.0e} B, peak {peak:.1f} GFLOP/s"
    return [row(BENCHMARK, case, "time_path", path_clock["seconds"], "s",
                f"factorization=cholesky; {note}"),
            row(BENCHMARK, case, "time_refit_per_ridge", sum(times), "s", "after the path"),
            row(BENCHMARK, case, "speedup", sum(times) / path_clock["seconds"], "",
                "refit per ridge / path, same process"),
            row(BENCHMARK, case, "k_nm_passes_refit", passes, "",
                "Σ (CG steps + 1 residual + 1 for K_nMᵀy); +1 per residual replacement"),
            row(BENCHMARK, case, "k_nm_passes_path", max(s.iterations for s in path) + 2, "",
                f"iterations {[s.iterations for s in path]}"),
            row(BENCHMARK, case, "converged", sum(s.converged for s in path), "of 14",
                f"refits: {sum(s.converged for s in refits)}"),
            row(BENCHMARK, case, "max_relative_prediction_gap", max(gaps), "",
                "path vs refit, max|Δf|/max|f| on 2000 test points"),
            row(BENCHMARK, case, "peak_memory", peak_memory_mb(), "MB", "whole process")]


def _pass_seconds(kernel, x: torch.Tensor, centers: torch.Tensor) -> float:
    """Seconds of one recomputed K_nM pass (K_nMᵀ(K_nM v), row blocks as the solver's)."""
    products = kernel_ridge_module._NystromProducts(kernel, x, centers, None, "recomputed")
    with timer() as clock:
        products.normal(torch.ones(centers.shape[0], 1, dtype=torch.float64))
    return clock["seconds"]


def _relative_gap(ones, others, x_test) -> float:
    """max over the ridges of max|Δf|/max|f| on the test points."""
    return max(float((a.predict(x_test) - b.predict(x_test)).abs().max()
                     / b.predict(x_test).abs().max()) for a, b in zip(ones, others))


def _normal_case(n: int, m: int, compare: bool, peak: float) -> list[dict]:
    """The 14-ridge path keeping K_nMᵀK_nM (shared factors); with ``compare`` also one factor
    per λ (SHARED_SPAN = 1) and the recomputing path, with one factor each beside G."""
    x, y, x_test, kernel, ridges = _path_problem(n)
    options = dict(n_centers=m, tol=1e-8, max_iter=100, memory_budget=0.0,
                   factor_budget=2 * 8 * m * m)
    with timer() as clock:
        kept = falkon_path(kernel, x, y, ridges, normal_matrix=True,
                           rng=np.random.default_rng(3), **options)
    memory = peak_memory_mb()
    windows = falkon_module._groups(ridges, m, "shared", 0.0)
    rounds = sum(max(kept[j].iterations for j in window) + 1 for window in windows)
    case = f"falkon normal matrix ntk relu n={n} d={PATH_DIM} M={m} L=14"
    rows = [row(BENCHMARK, case, "time_normal", clock["seconds"], "s",
                f"storage {kept[0].storage}; {len(windows)} factors (λ windows of "
                f"{SHARED_SPAN:g}); peak {peak:.1f} GFLOP/s"),
            row(BENCHMARK, case, "rounds", rounds, "", f"Σ over the {len(windows)} CG loops"),
            row(BENCHMARK, case, "converged", sum(s.converged for s in kept), "of 14",
                f"iterations {[s.iterations for s in kept]}"),
            row(BENCHMARK, case, "peak_memory", memory, "MB", "whole process")]
    if not compare:
        one_pass = _pass_seconds(kernel, x, kept[0].centers)
        return rows + [row(BENCHMARK, case, "pass_time", one_pass, "s",
                           "one recomputed K_nM pass (the recomputing path makes one per round)")]
    falkon_module.SHARED_SPAN = 1.0  # one factor per λ, as before the windows
    try:
        with timer() as own:
            per_ridge = falkon_path(kernel, x, y, ridges, normal_matrix=True,
                                    rng=np.random.default_rng(3), **options)
    finally:
        falkon_module.SHARED_SPAN = SHARED_SPAN
    with timer() as again:  # the first timing paid the process's warm-up: best of two
        falkon_path(kernel, x, y, ridges, normal_matrix=True, rng=np.random.default_rng(3),
                    **options)
    clock = {"seconds": min(clock["seconds"], again["seconds"])}
    rows[0] = row(BENCHMARK, case, "time_normal", clock["seconds"], "s",
                  rows[0]["note"] + "; best of two (before and after the per-λ run)")
    options["factor_budget"] = 8 * m * m
    with timer() as slow:
        recomputed = falkon_path(kernel, x, y, ridges, normal_matrix=False,
                                 rng=np.random.default_rng(3), **options)
    per_rounds = sum(s.iterations + 1 for s in per_ridge)
    return rows + [
        row(BENCHMARK, case, "time_normal_factor_per_ridge", own["seconds"], "s",
            f"SHARED_SPAN = 1: 14 factors, {per_rounds} rounds; after, same process"),
        row(BENCHMARK, case, "time_recomputed", slow["seconds"], "s",
            f"one factor per λ, {sum(s.iterations + 1 for s in recomputed)} rounds"),
        row(BENCHMARK, case, "speedup", slow["seconds"] / clock["seconds"], "",
            "recomputed / normal matrix (shared factors)"),
        row(BENCHMARK, case, "speedup_of_sharing", own["seconds"] / clock["seconds"], "",
            "factor per λ / shared factors, both with the normal matrix"),
        row(BENCHMARK, case, "max_relative_prediction_gap", _relative_gap(kept, recomputed,
                                                                          x_test), "",
            f"normal vs recomputed, max|Δf|/max|f| on 2000 test points; shared vs per-λ "
            f"factors {_relative_gap(kept, per_ridge, x_test):.2g}")]


def _mixed_case(n: int, peak: float) -> list[dict]:
    """(f): each ridge of the grid fitted exactly as shipped and with the float64 factor forced."""
    ridge_module = importlib.import_module("lazylab.solvers.ridge")
    shipped = ridge_module.MIXED_MIN_SIZE
    x, y, _, kernel, ridges = _path_problem(n)
    seconds, routes, gap = {"shipped": 0.0, "float64": 0.0}, [], 0.0
    for ridge in ridges:
        fits = {}
        for name, size in (("shipped", shipped), ("float64", math.inf)):
            ridge_module.MIXED_MIN_SIZE = size
            start = time.perf_counter()
            fits[name] = kernel_ridge(kernel, x, y, ridge=ridge, method="cholesky")
            seconds[name] += time.perf_counter() - start
        ridge_module.MIXED_MIN_SIZE = shipped
        routes.append(fits["shipped"].method)
        gap = max(gap, float(torch.linalg.vector_norm(fits["shipped"].coef - fits["float64"].coef)
                             / torch.linalg.vector_norm(fits["float64"].coef)))
    case = f"exact kernel ridge ntk relu n={n} d={PATH_DIM}, 14 ridges"
    mixed = sum(route == "cholesky-mixed" for route in routes)
    return [row(BENCHMARK, case, "time as shipped", seconds["shipped"], "s",
                f"{mixed} of {len(routes)} ridges by the mixed route"),
            row(BENCHMARK, case, "time float64 factor", seconds["float64"], "s", ""),
            row(BENCHMARK, case, "float64 / shipped", seconds["float64"] / seconds["shipped"],
                "x", f"largest relative gap of the coefficients {gap:.2g}")]


def _reuse_case(n: int, peak: float) -> list[dict]:
    """(g): the exact 14-ridge path on one kernel matrix, a factor per λ against reused ones."""
    x, y, x_test, kernel, ridges = _path_problem(n)
    matrix, shifts = kernel_matrix(kernel, x, x), [n * ridge for ridge in ridges]
    solved, seconds = {}, {}
    for method in ("cholesky", "reuse"):
        with timer() as clock:
            solved[method] = symmetric_path(matrix, y, shifts, method=method)
        seconds[method] = clock["seconds"]
    test_block = kernel_matrix(kernel, x_test, x)
    gaps = [float((test_block @ (a - b)).abs().max() / (test_block @ b).abs().max())
            for (a, _), (b, _) in zip(solved["reuse"], solved["cholesky"])]
    routes = [route for _, route in solved["reuse"]]
    case = f"exact ridge path ntk relu n={n} d={PATH_DIM}, 14 ridges"
    return [row(BENCHMARK, case, "time factor per ridge", seconds["cholesky"], "s",
                "symmetric_path(method='cholesky'), float64"),
            row(BENCHMARK, case, "time reused factors", seconds["reuse"], "s",
                f"{sum(r != 'pcg' for r in routes)} factorizations: "
                + ", ".join(f"{routes.count(r)} {r}" for r in sorted(set(routes)))),
            row(BENCHMARK, case, "per ridge / reused", seconds["cholesky"] / seconds["reuse"],
                "x", f"largest prediction gap {max(gaps):.2g} (max|Δf|/max|f|, 2000 points)")]


def _outer_case(m: int, peak: float) -> list[dict]:
    """(h): FALKON's TTᵀ for the Cholesky factor T of an NTK K_MM, by ``upper_outer`` and by
    the full product, alternating, best of 3 each."""
    x = _path_problem(m)[0]
    factor = torch.linalg.cholesky(DualKernel("ntk")(x, x)
                                   + 1e-6 * torch.eye(m, dtype=torch.float64), upper=True)
    seconds = {"full": math.inf, "outer": math.inf}
    for _ in range(3):
        for name, product in (("full", lambda: factor @ factor.T),
                              ("outer", lambda: upper_outer(factor))):
            with timer() as clock:
                product()
            seconds[name] = min(seconds[name], clock["seconds"])
    gap = float((upper_outer(factor) - factor @ factor.T).abs().max()
                / (factor @ factor.T).abs().max())
    case = f"falkon TT^T M={m}"
    return [row(BENCHMARK, case, "time T @ T.T", seconds["full"], "s", "2M³ flops"),
            row(BENCHMARK, case, "time upper_outer", seconds["outer"], "s", "M³/3 flops"),
            row(BENCHMARK, case, "full / upper_outer", seconds["full"] / seconds["outer"], "x",
                f"largest gap {gap:.2g} of the largest entry; peak {peak:.1f} GFLOP/s")]


def _cases(mode: str):
    """Yield each case's rows as soon as it finishes (the matmul peak first)."""
    sizes = SIZES[mode]

    def cases(peak):
        for n in sizes["gram"]:
            yield isolated(_gram_case, n, peak)
        for n, budget in sizes["falkon"]:
            yield isolated(_falkon_case, n, budget, peak)
        for n, m, budget in sizes["path"]:
            yield isolated(_path_case, n, m, budget, peak)
        for n, m, compare in sizes["normal"]:
            yield isolated(_normal_case, n, m, compare, peak)
        for n in sizes["mixed"]:
            yield isolated(_mixed_case, n, peak)
        for n in sizes["reuse"]:
            yield isolated(_reuse_case, n, peak)
        for m in sizes["outer"]:
            yield isolated(_outer_case, m, peak)

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """All kernel benchmarks; ``quick`` drops the n = 5·10⁴ and recomputed FALKON cases."""
    return [result for rows in _cases("quick" if quick else "full") for result in rows]


if __name__ == "__main__":
    flags = [mode for mode in SIZES if f"--{mode}" in sys.argv]
    print_rows(_cases(flags[0] if flags else "full"), width=52)
