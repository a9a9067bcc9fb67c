"""FALKON along a ridge path (lazylab.solvers.falkon): each λ against an independent single fit,
one pass over K_nM per CG round whatever the number of ridges, columns stopping on their own.

Tolerance of the agreement with a single fit, derived from ``tol`` (not measured): both runs
solve the same preconditioned system W β = b (W = BᵀH_δB, b = BᵀK_nMᵀy, B = n^{-1/2}T⁻¹A⁻¹; the
eigh route solves an orthogonal transform of it, which changes none of the norms below), each
to a recomputed relative residual r ≤ tol. Then ‖β₁ − β₂‖ ≤ ‖W⁻¹‖(r₁ + r₂)‖b‖, and the test
predictions f = K_test B β differ by at most

    ‖K_test B‖₂ ‖W⁻¹‖₂ (r₁ + r₂) ‖b‖,

computed here densely (M = 60) with the solution's jitter δ. A float32-stored K_nM is the same
rounded matrix in both runs; the dense W uses the float64 one, a relative change of ≤ 6·10⁻⁸ in
W, covered by the factor 1.01 (plus 10⁻¹² ‖f‖ for the round-off of the predictions themselves).
"""

import importlib
import math

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.solvers import kernel_ridge

from lazylab.solvers.falkon import SHARED_SPAN, falkon_path

kernel_ridge_module = importlib.import_module("lazylab.solvers.kernel_ridge")  # not the function
falkon_module = importlib.import_module("lazylab.solvers.falkon")

N, M = 600, 60
RIDGES = [1e-2, 1e-6, 1.0, 1e-4, 1e-8]  # any order: the solutions come back in it
ANCHORS = {1e-8: 1e-8, 1e-6: 1e-8, 1e-4: 1e-4, 1e-2: 1e-4, 1.0: 1.0}  # λ₀ of λ's window (×100)


def rbf(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """exp(−‖x − y‖²/8)."""
    return torch.exp(-torch.cdist(x1, x2).square() / 8)


KERNELS = {"rbf": rbf, "ntk": DualKernel("ntk")}
# storage: (memory_budget in bytes — K_nM is N·M·8 —, the path's normal_matrix, the single fit's)
STORAGES = {"float64": (1e12, None, "float64"), "float32": (N * M * 6, None, "float32"),
            "recomputed": (0.0, False, "recomputed"), "normal": (0.0, None, "recomputed")}


def _data(seed: int, targets: int = 1):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((N, 6)))
    y = torch.relu(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * torch.from_numpy(rng.standard_normal(N))
    y = y if targets == 1 else torch.stack([y, torch.sin(x[:, 3])], dim=1)
    return x, y, torch.from_numpy(rng.standard_normal((200, 6)))


def _bound(kernel, x, y, x_test, solution, ridge, residual_sum, anchor=None) -> float:
    """‖K_test B‖₂ ‖W⁻¹‖₂ (r₁ + r₂) ‖b‖ (module docstring), dense; B from A_anchor (default
    A_λ), the factor that preconditioned the fit."""
    anchor = ridge if anchor is None else anchor
    centers, n = solution.centers, x.shape[0]
    eye = torch.eye(M, dtype=torch.float64)
    k_mm = kernel(centers, centers)
    k_mm = (k_mm + k_mm.T) / 2 + solution.jitter * eye
    factor = torch.linalg.cholesky(k_mm, upper=True)
    inner = torch.linalg.cholesky(factor @ factor.T / M + anchor * eye, upper=True)
    basis = torch.linalg.solve_triangular(
        factor, torch.linalg.solve_triangular(inner, eye, upper=True), upper=True) / math.sqrt(n)
    k_nm = kernel(x, centers)
    system = basis.T @ (k_nm.T @ k_nm + ridge * n * k_mm) @ basis
    rhs = basis.T @ (k_nm.T @ y)
    smallest = float(torch.linalg.eigvalsh((system + system.T) / 2).min())
    spread = float(torch.linalg.matrix_norm(kernel(x_test, centers) @ basis, ord=2))
    return spread * float(torch.linalg.vector_norm(rhs)) * residual_sum / smallest


@pytest.mark.parametrize("factorization", ["cholesky", "eigh"])
@pytest.mark.parametrize("storage", list(STORAGES))
@pytest.mark.parametrize("name", list(KERNELS))
def test_every_ridge_agrees_with_its_own_single_fit(name, storage, factorization):
    kernel, (x, y, x_test) = KERNELS[name], _data(0)
    budget, normal_matrix, single_storage = STORAGES[storage]
    options = dict(n_centers=M, memory_budget=budget, tol=1e-8)
    path = falkon_path(kernel, x, y, RIDGES, rng=np.random.default_rng(3),
                       factorization=factorization, normal_matrix=normal_matrix, **options)
    assert len(path) == len(RIDGES)
    for ridge, solution in zip(RIDGES, path):
        single = kernel_ridge(kernel, x, y, ridge=ridge, method="falkon",
                              rng=np.random.default_rng(3), **options)
        assert (solution.storage, single.storage) == (storage, single_storage)
        assert solution.method == "falkon"
        torch.testing.assert_close(solution.centers, single.centers, rtol=0, atol=0)
        assert solution.jitter == single.jitter
        assert solution.converged and single.converged and solution.residual <= 1e-8
        expected = single.predict(x_test)
        gap = float(torch.linalg.vector_norm(solution.predict(x_test) - expected))
        if storage == "normal" and factorization == "cholesky":
            # each side solves its own preconditioned system: the path with its window's
            # A_λ₀, the single fit with A_λ; the gap is at most the sum of their two bounds
            bound = (_bound(kernel, x, y, x_test, solution, ridge, solution.residual,
                            anchor=ANCHORS[ridge])
                     + _bound(kernel, x, y, x_test, single, ridge, single.residual))
        else:
            # the normal matrix rounds the operator differently: on the ill-conditioned RBF
            # system (T⁻¹ amplifies rounding by up to ε/δ) CG then takes a few more or fewer
            # steps (eigh: the same preconditioner up to an orthogonal map)
            slack = 6 if storage == "normal" else 2
            assert abs(solution.iterations - single.iterations) <= slack, ridge
            bound = _bound(kernel, x, y, x_test, solution, ridge,
                           solution.residual + single.residual)
        scale = float(torch.linalg.vector_norm(expected))
        assert gap <= 1.01 * bound + 1e-12 * scale, (ridge, gap, bound)
        assert bound <= 1e-4 * scale  # the check is not vacuous


def test_several_targets_match_single_fits_column_by_column():
    x, y, x_test = _data(1, targets=2)
    path = falkon_path(rbf, x, y, [1e-3, 1e-5], n_centers=M, rng=np.random.default_rng(4))
    for ridge, solution in zip([1e-3, 1e-5], path):
        single = kernel_ridge(rbf, x, y, ridge=ridge, method="falkon", n_centers=M,
                              rng=np.random.default_rng(4))
        assert solution.coef.shape == single.coef.shape == (M, 2)
        gap = float(torch.linalg.vector_norm(solution.predict(x_test) - single.predict(x_test)))
        bound = _bound(rbf, x, y, x_test, solution, ridge, solution.residual + single.residual)
        assert solution.converged and gap <= 1.01 * bound + 1e-12, (gap, bound)


class CountingKernel:
    """The RBF kernel, counting its calls (one per row block of any kernel evaluation)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x1, x2):
        self.calls += 1
        return rbf(x1, x2)


def _calls(run) -> int:
    kernel = CountingKernel()
    run(kernel)
    return kernel.calls


BLOCKS = N // 100  # block_size = 100 rows: one kernel call per block of a K_nM pass


@pytest.mark.parametrize("ridges", [[1e-3], [1e-1, 1e-3, 1e-5, 1e-7]])
def test_each_round_recomputes_k_nm_once_whatever_the_number_of_ridges(ridges):
    # max_iter = 6 and tol = 1e-14 (out of reach in 6 steps): every column takes 6 CG steps and
    # one recomputed residual, 7 rounds. Kernel calls: K_MM (M = 60 rows: 1 block), K_nMᵀy
    # (one pass) and one pass per round — for 1 ridge as for 4, and as one single fit.
    x, y, _ = _data(2)
    options = dict(n_centers=M, tol=1e-14, max_iter=6, memory_budget=0.0, block_size=100)
    solutions = []
    path = dict(options, normal_matrix=False)
    calls = _calls(lambda kernel: solutions.extend(
        falkon_path(kernel, x, y, ridges, rng=np.random.default_rng(5), **path)))
    assert [s.stop_reason for s in solutions] == ["budget"] * len(ridges)
    assert all(s.iterations == 6 and not s.converged for s in solutions)
    assert calls == 1 + BLOCKS * (1 + 7)
    single = _calls(lambda kernel: kernel_ridge(kernel, x, y, ridge=ridges[0], method="falkon",
                                                rng=np.random.default_rng(5), **options))
    assert single == calls


def test_ridges_run_in_groups_when_their_factors_exceed_the_factor_budget():
    # Room for two 60 × 60 factors: 5 ridges run as 3 CG loops (by increasing λ), each of 7
    # rounds (as above), and give the one-loop path's solutions (round-off: 1e-9 relative).
    x, y, _ = _data(2)
    ridges = [1e-1, 1e-7, 1e-3, 1e-5, 1e-2]
    options = dict(n_centers=M, tol=1e-14, max_iter=6, memory_budget=0.0, block_size=100,
                   normal_matrix=False)
    grouped = []
    calls = _calls(lambda kernel: grouped.extend(falkon_path(
        kernel, x, y, ridges, rng=np.random.default_rng(5), factor_budget=2 * 8 * M**2,
        **options)))
    assert calls == 1 + BLOCKS * (1 + 3 * 7)
    single_loop = falkon_path(rbf, x, y, ridges, rng=np.random.default_rng(5), **options)
    for one, other in zip(grouped, single_loop):
        assert one.iterations == other.iterations == 6
        torch.testing.assert_close(one.coef, other.coef, rtol=1e-9, atol=1e-9 * float(
            other.coef.abs().max()))


def test_the_path_pays_the_slowest_ridge_not_the_sum():
    # To tolerance, a column takes its CG steps plus 1 + replacements recomputed residuals, one
    # K_nM pass each; the path's columns share their passes, so it makes exactly the kernel calls
    # of its slowest ridge's own fit, where one fit per ridge pays the sum.
    x, y, _ = _data(3)
    ridges = [1.0, 1e-2, 1e-4, 1e-6]
    options = dict(n_centers=M, memory_budget=0.0, block_size=100)
    solutions = []
    calls = _calls(lambda kernel: solutions.extend(falkon_path(
        kernel, x, y, ridges, rng=np.random.default_rng(6), normal_matrix=False, **options)))
    assert all(s.converged for s in solutions)
    singles = [_calls(lambda kernel, r=r: kernel_ridge(
        kernel, x, y, ridge=r, method="falkon", rng=np.random.default_rng(6), **options))
        for r in ridges]
    slowest = max(s.iterations for s in solutions)
    assert calls == max(singles) >= 1 + BLOCKS * (2 + slowest)
    assert sum(singles) > 2 * calls, (singles, calls)


def test_columns_stop_on_their_own_and_report_their_own_certificate():
    # λ = 1 converges in a few steps; λ = 1e-9 is still running when the budget of 12 ends.
    x, y, _ = _data(4)
    options = dict(n_centers=M, max_iter=12, tol=1e-10)
    path = falkon_path(rbf, x, y, [1e-9, 1.0], rng=np.random.default_rng(7), **options)
    singles = [kernel_ridge(rbf, x, y, ridge=r, method="falkon", rng=np.random.default_rng(7),
                            **options) for r in (1e-9, 1.0)]
    slow, fast = path
    assert (slow.converged, slow.stop_reason, slow.iterations) == (False, "budget", 12)
    assert slow.residual > 1e-10
    assert fast.converged and fast.stop_reason == "tolerance" and fast.iterations < 12
    assert fast.residual <= 1e-10
    for solution, single in zip(path, singles):
        assert (solution.converged, solution.stop_reason) == (single.converged, single.stop_reason)
        assert abs(solution.iterations - single.iterations) <= 1
        assert solution.residual == pytest.approx(single.residual, rel=0.5)


def test_zero_targets_give_zero_coefficients_without_iterating():
    x, _, _ = _data(5)
    path = falkon_path(rbf, x, torch.zeros(N, dtype=torch.float64), [1e-2, 1e-4], n_centers=M,
                       rng=np.random.default_rng(0))
    for solution in path:
        assert (solution.iterations, solution.residual, solution.converged) == (0, 0.0, True)
        assert not solution.coef.any()


@pytest.mark.parametrize("arguments,error,message", [
    (dict(ridges=[]), ValueError, r"ridges must be a non-empty sequence"),
    (dict(ridges=[1e-3, 0.0]), ValueError, r"ridges\[1\] must be > 0 for FALKON, got 0.0"),
    (dict(ridges=[1e-3, -1.0]), ValueError, r"ridges\[1\] must be a finite number >= 0"),
    (dict(factorization="qr"), ValueError, r"factorization must be one of"),
    (dict(factor_budget=-1.0), ValueError, r"factor_budget must be a number of bytes >= 0"),
    (dict(rng=None), TypeError, r"rng must be a numpy.random.Generator"),
    (dict(n_centers=601), ValueError, r"n_centers must be in \[1, n=600\], got 601"),
    (dict(memory_budget=-1.0), ValueError, r"memory_budget must be a number of bytes >= 0"),
])
def test_invalid_arguments_are_rejected_with_their_values(arguments, error, message):
    x, y, _ = _data(6)
    call = dict(ridges=[1e-3], rng=np.random.default_rng(0), n_centers=M) | arguments
    with pytest.raises(error, match=message):
        falkon_path(rbf, x, y, call.pop("ridges"), **call)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("budget,storage", [(2e9, "float64"), (0.0, "normal")])
def test_the_path_runs_on_cuda_and_agrees_with_the_cpu(budget, storage):
    # ridges 1000× apart: one factor each also with the normal matrix (windows of 100×)
    x, y, x_test = _data(7)
    ridges = [1e-2, 1e-5]
    runs = [falkon_path(rbf, x, y, ridges, n_centers=M, rng=np.random.default_rng(8),
                        memory_budget=budget, device=device) for device in ("cpu", "cuda")]
    for ridge, cpu, gpu in zip(ridges, *runs):
        assert gpu.coef.device.type == "cuda" and gpu.converged
        assert cpu.storage == gpu.storage == storage
        gap = float(torch.linalg.vector_norm(gpu.predict(x_test).cpu() - cpu.predict(x_test)))
        bound = _bound(rbf, x, y, x_test, cpu, ridge, cpu.residual + gpu.residual)
        assert gap <= 1.01 * bound + 1e-12, (gap, bound)


def test_the_normal_matrix_evaluates_k_nm_once_whatever_the_rounds_and_ridges():
    # Kernel calls: K_MM (1 block) and the one pass forming K_nMᵀK_nM and K_nMᵀy — against
    # 1 + 8 passes when recomputed (test above) — and the same 6-step CG iterates to round-off
    # (with the same preconditioner on both sides: "eigh", one factor for all λ either way).
    x, y, _ = _data(2)
    ridges = [1e-1, 1e-3, 1e-5, 1e-7]
    options = dict(n_centers=M, tol=1e-14, max_iter=6, memory_budget=0.0, block_size=100,
                   factorization="eigh")
    kept = []
    calls = _calls(lambda kernel: kept.extend(
        falkon_path(kernel, x, y, ridges, rng=np.random.default_rng(5), **options)))
    assert calls == 1 + BLOCKS
    recomputed = falkon_path(rbf, x, y, ridges, rng=np.random.default_rng(5),
                             normal_matrix=False, **options)
    for one, other in zip(kept, recomputed):
        assert (one.storage, other.storage) == ("normal", "recomputed")
        assert one.iterations == other.iterations == 6
        torch.testing.assert_close(one.coef, other.coef, rtol=1e-9, atol=1e-9 * float(
            other.coef.abs().max()))


def test_the_normal_matrix_is_k_nm_transposed_times_k_nm(monkeypatch):
    # Column blocks of 16 on M = 60 (16, 16, 16, 12): every diagonal block, every block right of
    # it, and the mirrored ones below, against the dense product; row blocks of 70 samples.
    monkeypatch.setattr(kernel_ridge_module, "_NORMAL_COLUMNS", 16)
    x, y, _ = _data(6, targets=2)
    centers = x[:M]
    products = kernel_ridge_module._NystromProducts(rbf, x, centers, 70, "normal", y)
    k_nm = rbf(x, centers)
    dense = k_nm.T @ k_nm
    assert torch.equal(products.normal_matrix, products.normal_matrix.T)
    torch.testing.assert_close(products.normal_matrix, dense, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(products.transpose(y), k_nm.T @ y, rtol=1e-12, atol=1e-12)
    other = y[:, 0].clone()
    torch.testing.assert_close(products.transpose(other), k_nm.T @ other, rtol=1e-12, atol=1e-12)
    beta = torch.from_numpy(np.random.default_rng(0).standard_normal((M, 3)))
    torch.testing.assert_close(products.normal(beta), dense @ beta, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(products.normal(beta, rows=True), dense @ beta, rtol=1e-12,
                               atol=1e-10)  # through K_nM's rows: FALKON's refinement


def test_normal_matrix_must_be_a_bool_or_none():
    x, y, _ = _data(0)
    with pytest.raises(TypeError, match="normal_matrix"):
        falkon_path(rbf, x, y, [1e-3], n_centers=M, rng=np.random.default_rng(0),
                    normal_matrix="yes")


def test_with_the_normal_matrix_ridges_within_the_span_share_one_factor():
    # Windows λ₀ ≤ λ ≤ 100 λ₀ by increasing λ: three factors for the five ridges (the ANCHORS of
    # the agreement test above); recomputed products keep one factor per λ.
    assert SHARED_SPAN == 100.0
    order = sorted(range(len(RIDGES)), key=RIDGES.__getitem__)
    windows = falkon_module._groups(RIDGES, M, "shared", 0.0)
    assert [[RIDGES[j] for j in window] for window in windows] == [[1e-8, 1e-6], [1e-4, 1e-2],
                                                                    [1.0]]
    assert sorted(j for window in windows for j in window) == sorted(order)
    assert all(ANCHORS[RIDGES[j]] == RIDGES[window[0]] for window in windows for j in window)
    x, y, _ = _data(2)
    made = []
    original = falkon_module._upper_cholesky_in_place

    def counting(matrix):
        made.append(matrix.shape[0])
        return original(matrix)

    falkon_module._upper_cholesky_in_place = counting
    try:
        falkon_path(rbf, x, y, RIDGES, n_centers=M, rng=np.random.default_rng(5),
                    memory_budget=0.0)
        assert made == [M] * 3
        made.clear()
        falkon_path(rbf, x, y, RIDGES, n_centers=M, rng=np.random.default_rng(5),
                    memory_budget=0.0, normal_matrix=False)
        assert made == [M] * 5
    finally:
        falkon_module._upper_cholesky_in_place = original


def test_columns_stalled_by_the_normal_matrix_round_off_are_refined_through_the_rows(monkeypatch):
    # G β made noisy (1e-9 of its norm in every product, as G's round-off amplified by T⁻ᵀ is
    # for the RF kernel at M = 16,384; falkon module docstring) stalls CG above tol = 1e-11; the
    # refinement recomputes those residuals through K_nM's rows (exact here) and certifies every
    # ridge, within the single recomputed fit's bound.
    exact, generator = kernel_ridge_module._NystromProducts.normal, torch.Generator().manual_seed(0)

    def noisy(self, coef, *, rows=False):
        product = exact(self, coef, rows=rows)
        if rows or self.normal_matrix is None:
            return product
        noise = torch.randn(product.shape, generator=generator, dtype=product.dtype)
        scale = 1e-9 * torch.linalg.vector_norm(product) / math.sqrt(noise.numel())
        return product + scale * noise

    x, y, x_test = _data(3)
    ridges, options = [1e-8, 1e-4], dict(n_centers=M, tol=1e-11, max_iter=500, memory_budget=0.0)
    monkeypatch.setattr(kernel_ridge_module._NystromProducts, "normal", noisy)
    stalled = falkon_path(rbf, x, y, ridges, rng=np.random.default_rng(5), **options)
    monkeypatch.setattr(falkon_module.BatchedCG, "refine", lambda self, exact: [])
    unrefined = falkon_path(rbf, x, y, ridges, rng=np.random.default_rng(5), **options)
    assert [s.stop_reason for s in unrefined] == ["stagnated"] * 2
    for ridge, solution in zip(ridges, stalled):
        assert solution.storage == "normal" and solution.converged, solution.stop_reason
        single = kernel_ridge(rbf, x, y, ridge=ridge, method="falkon",
                              rng=np.random.default_rng(5), **options)
        gap = float(torch.linalg.vector_norm(solution.predict(x_test) - single.predict(x_test)))
        bound = _bound(rbf, x, y, x_test, single, ridge, solution.residual + single.residual,
                       anchor=ANCHORS.get(ridge, ridge))
        size = float(torch.linalg.vector_norm(single.predict(x_test)))
        assert gap <= 1.01 * bound + 1e-12 * size
