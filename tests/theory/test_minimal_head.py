"""minimal_max_head and ridge_path_head_bounds against brute force on tiny convex programs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize

from lazylab.theory.minimal_head import minimal_max_head, ridge_path_head_bounds


def _random_problem(rows: int, features: int, seed: int):
    """A least-squares risk R(u) = E(y − uᵀf)² over an empirical measure of `rows` points."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((rows, features))
    y = f @ rng.standard_normal(features) + 0.3 * rng.standard_normal(rows)
    return f.T @ f / rows, f.T @ y / rows, float(y @ y / rows)


def _minimal_risk(gram, cross, second):
    return second - cross @ np.linalg.solve(gram, cross)


def test_two_features_match_a_grid_search():
    gram, cross, second = _random_problem(50, 2, seed=0)
    tau = _minimal_risk(gram, cross, second) + 0.1
    result = minimal_max_head(gram, cross, second, tau, relative_tolerance=1e-4)
    grid = np.linspace(-3, 3, 1201)
    u1, u2 = np.meshgrid(grid, grid)
    heads = np.stack([u1.ravel(), u2.ravel()], axis=1)
    risks = second - 2 * heads @ cross + np.einsum("ni,ij,nj->n", heads, gram, heads)
    brute = np.abs(heads[risks <= tau]).max(axis=1).min()
    spacing = grid[1] - grid[0]
    assert result.lower <= result.upper <= result.lower * (1 + 1e-4) + 1e-12
    assert result.upper == pytest.approx(brute, abs=spacing)
    assert result.risk <= tau and np.abs(result.head).max() <= result.upper * (1 + 1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_five_features_match_a_general_solver(seed):
    gram, cross, second = _random_problem(40, 5, seed=seed)
    tau = _minimal_risk(gram, cross, second) + 0.05
    result = minimal_max_head(gram, cross, second, tau, relative_tolerance=1e-5)
    # the same program as  min t  s.t. |u_i| ≤ t, R(u) ≤ τ, with SLSQP from several starts
    best = np.inf
    for start in itertools.islice(np.random.default_rng(seed).standard_normal((8, 5)), 8):
        solution = optimize.minimize(
            lambda z: z[-1], np.append(start, 3.0), method="SLSQP",
            constraints=[{"type": "ineq", "fun": lambda z: tau - (second - 2 * z[:-1] @ cross
                                                                   + z[:-1] @ gram @ z[:-1])},
                         {"type": "ineq", "fun": lambda z: z[-1] - np.abs(z[:-1])}],
            options={"ftol": 1e-12, "maxiter": 500})
        if solution.success:
            best = min(best, solution.x[-1])
    assert np.isfinite(best)
    assert result.lower * (1 - 1e-6) <= best * (1 + 1e-6)
    assert result.upper == pytest.approx(best, rel=2e-4)


def test_ridge_path_brackets_the_minimum():
    gram, cross, second = _random_problem(60, 6, seed=3)
    tau = _minimal_risk(gram, cross, second) + 0.1
    exact = minimal_max_head(gram, cross, second, tau, relative_tolerance=1e-5)
    lower, upper = ridge_path_head_bounds(gram, cross, second, tau)
    assert lower <= exact.upper * (1 + 1e-6) and exact.lower <= upper * (1 + 1e-6)
    assert lower < upper


def test_unreachable_threshold_raises_and_trivial_is_zero():
    gram, cross, second = _random_problem(30, 3, seed=4)
    below = 0.5 * _minimal_risk(gram, cross, second)
    with pytest.raises(ValueError, match="below the minimal risk"):
        minimal_max_head(gram, cross, second, below)
    with pytest.raises(ValueError, match="below the minimal risk"):
        ridge_path_head_bounds(gram, cross, second, below)
    assert minimal_max_head(gram, cross, second, 2 * second).upper == 0.0


@pytest.mark.parametrize("seed", [5, 6])
def test_a_coarse_bracket_contains_the_precise_minimum(seed):
    """The study's coarse bracket (2 %, its iteration budget) holds a 10⁻⁷-tight one, r = 80."""
    gram, cross, second = _random_problem(120, 80, seed=seed)
    tau = _minimal_risk(gram, cross, second) + 0.05
    precise = minimal_max_head(gram, cross, second, tau, relative_tolerance=1e-7,
                               iterations=200_000)
    coarse = minimal_max_head(gram, cross, second, tau, relative_tolerance=2e-2)
    assert precise.upper - precise.lower <= 1e-7 * precise.upper
    assert coarse.lower <= precise.upper and precise.lower <= coarse.upper
    assert coarse.upper - coarse.lower <= 2e-2 * coarse.upper
    assert coarse.risk <= tau and np.abs(coarse.head).max() <= coarse.upper * (1 + 1e-12)


def test_a_shared_spectrum_gives_the_same_answers():
    gram, cross, second = _random_problem(60, 6, seed=7)
    tau = _minimal_risk(gram, cross, second) + 0.1
    spectrum = np.linalg.eigh(gram)
    alone = minimal_max_head(gram, cross, second, tau)
    shared = minimal_max_head(gram, cross, second, tau, spectrum=spectrum)
    assert (alone.lower, alone.upper) == (shared.lower, shared.upper)
    assert ridge_path_head_bounds(gram, cross, second, tau) == \
        ridge_path_head_bounds(gram, cross, second, tau, spectrum=spectrum)
    with pytest.raises(ValueError, match="spectrum must be"):
        minimal_max_head(gram, cross, second, tau, spectrum=(spectrum[0][:3], spectrum[1]))
