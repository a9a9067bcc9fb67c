"""Ridge on explicit features: closed forms, the λ → 0 limit, intercept, streaming, min-norm.

Tolerances: the problems are Gaussian with n ≥ 4p or p ≥ 4n, so cond(F) ≲ 3 and backward-stable
solvers agree to cond² · ε ≈ 10⁻¹⁵ relative; the checks use 10⁻¹⁰ to 10⁻¹² (room for the p-fold
accumulation of rounding) unless stated otherwise.
"""

import numpy as np
import pytest
import torch

from lazylab.solvers import NormalEquations, solve_ridge, streaming_ridge
from lazylab.solvers import ridge as ridge_module
from lazylab.solvers.ridge import (cholesky_in_place, pseudo_inverse_cutoff, pseudo_solve,
                                   solve_symmetric)


def _problem(n: int, p: int, seed: int, k: int | None = None, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, p)) + offset
    targets = rng.standard_normal((n,) if k is None else (n, k))
    return torch.from_numpy(features), torch.from_numpy(targets)


def _primal_formula(features, targets, ridge):
    """a = (FᵀF/n + λI)⁻¹Fᵀy/n in numpy."""
    f, y = features.numpy(), targets.numpy()
    n, p = f.shape
    return np.linalg.solve(f.T @ f / n + ridge * np.eye(p), f.T @ y / n)


def test_ridge_zero_equals_numpy_lstsq_on_full_rank_problem():
    features, targets = _problem(80, 12, seed=0)
    solution = solve_ridge(features, targets, ridge=0.0)
    expected = np.linalg.lstsq(features.numpy(), targets.numpy(), rcond=None)[0]
    assert solution.method == "lstsq"
    np.testing.assert_allclose(solution.coef.numpy(), expected, rtol=1e-11, atol=1e-13)


def test_small_ridge_approaches_least_squares_at_first_order():
    # a(λ) = a₀ − λ S⁻¹a₀ + O(λ²) with S = FᵀF/n; the remainder ‖λ² S⁻²a₀‖ ≤ λ²‖a₀‖/σ_min(S)².
    features, targets = _problem(80, 12, seed=1)
    base = solve_ridge(features, targets).coef
    gram = features.T @ features / 80
    slope = -torch.linalg.solve(gram, base)
    sigma_min = float(torch.linalg.eigvalsh(gram)[0])
    for ridge in (1e-2, 1e-3, 1e-4):
        coef = solve_ridge(features, targets, ridge=ridge).coef
        remainder = torch.linalg.vector_norm(coef - base - ridge * slope)
        assert remainder <= 2 * ridge**2 * torch.linalg.vector_norm(base) / sigma_min**2


def test_primal_matches_closed_form_and_multiple_targets_match_columns():
    features, targets = _problem(60, 10, seed=2, k=3)
    solution = solve_ridge(features, targets, ridge=0.3)
    assert solution.method == "primal" and solution.coef.shape == (10, 3)
    np.testing.assert_allclose(solution.coef.numpy(), _primal_formula(features, targets, 0.3),
                               rtol=1e-12, atol=1e-14)
    column = solve_ridge(features, targets[:, 1], ridge=0.3).coef
    torch.testing.assert_close(solution.coef[:, 1], column, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_dual_equals_primal_on_the_same_problem(fit_intercept):
    features, targets = _problem(15, 70, seed=3, offset=0.5)
    dual = solve_ridge(features, targets, ridge=0.05, fit_intercept=fit_intercept)
    primal = NormalEquations().accumulate(features, targets).solve(
        ridge=0.05, fit_intercept=fit_intercept)
    assert (dual.method, primal.method) == ("dual", "primal")
    torch.testing.assert_close(dual.coef, primal.coef, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dual.intercept, primal.intercept, rtol=1e-10, atol=1e-12)
    if not fit_intercept:
        np.testing.assert_allclose(dual.coef.numpy(), _primal_formula(features, targets, 0.05),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,ridge", [((50, 8), 0.2), ((50, 8), 0.0), ((12, 40), 0.2)])
def test_intercept_matches_augmented_solve_with_unpenalized_constant(shape, ridge):
    # [c; a] minimizes (1/n)‖y − [1 F][c; a]‖² + λ‖a‖²: (ΦᵀΦ/n + λD)θ = Φᵀy/n, D = diag(0, 1…1)
    n, p = shape
    features, targets = _problem(n, p, seed=4, k=2, offset=1.5)
    solution = solve_ridge(features, targets, ridge=ridge, fit_intercept=True)
    design = np.hstack([np.ones((n, 1)), features.numpy()])
    penalty = ridge * np.diag([0.0] + [1.0] * p)
    if ridge > 0:
        theta = np.linalg.solve(design.T @ design / n + penalty, design.T @ targets.numpy() / n)
    else:
        theta = np.linalg.lstsq(design, targets.numpy(), rcond=None)[0]
    np.testing.assert_allclose(solution.intercept.numpy(), theta[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solution.coef.numpy(), theta[1:], rtol=1e-10, atol=1e-12)


def _relu_features(weights):
    return lambda x: torch.relu(x @ weights.T)


@pytest.mark.parametrize("ridge,fit_intercept", [(0.1, False), (0.1, True), (0.0, True)])
def test_streaming_with_any_block_size_equals_in_memory_solve(ridge, fit_intercept):
    rng = np.random.default_rng(5)
    n, dim, width = 300, 6, 20
    x = torch.from_numpy(rng.standard_normal((n, dim)))
    y = torch.sin(x[:, 0]) + x[:, 1] ** 2
    weights = torch.from_numpy(rng.standard_normal((width, dim))) / np.sqrt(dim)
    feature_map = _relu_features(weights)
    reference = solve_ridge(feature_map(x), y, ridge=ridge, fit_intercept=fit_intercept)
    for block in (1, 7, 64, n):
        blocks = ((x[s:s + block], y[s:s + block]) for s in range(0, n, block))
        streamed = streaming_ridge(feature_map, blocks, ridge=ridge, fit_intercept=fit_intercept)
        scale = float(torch.linalg.vector_norm(reference.coef))
        assert float(torch.linalg.vector_norm(streamed.coef - reference.coef)) <= 1e-10 * scale
        assert abs(float(streamed.intercept - reference.intercept)) <= 1e-10 * max(scale, 1.0)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_rank_deficient_ridge_zero_gives_min_norm_interpolant(fit_intercept):
    features, targets = _problem(10, 40, seed=6)
    solution = solve_ridge(features, targets, ridge=0.0, fit_intercept=fit_intercept)
    f, y = features.numpy(), targets.numpy()
    if fit_intercept:
        f, y = f - f.mean(axis=0), y - y.mean()
    np.testing.assert_allclose(solution.coef.numpy(), np.linalg.pinv(f) @ y, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(solution.predict(features).numpy(), targets.numpy(), atol=1e-10)
    null = np.linalg.svd(f)[2][-1]  # f @ null = 0: adding it keeps interpolating, raises norm
    coef = solution.coef.numpy()
    assert abs(coef @ null) <= 1e-10 * np.linalg.norm(coef)


def test_streaming_ridge_zero_on_duplicate_columns_splits_weight_equally():
    # F = [f, f], y = 2f: every (a₁, a₂) with a₁ + a₂ = 2 interpolates; min-norm is (1, 1).
    f = torch.linspace(-1.0, 2.0, 30, dtype=torch.float64)
    features = torch.stack([f, f], dim=1)
    solution = NormalEquations().accumulate(features, 2 * f).solve(ridge=0.0)
    assert solution.method == "lstsq"
    torch.testing.assert_close(solution.coef, torch.ones(2, dtype=torch.float64), rtol=1e-12,
                               atol=1e-12)


def test_singular_gram_falls_back_to_eigendecomposition():
    # All-ones features: FᵀF/n is the all-ones matrix, exact in floating point; 1 + 10⁻²⁰ = 1,
    # so the second Cholesky pivot is exactly 0 and Cholesky must fail. The min-norm answer
    # (the λ → 0 limit) splits ȳ equally between the identical columns.
    targets = torch.from_numpy(np.random.default_rng(7).standard_normal(9))
    primal = solve_ridge(torch.ones(9, 2, dtype=torch.float64), targets, ridge=1e-20)
    streamed = NormalEquations().accumulate(torch.ones(9, 2, dtype=torch.float64),
                                            targets).solve(ridge=1e-20)
    expected = targets.mean() / 2 * torch.ones(2, dtype=torch.float64)
    for solution in (primal, streamed):
        assert solution.method == "primal-eigh"
        torch.testing.assert_close(solution.coef, expected, rtol=1e-12, atol=1e-15)
    # Dual: identical rows of 8 ones give FFᵀ/n = 4·(all ones), again an exact zero pivot.
    dual = solve_ridge(torch.ones(2, 8, dtype=torch.float64), targets[:2], ridge=1e-20)
    assert dual.method == "dual-eigh"
    torch.testing.assert_close(dual.coef, targets[:2].mean() / 8 * torch.ones(8, dtype=torch.float64),
                               rtol=1e-12, atol=1e-15)


def test_pseudo_inverse_cutoff_is_max_of_size_epsilon_and_the_floor():
    eps = torch.finfo(torch.float64).eps
    small = torch.tensor([2.0, 0.5, -1e-3], dtype=torch.float64)        # m·ε < 10⁻¹²: the floor
    assert float(pseudo_inverse_cutoff(small)) == pytest.approx(2e-12, rel=1e-15)
    large = torch.full((10_000,), 0.5, dtype=torch.float64)
    large[0] = -2.0                                                      # max |λ| = 2
    assert float(pseudo_inverse_cutoff(large)) == pytest.approx(10_000 * eps * 2, rel=1e-15)


def test_eigendecomposition_path_inverts_kept_and_drops_tiny_eigenvalues():
    # S = Q diag(λ) Qᵀ, λ = (1, 10⁻³, 10⁻⁶, 10⁻¹⁴): only 10⁻¹⁴ is below the cut-off 10⁻¹². In the
    # eigenbasis x has components 1/λ on the kept directions (eigh's backward error ε‖S‖ moves
    # λ = 10⁻⁶ by 2·10⁻¹⁰ relative; tolerance 10⁻⁸) and 0 on the dropped one, up to the leak
    # of the 10⁶ component through the computed eigenvectors' error ε/gap: 10⁶·2·10⁻¹⁰ ≈ 10⁻⁴.
    q, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((4, 4)))
    values = np.array([1.0, 1e-3, 1e-6, 1e-14])
    matrix = torch.from_numpy((q * values) @ q.T)
    rhs = torch.from_numpy(q @ np.ones(4))
    components = q.T @ pseudo_solve(matrix, rhs).numpy()
    np.testing.assert_allclose(components[:3], 1 / values[:3], rtol=1e-8)
    assert abs(components[3]) < 1e-2   # inverted, it would be 10¹⁴
    columns = pseudo_solve(matrix, torch.stack([rhs, 2 * rhs], dim=1))
    np.testing.assert_allclose(q.T @ columns.numpy(), np.stack([components, 2 * components], 1),
                               rtol=1e-8, atol=1e-2)


def test_symmetric_solve_uses_cholesky_when_it_can_and_needs_rebuild_to_overwrite():
    matrix = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    rhs = torch.tensor([1.0, 2.0], dtype=torch.float64)
    solution, used_cholesky = solve_symmetric(matrix, rhs)
    assert used_cholesky
    torch.testing.assert_close(solution, torch.linalg.solve(matrix, rhs), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="overwrite=True needs rebuild, got rebuild=None"):
        solve_symmetric(matrix.clone(), rhs, overwrite=True)


def test_float32_inputs_are_solved_in_float64():
    features, targets = _problem(40, 5, seed=8)
    solution = solve_ridge(features.float(), targets.float(), ridge=0.1)
    assert solution.coef.dtype == torch.float64
    expected = _primal_formula(features.float().double(), targets.float().double(), 0.1)
    np.testing.assert_allclose(solution.coef.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ridge", [-1e-3, float("nan"), float("inf")])
def test_invalid_ridge_is_rejected_with_its_value(ridge):
    features, targets = _problem(10, 3, seed=9)
    with pytest.raises(ValueError, match=r"ridge must be a finite number >= 0, got"):
        solve_ridge(features, targets, ridge=ridge)
    with pytest.raises(ValueError, match="ridge"):
        NormalEquations().accumulate(features, targets).solve(ridge=ridge)


def test_mismatched_shapes_are_rejected_with_both_shapes():
    features, targets = _problem(10, 3, seed=10)
    with pytest.raises(ValueError, match=r"targets must have shape \(10,\).*got shape \(9,\)"):
        solve_ridge(features, targets[:9])
    with pytest.raises(ValueError, match=r"features must have shape \(n, p\), got shape \(10,\)"):
        solve_ridge(features[:, 0], targets)
    equations = NormalEquations().accumulate(features, targets)
    with pytest.raises(ValueError, match=r"do not match earlier blocks: \(b, 3\)"):
        equations.accumulate(features[:, :2], targets)
    with pytest.raises(ValueError, match="at least one accumulated block"):
        NormalEquations().solve(ridge=0.1)


def test_cholesky_in_place_factors_over_the_matrix_storage():
    # UᵀU = S to round-off, U upper triangular, written over S's own storage (no copy), and
    # ok = False for an indefinite S.
    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.standard_normal((40, 40)))
    s = a @ a.T + 40 * torch.eye(40, dtype=torch.float64)
    work = s.clone()
    factor, ok = cholesky_in_place(work)
    assert ok and factor.data_ptr() == work.data_ptr()
    torch.testing.assert_close(factor, torch.linalg.cholesky(s, upper=True), rtol=0, atol=1e-12)
    torch.testing.assert_close(factor.T @ factor, s, rtol=1e-13, atol=1e-12)
    indefinite = torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    assert not cholesky_in_place(indefinite)[1]


def _shifted_kernel(size: int, relative_shift: float, seed: int = 0):
    """(K + sI, s) for an RBF kernel matrix K of ``size`` points in 3-D (numerically singular
    without the shift), s = relative_shift · tr K (kernel ridge's nλ with λ = 10^k · mean K_ii)."""
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((size, 3)))
    kernel = torch.exp(-0.5 * torch.cdist(x, x) ** 2)
    shift = relative_shift * float(kernel.diagonal().sum())
    return kernel + shift * torch.eye(size, dtype=torch.float64), shift


@pytest.mark.parametrize("relative_shift, route", [(1e-2, "cholesky-mixed"),
                                                   (1e-5, "cholesky-mixed"),
                                                   (1e-8, "cholesky")])
def test_solve_shifted_refines_a_float32_factor_where_the_trace_bounds_the_condition(
        monkeypatch, relative_shift, route):
    """The bound (tr K + s)/s ≤ 10⁶ (relative shifts 1e-2, 1e-5) takes the mixed route and agrees
    with the float64 factor to 1e-11 relative; 1e-8 (bound 10⁸, beyond float32's reach) and a
    size under MIXED_MIN_SIZE, two right-hand sides or no shift keep the float64 factor (which
    agrees with itself to cond·ε ≈ 1e-8 there)."""
    from lazylab.solvers import ridge as module
    monkeypatch.setattr(module, "MIXED_MIN_SIZE", 100)
    matrix, shift = _shifted_kernel(300, relative_shift)
    rhs = torch.from_numpy(np.random.default_rng(1).standard_normal(300))
    reference, ok = solve_symmetric(matrix, rhs)
    solution, chosen = module.solve_shifted(matrix.clone(), rhs, shift, rebuild=matrix.clone)
    assert ok and chosen == route
    tolerance = 1e-11 if route == "cholesky-mixed" else 1e-6
    assert torch.linalg.vector_norm(solution - reference) <= tolerance * torch.linalg.vector_norm(
        reference)
    small, _ = _shifted_kernel(80, 1e-2)
    assert module.solve_shifted(small.clone(), rhs[:80], shift, rebuild=small.clone)[1] == \
        "cholesky"
    two = torch.stack([rhs, rhs], dim=1)
    assert module.solve_shifted(matrix.clone(), two, shift, rebuild=matrix.clone)[1] == "cholesky"
    assert module.solve_shifted(matrix.clone(), rhs, 0.0, rebuild=matrix.clone)[1] == "cholesky"


def test_factor_solve_inverts_the_factored_matrix_for_vectors_and_blocks_in_the_factor_dtype():
    # Two triangular solves with U from torch's Cholesky: S x = r to round-off (cond(S) ≈ 10 here,
    # so ≈ 1e-15 relative; checked at 1e-12), shaped as r; a float32 factor answers in float32
    # within its precision (≈ 10·2⁻²⁴; checked at 1e-5).
    rng = np.random.default_rng(11)
    left = torch.from_numpy(rng.standard_normal((40, 40)))
    matrix = left @ left.T / 40 + torch.eye(40, dtype=torch.float64)
    upper = torch.linalg.cholesky(matrix, upper=True)
    for rhs in (torch.from_numpy(rng.standard_normal(40)),
                torch.from_numpy(rng.standard_normal((40, 3)))):
        solution = ridge_module.factor_solve(upper, rhs)
        assert solution.shape == rhs.shape
        assert float((matrix @ solution - rhs).norm() / rhs.norm()) < 1e-12
        single = ridge_module.factor_solve(upper.float(), rhs)
        assert single.dtype == torch.float32
        assert float((single.double() - solution).norm() / solution.norm()) < 1e-5
    lower = torch.linalg.cholesky(matrix)   # a lower factor solves with its transpose
    torch.testing.assert_close(ridge_module.factor_solve(lower.mT, rhs), solution, rtol=1e-12,
                               atol=0)
