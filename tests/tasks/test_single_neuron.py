"""SingleNeuron: closed forms, Monte Carlo, invariances, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.gaussian.stein import derivative_parts, dirac_pair
from lazylab.gaussian import pair_expectation
from lazylab.tasks import TASKS, SingleNeuron
from tasks import (assert_mc_close, feature_samples, random_rotation, random_units,
                   tangent_samples)

M = 200_000   # Monte Carlo sample size; K = 5 (see tests/tasks/__init__.py)


def make(bias=0.0, activation="relu", dim=6):
    return TASKS["single_neuron"](rng=np.random.default_rng(5), dim=dim, weight_norm=1.3,
                                  bias=bias, activation=activation)


@pytest.fixture(scope="module")
def biased():
    task = make(bias=0.4)
    return task, task.sample(M, rng=np.random.default_rng(21))


def test_builder_draws_weights_on_the_sphere():
    task = make()
    assert float(task.weights.norm()) == pytest.approx(1.3, rel=1e-14)
    other = TASKS["single_neuron"](rng=np.random.default_rng(6), dim=6, weight_norm=1.3)
    assert not torch.allclose(task.weights, other.weights)


def test_relu_closed_forms():
    """Unbiased relu target: E y = s/√(2π), E y² = s²/2, E[y x] = w*/2, and the arc-cosine
    kernel E[relu(w*·x) relu(w·x)] = s s_w (sin θ + (π − θ) cos θ)/(2π) (THEORY §5.1)."""
    task = make()
    s = 1.3
    assert task.target_mean() == pytest.approx(s / math.sqrt(2 * math.pi), rel=1e-13)
    assert task.target_second_moment() == pytest.approx(s * s / 2, rel=1e-12)
    assert torch.allclose(task.linear_moment(), task.weights / 2, rtol=1e-13, atol=0)
    weights, _ = random_units(np.random.default_rng(1), 4, 6)
    norms = weights.norm(dim=1)
    cos = (weights @ task.weights) / (norms * s)
    theta = torch.acos(cos)
    expected = s * norms * (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi)
    assert torch.allclose(task.feature_moment("relu", weights), expected, rtol=1e-12, atol=0)


def test_relu_tangent_closed_form():
    """relu/relu, no biases: E[relu(u) 1{v>0}] = s*(1 + ρ)/(2√(2π))·… gives
    E[τ′σ′] = (π − θ)/(2π) and E[τ δ(v)] = s*·sinθ/(2π s_w), so
    E[y σ′(w·x) x] = w*(π − θ)/(2π) + w s* sin θ/(2π ‖w‖)."""
    task = make()
    weights, _ = random_units(np.random.default_rng(2), 4, 6)
    norms = weights.norm(dim=1)
    cos = (weights @ task.weights) / (norms * 1.3)
    theta = torch.acos(cos)
    expected = (((math.pi - theta) / (2 * math.pi))[:, None] * task.weights
                + (1.3 * torch.sin(theta) / (2 * math.pi * norms))[:, None] * weights)
    assert torch.allclose(task.tangent_moment("relu", weights), expected, rtol=1e-12, atol=1e-15)


def test_target_moments_monte_carlo(biased):
    # 1 + 1 + d = 8 numbers, failure probability ≤ 8 × 5.7e-7.
    task, data = biased
    assert_mc_close(task.target_mean(), data.y[:, None], label="E y")
    assert_mc_close(task.target_second_moment(), (data.y ** 2)[:, None], label="E y²")
    assert_mc_close(task.linear_moment(), data.y[:, None] * data.x, label="E y x")


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2", "abs"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_feature_moment_monte_carlo(biased, activation, with_bias):
    # 4 numbers per case, failure probability ≤ 4 × 5.7e-7.
    task, data = biased
    weights, biases = random_units(np.random.default_rng(3), 4, task.dim)
    biases = biases if with_bias else None
    assert_mc_close(task.feature_moment(activation, weights, biases),
                    feature_samples(data, activation, weights, biases), label=activation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2", "abs", "softplus"])
def test_tangent_moment_monte_carlo(biased, activation):
    # 3·d = 18 numbers per case, failure probability ≤ 18 × 5.7e-7.
    task, data = biased
    weights, _ = random_units(np.random.default_rng(4), 3, task.dim)
    assert_mc_close(task.tangent_moment(activation, weights),
                    tangent_samples(data, activation, weights), label=activation)


@pytest.mark.parametrize("target", ["step", "tanh", "hermite2"])
def test_other_targets_monte_carlo(target):
    """A step target has τ′ = δ (Dirac by conditioning); tanh and hermite2 are smooth."""
    # 3 + 3·d numbers per case, failure probability ≤ 21 × 5.7e-7.
    task = make(bias=-0.3, activation=target)
    data = task.sample(M, rng=np.random.default_rng(22))
    weights, biases = random_units(np.random.default_rng(5), 3, task.dim)
    assert_mc_close(task.feature_moment("relu", weights, biases),
                    feature_samples(data, "relu", weights, biases), label=target)
    assert_mc_close(task.tangent_moment("relu", weights), tangent_samples(data, "relu", weights),
                    label=target)


def test_rotation_invariance():
    task = make(bias=0.2)
    rotation = random_rotation(task.dim, np.random.default_rng(8))
    rotated = SingleNeuron(weights=rotation @ task.weights, bias=0.2)
    weights, biases = random_units(np.random.default_rng(9), 4, task.dim)
    for activation in ("relu", "tanh"):
        assert torch.allclose(rotated.feature_moment(activation, weights @ rotation.T, biases),
                              task.feature_moment(activation, weights, biases), atol=1e-12)
        assert torch.allclose(rotated.tangent_moment(activation, weights @ rotation.T),
                              task.tangent_moment(activation, weights) @ rotation.T, atol=1e-12)
    assert torch.allclose(rotated.linear_moment(), rotation @ task.linear_moment(), atol=1e-14)


def test_gradcheck_relu_with_biases():
    task = make(bias=0.3, dim=4)
    weights, biases = random_units(np.random.default_rng(10), 3, 4)
    weights.requires_grad_(True)
    biases.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, b: task.feature_moment("relu", w, b),
                                    (weights, biases), eps=1e-6, atol=1e-7)


def test_dirac_pair_is_the_derivative_of_a_step_pair():
    """E[δ(u + b₁) τ(v + b₂)] = ∂/∂b₁ E[1{u + b₁ > 0} τ(v + b₂)] (central differences on the
    engine's biased step/relu closed form)."""
    var1, var2, cov, b1, b2 = torch.tensor([[0.7, 1.5], [1.2, 0.4], [0.5, -0.6], [0.3, -0.2],
                                            [-0.1, 0.4]], dtype=torch.float64)
    h = 1e-5
    for tau in ("relu", "step"):
        numeric = (pair_expectation("step", tau, var1, var2, cov, b1 + h, b2)
                   - pair_expectation("step", tau, var1, var2, cov, b1 - h, b2)) / (2 * h)
        exact = dirac_pair(tau, var1, var2, cov, b1, b2)
        assert torch.allclose(exact, numeric, rtol=1e-7, atol=1e-9)


def test_derivative_parts():
    relu = derivative_parts("relu")
    assert relu.function.name == "step" and relu.diracs == ()
    assert derivative_parts(relu.function).diracs == ((1.0, 0.0),)
    assert derivative_parts("sign").diracs == ((2.0, 0.0),)          # abs″ = sign′ = 2δ
    assert derivative_parts("abs").function.name == "sign"
    smooth = derivative_parts("tanh").function
    u = torch.linspace(-2, 2, 5, dtype=torch.float64)
    assert torch.allclose(smooth(u), 1 - torch.tanh(u) ** 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": torch.zeros(3)}, "weights must be finite and nonzero"),
    ({"weights": torch.ones(2, 3)}, r"weights must be a nonempty vector"),
    ({"weights": torch.ones(3), "bias": float("nan")}, "bias must be finite"),
    ({"weights": torch.ones(3), "activation": "nope"}, "activation: unknown activation"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SingleNeuron(**kwargs)


def test_builder_errors():
    with pytest.raises(ValueError, match="weight_norm must be a positive"):
        TASKS["single_neuron"](rng=np.random.default_rng(0), weight_norm=0.0)


def test_unit_of_zero_norm_is_a_constant_feature():
    task = make(bias=0.1)
    value = task.feature_moment("relu", torch.zeros(1, task.dim), torch.tensor([0.5]))
    assert float(value) == pytest.approx(0.5 * task.target_mean(), rel=1e-12)
    assert get_activation("relu").name == "relu"


def test_collinear_units_tangent():
    """w = 2w*: E[relu(u) 1{u > 0} x] = E[u⁺ x] = w*/2; w = −w*: the supports are disjoint, 0.
    (The Dirac term is E[relu(u) δ(v)] = relu(0)·density = 0 on the collinear line; its
    conditional variance s*² − c²/s² cancels to round-off, whose square root leaves ~1e-9.)"""
    task = make()
    weights = torch.stack([2 * task.weights, -task.weights])
    tangent = task.tangent_moment("relu", weights)
    assert torch.allclose(tangent[0], task.weights / 2, atol=1e-12)
    assert torch.allclose(tangent[1], torch.zeros_like(task.weights), atol=1e-7)


def test_composite_without_registered_derivative():
    """Leaky relu as relu(u) − 0.1·relu(−u): σ′ = step(u) + 0.1·step(−u) is assembled from the
    components and σ″ = 0.9δ; the tangent moment matches Monte Carlo (3·d = 18 numbers,
    failure probability ≤ 18 × 5.7e-7)."""
    from lazylab.activations import Activation, Component
    leaky = Activation("leaky", lambda u: torch.relu(u) - 0.1 * torch.relu(-u), kinks=(0.0,),
                       components=(Component(1.0, "relu"), Component(-0.1, "relu", flip=True)))
    first = derivative_parts(leaky)
    u = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(first.function(u), torch.tensor([0.1, 1.0], dtype=torch.float64))
    assert derivative_parts(first.function).diracs == ((0.9, 0.0),)
    task = make(bias=0.2)
    data = task.sample(M, rng=np.random.default_rng(23))
    weights, _ = random_units(np.random.default_rng(11), 3, task.dim)
    assert_mc_close(task.tangent_moment(leaky, weights), tangent_samples(data, leaky, weights),
                    label="leaky")
