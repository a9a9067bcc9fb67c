"""Quadratic target: Isserlis closed forms, Monte Carlo, presets, invariances, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.tasks import QUADRATIC_MATRICES, TASKS, Quadratic
from tasks import (assert_mc_close, feature_samples, random_rotation, random_units,
                   tangent_samples)

M = 200_000   # Monte Carlo sample size; K = 5 (see tests/tasks/__init__.py)
DIM = 6


def indefinite_matrix(seed=0):
    g = torch.from_numpy(np.random.default_rng(seed).standard_normal((DIM, DIM)))
    return (g + g.T) / (2 * DIM)


@pytest.fixture(scope="module")
def offset_task():
    """Indefinite B and a non-centering offset (E y ≠ 0), to exercise the λ_0 term."""
    task = Quadratic(matrix=indefinite_matrix(), offset=0.3)
    return task, task.sample(M, rng=np.random.default_rng(31))


def test_moments_closed_form():
    b = indefinite_matrix()
    task = Quadratic(matrix=b, offset=0.3)
    trace = float(torch.trace(b))
    assert task.target_mean() == pytest.approx(trace + 0.3, rel=1e-14)
    assert task.target_second_moment() == pytest.approx(
        (trace + 0.3) ** 2 + 2 * float((b ** 2).sum()), rel=1e-14)
    centered = Quadratic(matrix=b)
    assert centered.offset == pytest.approx(-trace) and centered.target_mean() == pytest.approx(0)
    assert centered.null_risk == pytest.approx(2 * float((b ** 2).sum()), rel=1e-14)


def test_isserlis_closed_forms():
    """σ(u) = u²: E[(xᵀBx + b0)(w·x)²] = ‖w‖²(Tr B + b0) + 2wᵀBw and
    E[(xᵀBx + b0) 2(w·x) x] = 2(Tr B + b0)w + 4Bw; relu: wᵀBw/(√(2π)‖w‖) for centered targets
    (THEORY §5.3)."""
    b = indefinite_matrix(1)
    task = Quadratic(matrix=b, offset=0.3)
    weights, _ = random_units(np.random.default_rng(1), 4, DIM)
    mean = float(torch.trace(b)) + 0.3
    quad = ((weights @ b) * weights).sum(-1)
    norms2 = (weights ** 2).sum(-1)
    assert torch.allclose(task.feature_moment("quadratic", weights), norms2 * mean + 2 * quad,
                          rtol=1e-12, atol=1e-14)
    assert torch.allclose(task.tangent_moment("quadratic", weights),
                          2 * mean * weights + 4 * weights @ b, rtol=1e-12, atol=1e-14)
    centered = Quadratic(matrix=b)
    assert torch.allclose(centered.feature_moment("relu", weights),
                          quad / (math.sqrt(2 * math.pi) * norms2.sqrt()), rtol=1e-12, atol=1e-15)


def test_relu_tangent_matches_the_brief_form():
    """(β(κ₃ + 3κ₁) + (Tr B − β + b0)κ₁)ŵ + 2κ₁(Bŵ − βŵ), κ_k = λ_k(step; s, 0)."""
    b = indefinite_matrix(2)
    task = Quadratic(matrix=b, offset=-0.2)
    weights, _ = random_units(np.random.default_rng(2), 5, DIM)
    s = weights.norm(dim=1)
    unit = weights / s[:, None]
    beta = ((unit @ b) * unit).sum(-1)
    from lazylab.activations import get_activation
    kappa = get_activation("step").hermite_coefficients(3, s, torch.zeros_like(s))
    k1, k3 = kappa[:, 1], kappa[:, 3]
    trace = float(torch.trace(b))
    expected = ((beta * (k3 + 3 * k1) + (trace - beta - 0.2) * k1)[:, None] * unit
                + 2 * k1[:, None] * (unit @ b - beta[:, None] * unit))
    assert torch.allclose(task.tangent_moment("relu", weights), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_feature_moment_monte_carlo(offset_task, activation, with_bias):
    # 4 numbers per case, failure probability ≤ 4 × 5.7e-7.
    task, data = offset_task
    weights, biases = random_units(np.random.default_rng(3), 4, DIM)
    biases = biases if with_bias else None
    assert_mc_close(task.feature_moment(activation, weights, biases),
                    feature_samples(data, activation, weights, biases), label=activation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2", "abs"])
def test_tangent_moment_monte_carlo(offset_task, activation):
    # 3·d = 18 numbers per case, failure probability ≤ 18 × 5.7e-7.
    task, data = offset_task
    weights, _ = random_units(np.random.default_rng(4), 3, DIM)
    assert_mc_close(task.tangent_moment(activation, weights),
                    tangent_samples(data, activation, weights), label=activation)


def test_linear_moment_monte_carlo(offset_task):
    # d = 6 numbers, failure probability ≤ 6 × 5.7e-7.
    task, data = offset_task
    assert torch.equal(task.linear_moment(), torch.zeros(DIM, dtype=torch.float64))
    assert_mc_close(task.linear_moment(), data.y[:, None] * data.x, label="E y x")


@pytest.mark.parametrize("diagonal", [False, True])
def test_rotation_invariance(diagonal):
    """A diagonal B takes the O(Nd) path and its rotation the dense one: both must agree."""
    b = indefinite_matrix(3)
    b = torch.diag(torch.diagonal(b)) if diagonal else b
    task = Quadratic(matrix=b, offset=0.1)
    x = torch.from_numpy(np.random.default_rng(9).standard_normal((7, DIM)))
    assert torch.allclose(task.target(x), ((x @ b) * x).sum(-1) + 0.1, atol=1e-14)
    q = random_rotation(DIM, np.random.default_rng(5))
    rotated = Quadratic(matrix=q @ task.matrix @ q.T, offset=0.1)
    weights, biases = random_units(np.random.default_rng(6), 4, DIM)
    for activation in ("relu", "tanh"):
        assert torch.allclose(rotated.feature_moment(activation, weights @ q.T, biases),
                              task.feature_moment(activation, weights, biases), atol=1e-12)
        assert torch.allclose(rotated.tangent_moment(activation, weights @ q.T),
                              task.tangent_moment(activation, weights) @ q.T, atol=1e-12)


def test_gradcheck_relu_with_biases():
    task = Quadratic(matrix=indefinite_matrix(4), offset=0.2)
    weights, biases = random_units(np.random.default_rng(7), 3, DIM)
    weights.requires_grad_(True)
    biases.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, b: task.feature_moment("relu", w, b),
                                    (weights, biases), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("preset", sorted(QUADRATIC_MATRICES))
def test_presets(preset):
    dim = 40
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix=preset, rank=3)
    b = task.matrix
    assert torch.equal(b, b.T) and task.target_mean() == pytest.approx(0, abs=1e-12)
    frobenius = float((b ** 2).sum())
    eigenvalues = torch.linalg.eigvalsh(b)
    assert float(eigenvalues.min()) >= -1e-12                  # all presets are PSD
    if preset == "exp-diagonal":
        assert torch.count_nonzero(b - torch.diag(torch.diagonal(b))) == 0
        assert 0.5 < frobenius < 4            # Σγ²/d → E γ² = 2
    elif preset == "identity":
        assert torch.allclose(b, torch.eye(dim, dtype=b.dtype) / math.sqrt(dim))
    elif preset == "random-psd":
        assert 1 < frobenius < 3              # → 2 as d grows
    elif preset == "geometric":
        assert torch.equal(b, torch.diag(torch.tensor([1.0, 0.5, 0.25] + [0.0] * (dim - 3),
                                                      dtype=b.dtype)))
    else:
        assert int(torch.linalg.matrix_rank(b)) == 3 and frobenius == pytest.approx(1.0)
    assert task.null_risk == pytest.approx(2 * frobenius, rel=1e-12)


def test_not_centered_builder():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, matrix="identity",
                              centered=False)
    assert task.offset == 0 and task.target_mean() == pytest.approx(math.sqrt(5))


@pytest.mark.parametrize("matrix, message", [
    (torch.ones(2, 3, dtype=torch.float64), r"matrix must be square"),
    (torch.tensor([[1.0, 2.0], [0.5, 1.0]]), r"matrix must be symmetric; max \|B − Bᵀ\| = 1.5"),
    (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "matrix must be finite"),
    (torch.ones(3), r"matrix must have shape"),
])
def test_constructor_errors(matrix, message):
    with pytest.raises(ValueError, match=message):
        Quadratic(matrix=matrix)


@pytest.mark.parametrize("kwargs, message", [
    ({"matrix": "diagonal"}, "matrix must be one of exp-diagonal, identity, random-psd, low-rank"),
    ({"matrix": "low-rank", "rank": 0}, r"rank must be an integer in \[1, dim=5\]"),
    ({"matrix": "low-rank", "rank": 6}, r"rank must be an integer in \[1, dim=5\]"),
])
def test_builder_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, **kwargs)


def test_dimension_mismatch_names_weights():
    task = Quadratic(matrix=torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"weights must have shape \(N, 3\)"):
        task.tangent_moment("relu", torch.ones(2, 4))
