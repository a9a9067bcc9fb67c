"""Multi-index Hermite targets: closed forms, Monte Carlo, Damian et al.'s Lemma 1, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.tasks import MULTI_INDEX_PRESETS, TASKS, MultiIndex
from tasks import (assert_mc_close, feature_samples, random_rotation, random_units,
                   tangent_samples)

M = 200_000   # Monte Carlo sample size; K = 5 (see tests/tasks/__init__.py)
DIM = 5

# r = 2, mixed and pure multi-indices, a constant, odd and even parts, degree 4
MIXED = {(0, 0): 0.2, (1, 0): 0.4, (1, 1): 0.5, (2, 1): -0.3, (0, 3): 0.25, (2, 2): 0.1}


def frame(rank, seed=0, dim=DIM):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, rank)))
    return torch.from_numpy(q.T.copy())


@pytest.fixture(scope="module")
def mixed():
    task = MultiIndex(directions=frame(2), coefficients=MIXED)
    return task, task.sample(M, rng=np.random.default_rng(51))


def test_moments_closed_form(mixed):
    task, _ = mixed
    assert task.target_mean() == pytest.approx(0.2)
    # Σ c_α² α!: 0.04 + 0.16 + 0.25 + 0.09·2 + 0.0625·6 + 0.01·4
    assert task.target_second_moment() == pytest.approx(0.04 + 0.16 + 0.25 + 0.18 + 0.375 + 0.04)
    assert torch.allclose(task.linear_moment(), 0.4 * task.directions[0], atol=1e-15)
    assert task.degree == 4 and task.rank == 2


def test_target_moments_monte_carlo(mixed):
    # 2 + d numbers, failure probability ≤ 7 × 5.7e-7.
    task, data = mixed
    assert_mc_close(task.target_mean(), data.y[:, None], label="E y")
    assert_mc_close(task.target_second_moment(), (data.y ** 2)[:, None], label="E y²")
    assert_mc_close(task.linear_moment(), data.y[:, None] * data.x, label="E y x")


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2", "monomial4"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_feature_moment_monte_carlo(mixed, activation, with_bias):
    # 4 numbers per case, failure probability ≤ 4 × 5.7e-7.
    task, data = mixed
    weights, biases = random_units(np.random.default_rng(3), 4, DIM, scale=1.2)
    biases = biases if with_bias else None
    assert_mc_close(task.feature_moment(activation, weights, biases),
                    feature_samples(data, activation, weights, biases), label=activation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2", "abs"])
def test_tangent_moment_monte_carlo(mixed, activation):
    # 3·d = 15 numbers per case, failure probability ≤ 15 × 5.7e-7.
    task, data = mixed
    weights, _ = random_units(np.random.default_rng(4), 3, DIM, scale=1.2)
    assert_mc_close(task.tangent_moment(activation, weights),
                    tangent_samples(data, activation, weights), label=activation)


def test_he2_closed_forms():
    """g = He₂(z)/√2 along u: with σ = hermite2, σ(sG) = s²He₂(G) + s² − 1, so
    E[y σ(w·x)] = √2 (u·w)²; E[y σ′(w·x) x] = E[y 2(w·x) x] = 2√2 (u·w) u."""
    task = TASKS["multi_index"](rng=np.random.default_rng(0), dim=DIM)
    u = task.directions[0]
    weights, _ = random_units(np.random.default_rng(5), 4, DIM, scale=1.3)
    overlap = weights @ u
    assert torch.allclose(task.feature_moment("hermite2", weights), math.sqrt(2) * overlap ** 2,
                          rtol=1e-12, atol=1e-15)
    assert torch.allclose(task.tangent_moment("hermite2", weights),
                          2 * math.sqrt(2) * overlap[:, None] * u, rtol=1e-12, atol=1e-15)


def test_relu_gradient_matches_damian_lemma_1():
    """For unit w and a degree-2 target with C₀ = C₁ = 0 (THEORY §4.5):
    E[f x 1{w·x ≥ 0}] = Hw/√(2π) + ½ c₄ w C₂(w, w), c₄ = λ₄(relu) = −1/√(2π), H = E∇²f."""
    task = TASKS["multi_index"](rng=np.random.default_rng(1), dim=DIM)
    weights, _ = random_units(np.random.default_rng(6), 4, DIM)
    weights = weights / weights.norm(dim=1, keepdim=True)
    hessian = task.expected_hessian()
    assert torch.allclose(hessian, math.sqrt(2) * torch.outer(task.directions[0],
                                                              task.directions[0]))
    curvature = ((weights @ hessian) * weights).sum(-1)
    expected = (weights @ hessian / math.sqrt(2 * math.pi)
                - 0.5 / math.sqrt(2 * math.pi) * curvature[:, None] * weights)
    assert torch.allclose(task.tangent_moment("relu", weights), expected, rtol=1e-12, atol=1e-15)


def test_expected_hessian_monte_carlo(mixed):
    """E∇²f = E[f (xxᵀ − I)] (Stein twice); d² = 25 numbers, failure probability ≤ 25 × 5.7e-7."""
    task, data = mixed
    x = data.x
    samples = data.y[:, None, None] * (x[:, :, None] * x[:, None, :] - torch.eye(DIM))
    assert_mc_close(task.expected_hessian(), samples, label="E∇²f")


@pytest.mark.parametrize("preset", sorted(MULTI_INDEX_PRESETS))
def test_presets(preset):
    task = TASKS["multi_index"](rng=np.random.default_rng(2), dim=30, preset=preset)
    assert task.target_second_moment() == pytest.approx(1.0, rel=1e-14)
    assert task.target_mean() == 0
    eye = torch.eye(task.rank, dtype=torch.float64)
    assert torch.allclose(task.directions @ task.directions.T, eye, atol=1e-12)
    assert int(torch.linalg.matrix_rank(task.expected_hessian())) == task.rank  # Assumption 2


def test_rotation_invariance(mixed):
    task, _ = mixed
    q = random_rotation(DIM, np.random.default_rng(7))
    rotated = MultiIndex(directions=task.directions @ q.T, coefficients=MIXED)
    weights, biases = random_units(np.random.default_rng(8), 4, DIM)
    for activation in ("relu", "tanh"):
        assert torch.allclose(rotated.feature_moment(activation, weights @ q.T, biases),
                              task.feature_moment(activation, weights, biases), atol=1e-12)
        assert torch.allclose(rotated.tangent_moment(activation, weights @ q.T),
                              task.tangent_moment(activation, weights) @ q.T, atol=1e-12)


def test_gradcheck_relu_with_biases(mixed):
    task, _ = mixed
    weights, biases = random_units(np.random.default_rng(9), 3, DIM)
    weights.requires_grad_(True)
    biases.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, b: task.feature_moment("relu", w, b),
                                    (weights, biases), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("kwargs, message", [
    ({"directions": torch.ones(2, DIM, dtype=torch.float64), "coefficients": {(1, 0): 1.0}},
     r"directions must have orthonormal rows; max \|UUᵀ − I\| = "),
    ({"directions": frame(2), "coefficients": {(1,): 1.0}},
     r"multi-index \(1,\) has length 1, but directions has r = 2 rows"),
    ({"directions": frame(2), "coefficients": {(1, -1): 1.0}},
     r"multi-index \(1, -1\) must hold non-negative integers"),
    ({"directions": frame(2), "coefficients": {(1, 0.5): 1.0}}, "non-negative integers"),
    ({"directions": frame(2), "coefficients": {}}, "at least one multi-index"),
    ({"directions": frame(2), "coefficients": {(1, 0): float("nan")}}, "is not finite"),
    ({"directions": torch.ones(DIM + 1, DIM, dtype=torch.float64), "coefficients": {(1,): 1.0}},
     r"directions must have 1 ≤ r ≤ d rows"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiIndex(**kwargs)


def test_builder_errors():
    with pytest.raises(ValueError, match="preset must be one of single-he2, two-index"):
        TASKS["multi_index"](rng=np.random.default_rng(0), dim=5, preset="three-index")
    with pytest.raises(ValueError, match="dim must be at least r = 2"):
        TASKS["multi_index"](rng=np.random.default_rng(0), dim=1, preset="two-index")
