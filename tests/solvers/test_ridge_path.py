"""Ridge paths: the Gram formed once, a Cholesky per λ or one eigendecomposition for all λ, gives
what a solve per λ gives.

Tolerances: all routes are backward stable, so they agree to about m·ε·cond(S + λI) relative in
the coefficients (m = min(n, p)). On the Gaussian problems below (n ≥ 4p or p ≥ 4n, cond(F) ≲ 3)
that is ≲ 10⁻¹³; the checks use 10⁻¹⁰. Ill-conditioned cases state their own bound.
"""

import numpy as np
import pytest
import torch

from lazylab.solvers import solve_ridge
from lazylab.solvers import ridge_path as path_module
from lazylab.solvers.ridge import pseudo_inverse_cutoff, pseudo_solve, solve_symmetric
from lazylab.solvers.ridge_path import EIGH_MIN_SHIFTS, ridge_path, symmetric_path

RIDGES = [1e-8, 1e-6, 1e-4, 1e-2, 1.0, 1e2]


def _problem(n: int, p: int, seed: int, k: int | None = None, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, p)) + offset
    targets = rng.standard_normal((n,) if k is None else (n, k))
    return torch.from_numpy(features), torch.from_numpy(targets)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("route", ["cholesky", "eigh"])
@pytest.mark.parametrize("n, p, k, intercept, side", [
    (80, 12, None, False, "primal"), (80, 12, 3, True, "primal"),
    (12, 80, None, True, "dual"), (12, 80, 2, False, "dual")])
def test_path_equals_a_solve_per_ridge(n, p, k, intercept, side, route):
    features, targets = _problem(n, p, seed=n + p, k=k, offset=0.5)
    path = ridge_path(features, targets, RIDGES + [0.0], fit_intercept=intercept, method=route)
    assert len(path) == len(RIDGES) + 1
    label = side + ("-path" if route == "eigh" else "")
    for ridge, solution in zip(RIDGES + [0.0], path):
        single = solve_ridge(features, targets, ridge=ridge, fit_intercept=intercept)
        assert solution.method == (label if ridge > 0 else "lstsq")
        assert solution.coef.shape == single.coef.shape
        assert solution.intercept.shape == single.intercept.shape
        assert _relative(solution.coef, single.coef) < 1e-10
        torch.testing.assert_close(solution.intercept, single.intercept, rtol=1e-10, atol=1e-12)


def test_ill_conditioned_features_agree_in_predictions_to_a_stated_bound():
    # F = G diag(10^(−6 k/p)): singular values span 6 decades, FᵀF/n spans 12, so S + λI at
    # λ = 10⁻⁸·max λ(S) has cond ≈ 10⁸ and the coefficients may differ by m·ε·10⁸ ≈ 10⁻⁷ along
    # the weakest directions. Predictions F a weight those directions by their small singular
    # values and agree much better: bound 10⁻⁸ relative, on the training rows and on new rows.
    features, targets = _problem(200, 40, seed=7)
    scales = torch.logspace(0, -6, 40, dtype=torch.float64)
    features, fresh = features * scales, _problem(100, 40, seed=8)[0] * scales
    top = float(torch.linalg.eigvalsh(features.T @ features / 200)[-1])
    path = ridge_path(features, targets, [top * r for r in RIDGES], method="eigh")
    for ridge, solution in zip(RIDGES, path):
        single = solve_ridge(features, targets, ridge=top * ridge)
        for rows in (features, fresh):
            assert _relative(solution.predict(rows), single.predict(rows)) < 1e-8, ridge


def test_tiny_ridges_on_a_rank_deficient_problem_agree_where_the_data_can_tell():
    # Duplicated columns: FᵀF/n has a 10-dimensional null space. A λ far below the spectrum
    # (10⁻¹⁴ of it: below the path's cut-off 10⁻¹²) is inverted by the per-λ Cholesky and cut by
    # the path; Fᵀy has no component there (up to round-off), so predictions on rows with the
    # same duplication agree to ε·cond of the range (≈ 10⁻¹⁴), checked at 10⁻⁹.
    base, targets = _problem(120, 10, seed=9)
    fresh = _problem(50, 10, seed=10)[0]
    features, fresh = torch.cat([base, base], 1), torch.cat([fresh, fresh], 1)
    top = float(torch.linalg.eigvalsh(features.T @ features / 120)[-1])
    ridges = [top * r for r in (1e-14, 1e-10, 1e-6)]
    for ridge, solution in zip(ridges, ridge_path(features, targets, ridges, method="eigh")):
        single = solve_ridge(features, targets, ridge=ridge)
        for rows in (features, fresh):
            assert _relative(solution.predict(rows), single.predict(rows)) < 1e-9, ridge


def test_symmetric_path_is_the_shifted_pseudo_solve():
    rng = np.random.default_rng(3)
    left = torch.from_numpy(rng.standard_normal((30, 20)))
    matrix, rhs = left @ left.T, torch.from_numpy(rng.standard_normal((30, 2)))  # rank 20
    # Both are eigendecompositions (of S and of S + sI): they agree to about m·ε·cond(S + sI)
    # in norm, 30·1.1e-16·(‖S‖ ≈ 84)/s ≈ 3e-10 at s = 1e-3 (measured 1e-11; elementwise up to
    # 3e-9), checked at 1e-8. The null space is inverted (as 1/s) for s > 0 and cut at s = 0.
    shifts = [1e-3, 1.0]
    for shift, (solution, route) in zip(shifts, symmetric_path(matrix, rhs, shifts, method="eigh")):
        shifted = matrix + shift * torch.eye(30, dtype=torch.float64)
        assert route == "path" and _relative(solution, pseudo_solve(shifted, rhs)) < 1e-8, shift
    values = torch.linalg.eigvalsh(matrix)
    assert int((values > pseudo_inverse_cutoff(values)).sum()) == 20  # the null space is cut


@pytest.mark.parametrize("ridges, message", [([], "non-empty"), ([1.0, -1.0], r"ridges\[1\]"),
                                             ([float("nan")], r"ridges\[0\]")])
def test_bad_ridges_are_named(ridges, message):
    features, targets = _problem(10, 3, seed=0)
    with pytest.raises(ValueError, match=message):
        ridge_path(features, targets, ridges)


def test_the_cholesky_route_is_the_solve_per_shift_and_auto_picks_by_grid_length(monkeypatch):
    # Zero shifts always take the Cholesky route, here its pseudo-inverse fallback (rank 20 < 30).
    rng = np.random.default_rng(4)
    left = torch.from_numpy(rng.standard_normal((30, 20)))
    matrix, rhs = left @ left.T, torch.from_numpy(rng.standard_normal(30))
    before = matrix.clone()
    shifts = [0.0, 1e-2, 1.0]
    for method in ("cholesky", "eigh"):
        solved = symmetric_path(matrix, rhs, shifts, method=method)
        for shift, (solution, route) in zip(shifts, solved):
            expected, ok = solve_symmetric(matrix + shift * torch.eye(30, dtype=torch.float64), rhs)
            assert route == ("cholesky" if ok else "eigh") if method == "cholesky" or not shift \
                else route == "path"
            assert _relative(solution, expected) < 1e-10, (method, shift)
    assert torch.equal(matrix, before)  # the caller's matrix is kept
    routes = {route for _, route in symmetric_path(matrix, rhs, [1.0] * (EIGH_MIN_SHIFTS - 1))}
    assert routes == {"cholesky"}
    assert {route for _, route in symmetric_path(matrix, rhs, [1.0] * EIGH_MIN_SHIFTS)} == {"path"}
    monkeypatch.setattr(path_module, "EIGH_MIN_SHIFTS", 2)
    assert [r for _, r in symmetric_path(matrix, rhs, [0.0, 1.0, 2.0])] == ["eigh", "path", "path"]
    with pytest.raises(ValueError, match="method"):
        symmetric_path(matrix, rhs, [1.0], method="svd")
