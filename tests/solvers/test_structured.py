"""CG preconditioned by diagonal + low rank (lazylab.solvers.structured) against dense solves."""

import numpy as np
import pytest
import torch

from lazylab.solvers.structured import low_rank_preconditioned_solve, woodbury_inverse


def _system(seed, n=300, rank=12, coupling=0.05):
    """S = VVᵀ + R: V with large columns, R = D + a small PSD coupling (R close to diagonal)."""
    rng = np.random.default_rng(seed)
    factors = torch.as_tensor(3.0 * rng.standard_normal((n, rank)))
    noise = torch.as_tensor(rng.standard_normal((n, 2 * n)) / np.sqrt(2 * n))
    rest = torch.diag(torch.as_tensor(rng.uniform(0.5, 2.0, n))) + coupling * noise @ noise.T
    return factors @ factors.T + rest, factors, torch.as_tensor(rng.standard_normal(n))


def test_woodbury_inverse_is_the_inverse_of_diagonal_plus_low_rank():
    rng = np.random.default_rng(1)
    diagonal = torch.as_tensor(rng.uniform(0.1, 3.0, 50))
    factors = torch.as_tensor(rng.standard_normal((50, 7)))
    rhs = torch.as_tensor(rng.standard_normal(50))
    dense = torch.diag(diagonal) + factors @ factors.T
    torch.testing.assert_close(woodbury_inverse(diagonal, factors)(rhs),
                               torch.linalg.solve(dense, rhs), rtol=1e-12, atol=1e-13)


def test_solution_meets_the_tolerance_and_equals_the_dense_solve():
    matrix, factors, rhs = _system(2)
    got = low_rank_preconditioned_solve(matrix, rhs, factors, tol=1e-12)
    assert got is not None
    assert float((rhs - matrix @ got).norm() / rhs.norm()) <= 1e-12
    expected = torch.linalg.solve(matrix, rhs)
    cond = float(torch.linalg.cond(matrix))
    assert float((got - expected).norm() / expected.norm()) <= 1e-12 * cond


def test_the_low_rank_part_makes_the_iteration_short():
    # Without V the large directions (eigenvalues ~ 9n against ~1) cost many more iterations.
    matrix, factors, rhs = _system(3)
    counts = {}
    for name, v in (("low rank", factors), ("diagonal only", factors[:, :0])):
        calls = []

        def apply(x, calls=calls):
            calls.append(1)
            return matrix @ x
        wrapped = type("Counted", (), {"__matmul__": lambda self, x: apply(x),
                                       "diagonal": lambda self: matrix.diagonal()})()
        assert low_rank_preconditioned_solve(wrapped, rhs, v, tol=1e-10, max_iter=500) is not None
        counts[name] = len(calls)
    assert counts["low rank"] <= 25 and counts["diagonal only"] >= 2 * counts["low rank"]


def test_declines_without_a_positive_remainder_or_within_the_budget():
    matrix, factors, rhs = _system(4)
    exact = factors @ factors.T          # S = VVᵀ: D = 0, the preconditioner would be singular
    assert low_rank_preconditioned_solve(exact, rhs, factors) is None
    assert low_rank_preconditioned_solve(matrix, rhs, factors, tol=1e-14, max_iter=2) is None
