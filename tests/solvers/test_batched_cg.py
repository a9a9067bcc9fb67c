"""BatchedCG: each column is conjugate_gradient's iteration; refinement by an exact operator."""

import numpy as np
import pytest
import torch

from lazylab.solvers.batched_cg import BatchedCG
from lazylab.solvers.cg import REPLACEMENTS, conjugate_gradient

M = 60


def _systems(count: int, condition: float = 1e4, seed: int = 0):
    """``count`` SPD matrices (M × M, spectra log-spaced over ``condition``) and right-hand sides
    (M, count, 1)."""
    rng = np.random.default_rng(seed)
    matrices = []
    for _ in range(count):
        q, _ = np.linalg.qr(rng.standard_normal((M, M)))
        matrices.append(torch.from_numpy((q * np.geomspace(1.0, 1.0 / condition, M)) @ q.T))
    return matrices, torch.from_numpy(rng.standard_normal((M, count, 1)))


def _exact(matrices):
    def apply(x, columns):
        return torch.stack([matrices[j] @ x[:, i] for i, j in enumerate(columns)], dim=1)
    return apply


def _noisy(matrices, level: float, seed: int = 1):
    """The exact products plus Gaussian noise of ``level`` relative to ‖x‖ in every call: an
    operator whose round-off floor is ≈ ``level`` (FALKON's normal matrix, batched_cg)."""
    generator, exact = torch.Generator().manual_seed(seed), _exact(matrices)

    def apply(x, columns):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return exact(x, columns) + level * noise * torch.linalg.vector_norm(x, dim=0)
    return apply


def _residuals(matrices, rhs, x):
    return [float(torch.linalg.vector_norm(rhs[:, j] - matrices[j] @ x[:, j])
                  / torch.linalg.vector_norm(rhs[:, j])) for j in range(rhs.shape[1])]


def test_every_column_is_conjugate_gradients_own_iteration():
    matrices, rhs = _systems(3)
    rhs[:, 1] = 0.0  # a zero right-hand side finishes at once
    path = BatchedCG(_exact(matrices), rhs, 1e-10, 500)
    path.run()
    for j, matrix in enumerate(matrices):
        x, iterations, residual, converged, reason = path.outcome(j)
        alone = conjugate_gradient(lambda v, a=matrix: a @ v, rhs[:, j], tol=1e-10, max_iter=500)
        assert (iterations, converged, reason) == (alone.iterations, True, alone.stop_reason)
        torch.testing.assert_close(x, alone.solution, rtol=1e-12, atol=1e-12)
        assert residual == pytest.approx(alone.residual, rel=1e-6, abs=1e-300)
    assert path.outcome(1)[1:] == (0, 0.0, True, "tolerance")
    # one round a step or a recomputed residual, all columns at once: the slowest column's
    assert path.rounds == max(c.iterations + 1 + c.replacements for c in path.columns)


def test_a_noisy_operator_stagnates_and_refinement_by_the_exact_one_certifies():
    # Noise 1e-9 in every product: CG cannot certify 1e-12 with it (its recomputed residual
    # stays near 4e-7 through REPLACEMENTS restarts); refined with exact residuals, each column
    # reaches 1e-12 of the exact system, checked here independently, and the exact checks are
    # shared (one application serves every reopened column).
    matrices, rhs = _systems(3, condition=100.0)
    path = BatchedCG(_noisy(matrices, 1e-9), rhs, 1e-12, 2000)
    path.run()
    assert [path.outcome(j)[4] for j in range(3)] == ["stagnated"] * 3
    assert all(path.outcome(j)[3] is False for j in range(3))
    assert path.refine(_exact(matrices)) == [0, 1, 2]
    for j, residual in enumerate(_residuals(matrices, rhs, path.x)):
        _, _, certified, converged, reason = path.outcome(j)
        assert (converged, reason) == (True, "tolerance")
        assert residual <= 1e-12 and certified == pytest.approx(residual, rel=1e-6)
    assert 2 <= path.exact_checks <= 1 + REPLACEMENTS


def test_refinement_leaves_converged_columns_alone():
    matrices, rhs = _systems(2)
    path = BatchedCG(_exact(matrices), rhs, 1e-8, 500)
    path.run()
    before = path.x.clone(), [path.outcome(j)[1:] for j in range(2)]
    assert path.refine(_noisy(matrices, 1.0)) == []
    assert torch.equal(path.x, before[0]) and [path.outcome(j)[1:] for j in range(2)] == before[1]
    assert path.exact_checks == 0


def test_a_column_out_of_budget_is_not_converged():
    matrices, rhs = _systems(1, condition=1e8)
    path = BatchedCG(_exact(matrices), rhs, 1e-12, 5)
    path.run()
    _, iterations, residual, converged, reason = path.outcome(0)
    assert (iterations, converged, reason) == (5, False, "budget") and residual > 1e-12
