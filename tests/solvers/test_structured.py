"""CG preconditioned by diagonal + low rank (lazylab.solvers.structured) against dense solves."""

import numpy as np
import pytest
import torch

from lazylab.solvers import structured
from lazylab.solvers.structured import (LowerSymmetric, low_rank_preconditioned_solution,
                                        low_rank_preconditioned_solve, mirror_lower,
                                        upper_outer, woodbury_inverse)


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


def _lower_with_garbage(matrix):
    """A buffer holding ``matrix``'s lower triangle and NaN above it (never to be read)."""
    buffer = matrix.clone()
    buffer[torch.ones_like(matrix, dtype=torch.bool).triu(1)] = float("nan")
    return buffer


@pytest.mark.parametrize("rows", [1, 7, 32, 500, "blas"])
def test_lower_symmetric_applies_the_low_rank_and_shifted_matrix_from_one_triangle(rows, monkeypatch):
    # BLAS's dsymv on a contiguous float64 buffer; strips (a strided buffer) of 1, 7 (ragged:
    # 300 = 42·7 + 6), 32 and more rows than N. Only the lower triangle is read (NaN above
    # would poison any product that touched it). Same products as the dense matrix up to
    # summation order: ≤ 4·n·ε·‖S‖‖v‖ entrywise, checked at 1e-13 relative.
    matrix, factors, rhs = _system(5)
    spread = factors[:, :2] / 10
    dense = matrix + spread @ spread.T + 0.3 * torch.eye(300, dtype=torch.float64)
    lower = _lower_with_garbage(matrix)
    if rows != "blas":
        monkeypatch.setattr(structured, "MATVEC_ROWS", rows)
        lower = torch.empty(300, 301, dtype=torch.float64)[:, :300].copy_(lower)
    operator = LowerSymmetric(lower, low_rank=spread, shift=0.3)
    assert operator.blas == (rows == "blas")
    scale = float(dense.abs().max() * rhs.abs().sum())
    assert float((operator @ rhs - dense @ rhs).abs().max()) <= 1e-13 * scale
    torch.testing.assert_close(operator.diagonal(), dense.diagonal(), rtol=1e-15, atol=0)
    assert operator.shape == (300, 300)
    full = operator.dense()
    assert torch.equal(full, full.T)
    torch.testing.assert_close(full, dense, rtol=0, atol=1e-14 * float(dense.abs().max()))


def test_mirror_lower_makes_the_buffer_symmetric_by_ragged_blocks():
    matrix, _, _ = _system(6, n=70)
    mirrored = mirror_lower(_lower_with_garbage(matrix), rows=16)
    assert torch.equal(mirrored, mirrored.T) and torch.equal(mirrored.tril(), matrix.tril())


def test_solution_comes_with_the_certified_product():
    # S x is the product the certificate computed for x itself: exactly what S @ x gives for the
    # operator (same code, same x), and the solution is low_rank_preconditioned_solve's.
    matrix, factors, rhs = _system(7)
    operator = LowerSymmetric(_lower_with_garbage(matrix))
    solution, product = low_rank_preconditioned_solution(operator, rhs, factors)
    assert torch.equal(product, operator @ solution)
    assert torch.equal(solution, low_rank_preconditioned_solve(operator, rhs, factors))
    assert float((rhs - product).norm() / rhs.norm()) <= 1e-12


def test_large_empty_gives_independent_writable_float64_matrices():
    # Above 2 MB on the CPU the buffer is an advised anonymous mapping; below, torch.empty.
    for rows, columns in ((600, 700), (3, 4)):
        first, second = structured.large_empty(rows, columns), structured.large_empty(rows, columns)
        assert first.shape == (rows, columns) and first.dtype == torch.float64
        first.fill_(1.0)
        second.fill_(2.0)
        assert float(first.sum()) == rows * columns and float(second.sum()) == 2 * rows * columns
        assert first.is_contiguous()


def test_float32_capacitance_is_a_close_preconditioner():
    # VᵀD⁻¹V summed in float32 (r = 12 terms of size ≤ ‖VᵀD⁻¹V‖ per entry, then rounded) moves
    # C = I + VᵀD⁻¹V by ~r·2⁻²⁴‖C‖, so C⁻¹ (and the Woodbury correction) by ~r·2⁻²⁴·cond(C)
    # relative: another SPD preconditioner, with the solves' certificate unchanged.
    matrix, factors, rhs = _system(8)
    diagonal = torch.as_tensor(np.random.default_rng(8).uniform(0.5, 2.0, 300))
    exact = woodbury_inverse(diagonal, factors)(rhs)
    approximate = structured._woodbury(diagonal, factors, torch.float32)(rhs)
    capacitance = torch.eye(12, dtype=torch.float64) + factors.T @ (factors / diagonal[:, None])
    bound = 12 * 2.0 ** -24 * float(torch.linalg.cond(capacitance))
    assert 0 < float((approximate - exact).norm() / exact.norm()) <= bound


@pytest.mark.parametrize("size, rows", [(1, 512), (7, 3), (300, 64), (300, 512)])
def test_upper_outer_is_the_full_product_and_exactly_symmetric(size, rows):
    # The same sums less exact zeros: the full product's value to round-off (≈ size·ε
    # relative to the largest entry; checked at 1e-14) and symmetric to the bit.
    rng = np.random.default_rng(size)
    left = torch.from_numpy(rng.standard_normal((size, size)))
    factor = torch.linalg.cholesky(left @ left.T + size * torch.eye(size, dtype=torch.float64),
                                   upper=True)
    product = upper_outer(factor, rows)
    expected = factor @ factor.T
    assert float((product - expected).abs().max()) <= 1e-14 * float(expected.abs().max())
    assert torch.equal(product, product.T)
    assert product.is_contiguous()  # row-major whatever the factor's layout (a Cholesky's is not)
