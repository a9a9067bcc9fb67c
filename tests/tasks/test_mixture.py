"""Gaussian mixture: moments by Monte Carlo, the Bayes MMSE (quadrature, Monte Carlo, large-d
limit), invariances, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.quadrature import gaussian_nodes
from lazylab.tasks import TASKS, GaussianMixture, mixture_mmse, mixture_mmse_limit
from tasks import (assert_mc_close, feature_samples, random_rotation, random_units,
                   tangent_samples)

M = 200_000   # Monte Carlo sample size; K = 5 (see tests/tasks/__init__.py)
DIM = 6


@pytest.fixture(scope="module")
def rotated():
    """The paper's Δ spectrum in a random basis, and a non-identity Σ."""
    rng = np.random.default_rng(3)
    base = TASKS["gaussian_mixture"](rng=rng, dim=DIM, delta="paper-rotated")
    a = torch.from_numpy(np.eye(DIM) + 0.2 * rng.standard_normal((DIM, DIM)))
    task = GaussianMixture(delta=a @ base.delta @ a.T, covariance=a @ a.T)
    return task, task.sample(M, rng=np.random.default_rng(41))


def test_components_and_constant_moments(rotated):
    task, _ = rotated
    (p1, plus), (p2, minus) = task.components
    assert p1 == p2 == 0.5
    assert torch.allclose(plus, task.covariance - task.delta)
    assert torch.allclose(minus, task.covariance + task.delta)
    assert task.target_mean() == 0 and task.target_second_moment() == 1 and task.null_risk == 1


def test_sample_class_covariances(rotated):
    # 2·d² = 72 numbers, failure probability ≤ 72 × 5.7e-7.
    task, data = rotated
    for label, (_, covariance) in zip((1.0, -1.0), task.components):
        x = data.x[data.y == label]
        outer = x[:, :, None] * x[:, None, :]
        assert_mc_close(covariance, outer, label=f"class {label}")
    assert abs(float((data.y > 0).double().mean()) - 0.5) < 5 * 0.5 / math.sqrt(M)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_feature_moment_monte_carlo(rotated, activation, with_bias):
    # 4 numbers per case, failure probability ≤ 4 × 5.7e-7.
    task, data = rotated
    weights, biases = random_units(np.random.default_rng(4), 4, DIM, scale=1.5)
    biases = biases if with_bias else None
    assert_mc_close(task.feature_moment(activation, weights, biases),
                    feature_samples(data, activation, weights, biases), label=activation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2"])
def test_tangent_moment_monte_carlo(rotated, activation):
    # 3·d = 18 numbers per case (+ d for E[y x]), failure probability ≤ 24 × 5.7e-7.
    task, data = rotated
    weights, _ = random_units(np.random.default_rng(5), 3, DIM, scale=1.5)
    assert_mc_close(task.tangent_moment(activation, weights),
                    tangent_samples(data, activation, weights), label=activation)
    assert_mc_close(task.linear_moment(), data.y[:, None] * data.x, label="E y x")


def test_quadratic_activation_closed_form():
    """σ(u) = u²: E[y (w·x)²] = ½(wᵀC₊w − wᵀC₋w) = −wᵀΔw, E[y 2(w·x)x] = −2Δw."""
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(0), dim=DIM)
    weights, _ = random_units(np.random.default_rng(6), 3, DIM)
    quad = ((weights @ task.delta) * weights).sum(-1)
    assert torch.allclose(task.feature_moment("quadratic", weights), -quad, rtol=1e-12, atol=0)
    assert torch.allclose(task.tangent_moment("quadratic", weights), -2 * weights @ task.delta,
                          rtol=1e-12, atol=1e-15)


def test_rotation_invariance():
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(1), dim=DIM)
    q = random_rotation(DIM, np.random.default_rng(2))
    rotated = GaussianMixture(delta=q @ task.delta @ q.T)
    weights, biases = random_units(np.random.default_rng(7), 4, DIM)
    for activation in ("relu", "tanh"):
        assert torch.allclose(rotated.feature_moment(activation, weights @ q.T, biases),
                              task.feature_moment(activation, weights, biases), atol=1e-12)
        assert torch.allclose(rotated.tangent_moment(activation, weights @ q.T),
                              task.tangent_moment(activation, weights) @ q.T, atol=1e-12)
    assert rotated.bayes_risk == pytest.approx(task.bayes_risk, abs=1e-12)


def test_gradcheck_relu_with_biases():
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(1), dim=DIM)
    weights, biases = random_units(np.random.default_rng(8), 3, DIM)
    weights.requires_grad_(True)
    biases.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, b: task.feature_moment("relu", w, b),
                                    (weights, biases), eps=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- Bayes risk

@pytest.mark.parametrize("delta", [0.05, 0.3, 0.7, 0.95, -0.5])
def test_mmse_one_dimension_against_quadrature(delta):
    """d = 1: E sech²(L(x)/2) under each class by 1-D Gauss–Legendre (64 nodes per piece)."""
    plus, minus = 1 - delta, 1 + delta
    z, w = gaussian_nodes(None, order=64)
    total = 0.0
    for variance in (plus, minus):
        x = math.sqrt(variance) * z
        llr = 0.5 * math.log(minus / plus) - 0.5 * x ** 2 * (1 / plus - 1 / minus)
        total += 0.5 * float((w / torch.cosh(llr / 2) ** 2).sum())
    assert mixture_mmse([delta]) == pytest.approx(total, abs=1e-13)
    assert GaussianMixture(delta=[[delta]]).bayes_risk == pytest.approx(total, abs=1e-13)


def test_mmse_monte_carlo_d20():
    # m = 5·10⁵ samples of (y − tanh(L/2))², K = 5: failure probability ≈ 5.7e-7.
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(2), dim=20)
    data = task.sample(500_000, rng=np.random.default_rng(42))
    (_, plus), (_, minus) = task.components
    precision_gap = torch.linalg.inv(plus) - torch.linalg.inv(minus)
    llr = (0.5 * (torch.logdet(minus) - torch.logdet(plus))
           - 0.5 * ((data.x @ precision_gap) * data.x).sum(-1))
    errors = (data.y - torch.tanh(llr / 2)) ** 2
    assert_mc_close(task.bayes_risk, errors[:, None], label="MMSE")


def test_mmse_whitening_invariance():
    """The MMSE depends on Σ^{-1/2}ΔΣ^{-1/2} only."""
    rng = np.random.default_rng(3)
    base = TASKS["gaussian_mixture"](rng=rng, dim=8)
    a = torch.from_numpy(np.eye(8) + 0.3 * rng.standard_normal((8, 8)))
    moved = GaussianMixture(delta=a @ base.delta @ a.T, covariance=a @ a.T)
    assert moved.bayes_risk == pytest.approx(base.bayes_risk, abs=1e-12)


def test_mmse_large_d_limit():
    """d = 450, paper preset: the asymptotic 1 − E tanh(s + √s Z) is within 5e-3 (it is a
    large-d limit; the observed gap is ~1e-3). Also the limit's own sanity: s → 0 gives 1."""
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(4), dim=450)
    exact, limit = task.bayes_risk, task.bayes_risk_limit()
    assert abs(exact - limit) < 5e-3
    assert 0.3 < exact < 0.5
    assert mixture_mmse_limit(1e-12) == pytest.approx(1.0, abs=1e-6)
    assert mixture_mmse([]) == pytest.approx(1.0, abs=1e-13)


def test_noise_is_added_to_bayes_risk():
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(5), dim=10, noise=0.3)
    clean = GaussianMixture(delta=task.delta)
    assert task.bayes_risk == pytest.approx(clean.bayes_risk + 0.09, abs=1e-14)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, message", [
    ({"delta": torch.diag(torch.tensor([1.2, 0.1], dtype=torch.float64))},
     r"covariance − delta \(the class y = \+1\) must be positive definite; its smallest "
     r"eigenvalue is -0.2"),
    ({"delta": torch.diag(torch.tensor([-1.5, 0.1], dtype=torch.float64))},
     r"covariance \+ delta \(the class y = −1\) must be positive definite; its smallest "
     r"eigenvalue is -0.5"),
    ({"delta": torch.tensor([[0.0, 1.5], [1.5, 0.0]], dtype=torch.float64)},
     r"covariance − delta .* smallest eigenvalue is -0.5"),
    ({"delta": torch.zeros(2, 3)}, r"delta must be square"),
    ({"delta": torch.zeros(2, 2), "covariance": torch.eye(3)},
     r"covariance must have shape \(2, 2\)"),
    ({"delta": torch.tensor([[0.0, 0.1], [0.2, 0.0]])}, r"delta must be symmetric"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs)


def test_builder_errors():
    with pytest.raises(ValueError, match="delta must be one of paper, paper-rotated"):
        TASKS["gaussian_mixture"](rng=np.random.default_rng(0), dim=10, delta="diagonal")
    with pytest.raises(ValueError, match="must be positive definite"):
        TASKS["gaussian_mixture"](rng=np.random.default_rng(0), dim=4)   # 2/√4 = 1
