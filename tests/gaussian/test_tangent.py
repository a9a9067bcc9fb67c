"""The NT operator E[σ′(w_i·z)σ′(w_j·z) z zᵀ] applied to directions, and the head cross moment."""

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.gaussian.tangent import cross_moment, tangent_operator


@pytest.fixture
def units():
    rng = np.random.default_rng(11)
    d = 6
    w = torch.as_tensor(rng.standard_normal((4, d)) / math.sqrt(d))
    w[3] = -2.0 * w[1]                       # a collinear pair (opposite direction)
    a = torch.as_tensor(rng.standard_normal((4, d)))
    return w, a


def test_quadratic_activation_equals_isserlis(units):
    # σ = u²: K_ij = E[4 u v z zᵀ] = 4(c_ij I + w_i w_jᵀ + w_j w_iᵀ)
    w, a = units
    blocks = torch.stack([torch.stack([4 * (w[i] @ w[j] * torch.eye(6, dtype=torch.float64)
                                            + torch.outer(w[i], w[j]) + torch.outer(w[j], w[i]))
                                       for j in range(4)]) for i in range(4)])
    expected = torch.einsum("ijde,je->id", blocks, a)
    assert torch.allclose(tangent_operator("quadratic", w).apply(a), expected, atol=1e-13)


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_operator_against_monte_carlo(units, name):
    w, a = units
    rng = np.random.default_rng(5)
    n = 1_000_000
    z = torch.as_tensor(rng.standard_normal((n, w.shape[1])))
    gates = get_activation(name).derivative()(z @ w.T)
    g = (gates * (z @ a.T)).sum(1)
    samples = gates[:, :, None] * z[:, None, :] * g[:, None, None]
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    # 5 standard errors per entry (two-sided failure probability ≈ 6e-7 each)
    assert torch.all((tangent_operator(name, w).apply(a) - mean).abs() < 5 * se)


@pytest.mark.parametrize("name", ["relu", "quadratic"])
def test_cross_moment_against_monte_carlo(units, name):
    w, _ = units
    rng = np.random.default_rng(6)
    n = 1_000_000
    z = torch.as_tensor(rng.standard_normal((n, w.shape[1])))
    sigma = get_activation(name)
    pre = z @ w.T
    samples = sigma(pre)[:, :, None, None] * sigma.derivative()(pre)[:, None, :, None] * z[:, None, None, :]
    alpha, beta = cross_moment(name, w)
    exact = alpha[..., None] * w[:, None, :] + beta[..., None] * w[None, :, :]
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    assert torch.all((exact - mean).abs() < 5 * se + 1e-12)


def test_operator_is_symmetric_positive(units):
    w, a = units
    rng = np.random.default_rng(2)
    other = torch.as_tensor(rng.standard_normal(a.shape))
    op = tangent_operator("relu", w)
    assert float(torch.sum(other * op.apply(a))) == pytest.approx(float(torch.sum(a * op.apply(other))),
                                                                 rel=1e-12)
    assert float(torch.sum(a * op.apply(a))) > 0


def test_zero_weight_is_rejected():
    with pytest.raises(ValueError, match="non-zero weight"):
        tangent_operator("relu", torch.zeros(2, 3, dtype=torch.float64))
