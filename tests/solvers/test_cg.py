"""Preconditioned conjugate gradient: exact solves, exact termination, matrix unknowns, edge cases.

Tolerances: for SPD A with condition number κ, ‖x − x*‖/‖x*‖ ≤ κ · ‖b − Ax‖/‖b‖, so a solve to
relative residual tol is checked against the direct solution at κ·tol (times 10 for rounding).
"""

import math

import numpy as np
import pytest
import torch

from lazylab.solvers.cg import conjugate_gradient


def _spd(size: int, eigenvalues: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Q diag(eigenvalues) Qᵀ with Q Haar-orthogonal, (size, size) float64."""
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    return torch.from_numpy((q * eigenvalues) @ q.T)


def test_solves_spd_system_to_tolerance_within_chebyshev_bound():
    # ‖e_k‖_A ≤ 2ρᵏ‖e_0‖_A, ρ = (√κ − 1)/(√κ + 1), and residual ≤ √κ·(A-norm error), so
    # k ≥ ln(2√κ/tol)/ln(1/ρ) iterations suffice in exact arithmetic (131 here, < size).
    rng = np.random.default_rng(0)
    size, kappa, tol = 200, 100.0, 1e-10
    matrix = _spd(size, np.geomspace(1.0, kappa, size), rng)
    rhs = torch.from_numpy(rng.standard_normal(size))
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=tol)
    exact = torch.linalg.solve(matrix, rhs)
    rho = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    bound = int(np.ceil(np.log(2 * np.sqrt(kappa) / tol) / np.log(1 / rho)))
    assert result.converged and result.iterations <= min(bound, size)
    assert result.residual <= 10 * tol  # recomputed residual: recursion drift allowed 10×
    error = torch.linalg.vector_norm(result.solution - exact) / torch.linalg.vector_norm(exact)
    assert error <= 10 * kappa * tol


def test_terminates_after_number_of_distinct_eigenvalues():
    # Krylov theory: the CG residual polynomial vanishes on 3 distinct eigenvalues at step 3.
    rng = np.random.default_rng(1)
    size = 30
    matrix = _spd(size, np.repeat([1.0, 3.0, 7.0], size // 3), rng)
    rhs = torch.from_numpy(rng.standard_normal(size))
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=1e-10)
    assert result.iterations <= 3
    torch.testing.assert_close(result.solution, torch.linalg.solve(matrix, rhs),
                               rtol=1e-9, atol=1e-9)


def test_matrix_shaped_unknowns_solve_the_kronecker_sum_system():
    # X ↦ A X + X B with A, B SPD is SPD on vec(X) (eigenvalues a_i + b_j); compare with kron.
    rng = np.random.default_rng(2)
    rows, cols = 12, 5
    a = _spd(rows, np.linspace(1.0, 4.0, rows), rng)
    b = _spd(cols, np.linspace(0.5, 2.0, cols), rng)
    rhs = torch.from_numpy(rng.standard_normal((rows, cols)))
    result = conjugate_gradient(lambda x: a @ x + x @ b, rhs, tol=1e-12)
    system = torch.kron(a, torch.eye(cols, dtype=torch.float64)) + \
        torch.kron(torch.eye(rows, dtype=torch.float64), b.T.contiguous())
    exact = torch.linalg.solve(system, rhs.reshape(-1)).reshape(rows, cols)
    assert result.solution.shape == (rows, cols)
    assert result.iterations <= rows * cols
    kappa = (4.0 + 2.0) / (1.0 + 0.5)
    torch.testing.assert_close(result.solution, exact, rtol=0, atol=10 * kappa * 1e-12 *
                               float(torch.linalg.vector_norm(exact)))


def test_zero_rhs_returns_zero_without_iterating():
    matrix = torch.eye(4, dtype=torch.float64)
    result = conjugate_gradient(lambda v: matrix @ v, torch.zeros(4, dtype=torch.float64))
    assert result.iterations == 0 and result.converged and result.residual == 0.0
    assert torch.count_nonzero(result.solution) == 0


def test_exact_preconditioner_converges_in_one_iteration():
    # Jacobi on a diagonal matrix is the exact inverse: one step solves it; plain CG needs more.
    diagonal = torch.logspace(0, 6, 50, dtype=torch.float64)
    rhs = torch.ones(50, dtype=torch.float64)
    preconditioned = conjugate_gradient(lambda v: diagonal * v, rhs,
                                        preconditioner=lambda r: r / diagonal, tol=1e-12)
    plain = conjugate_gradient(lambda v: diagonal * v, rhs, tol=1e-12)
    assert preconditioned.iterations == 1
    assert plain.iterations > 5
    torch.testing.assert_close(preconditioned.solution, 1 / diagonal, rtol=1e-12, atol=0)


def test_initial_guess_at_solution_needs_no_iteration_and_callback_sees_each_step():
    rng = np.random.default_rng(3)
    matrix = _spd(20, np.linspace(1.0, 10.0, 20), rng)
    rhs = torch.from_numpy(rng.standard_normal(20))
    exact = torch.linalg.solve(matrix, rhs)
    assert conjugate_gradient(lambda v: matrix @ v, rhs, initial=exact, tol=1e-8).iterations == 0
    seen = []
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=1e-10,
                                callback=lambda i, r: seen.append((i, r)))
    assert [i for i, _ in seen] == list(range(1, result.iterations + 1))
    assert seen[-1][1] <= 1e-10 < seen[0][1]


@pytest.mark.parametrize("max_iter", [1, 3])
def test_max_iter_caps_iterations_and_reports_not_converged(max_iter):
    rng = np.random.default_rng(4)
    matrix = _spd(30, np.geomspace(1.0, 1e4, 30), rng)
    rhs = torch.from_numpy(rng.standard_normal(30))
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=1e-12, max_iter=max_iter)
    assert result.iterations == max_iter and not result.converged
    assert result.stop_reason == "budget" and result.steps == max_iter
    assert result.tolerance == 1e-12 and result.criterion == result.residual > 1e-12
    recomputed = float(torch.linalg.vector_norm(rhs - matrix @ result.solution)
                       / torch.linalg.vector_norm(rhs))
    assert result.residual == pytest.approx(recomputed, rel=1e-12)


def test_certificate_of_a_converged_spd_solve():
    """The certificate states steps, the recomputed residual (≤ tol) and the tolerance."""
    rng = np.random.default_rng(5)
    matrix = _spd(40, np.geomspace(1.0, 1e3, 40), rng)
    rhs = torch.from_numpy(rng.standard_normal(40))
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=1e-11, max_iter=400)
    recomputed = float(torch.linalg.vector_norm(rhs - matrix @ result.solution)
                       / torch.linalg.vector_norm(rhs))
    assert result.converged and result.stop_reason == "tolerance" and result.tolerance == 1e-11
    assert 0 < result.steps == result.iterations <= 400
    assert result.criterion == pytest.approx(recomputed, rel=1e-12) and recomputed <= 1e-11


def test_non_finite_operator_stops_as_diverged_with_a_finite_solution():
    """A = diag(1..5) whose second product turns NaN: one good step is kept, none is NaN."""
    calls, diagonal = iter(range(100)), torch.arange(1.0, 6.0, dtype=torch.float64)

    def apply(v):
        return diagonal * v * (math.nan if next(calls) >= 1 else 1.0)

    result = conjugate_gradient(apply, torch.ones(5, dtype=torch.float64), tol=1e-12)
    assert result.stop_reason == "diverged" and not result.converged
    assert result.iterations == 1 and bool(torch.isfinite(result.solution).all())
    assert result.residual == math.inf


def test_unreachable_tolerance_stagnates_instead_of_claiming_convergence():
    """tol below the float64 round-off floor (~1e-16·κ): restarts end as 'stagnated'."""
    rng = np.random.default_rng(6)
    matrix = _spd(30, np.geomspace(1.0, 1e6, 30), rng)
    rhs = torch.from_numpy(rng.standard_normal(30))
    result = conjugate_gradient(lambda v: matrix @ v, rhs, tol=1e-20, max_iter=10_000)
    assert not result.converged and result.stop_reason in ("stagnated", "budget")
    assert result.residual > 1e-20
