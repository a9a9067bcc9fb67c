"""Activations: known coefficient values, Parseval, Stein's identity, lookup errors."""

import math

import pytest
import torch

from lazylab.quadrature import gaussian_nodes
from lazylab.activations import ACTIVATIONS, get_activation, monomial, polynomial

# Hermite coefficients of every registered activation against quadrature, pair expectations and
# derivatives: tests/contracts/test_activation_contract.py (parametrized over ACTIVATIONS).


def test_relu_coefficients_have_the_known_values():
    lam = get_activation("relu").hermite_coefficients(8) * math.sqrt(2 * math.pi)
    expected = [1, math.sqrt(math.pi / 2), 1, 0, -1, 0, 3, 0, -15]
    assert torch.allclose(lam, torch.tensor(expected, dtype=torch.float64), atol=1e-13)


def second_moment(activation, scale, bias):
    z, w = gaussian_nodes(None)
    return float(torch.sum(w * activation.function(scale * z + bias) ** 2))


@pytest.mark.parametrize("name", ["quadratic", "hermite2", "cubic", "quartic"])
def test_parseval_is_exact_for_polynomials(name):
    activation = get_activation(name)
    mu = activation.hermite_coefficients(6, 1.3, 0.2, normalized=True)
    assert float((mu**2).sum()) == pytest.approx(second_moment(activation, 1.3, 0.2), rel=1e-13)


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid"])
def test_parseval_converges_geometrically_for_analytic_activations(name):
    # The Parseval gap E σ² − Σ_{k≤K} μ_k² is the Mehler-series tail that lazylab.gaussian bounds;
    # for these activations it shrinks by more than 10x from K = 40 to K = 80.
    activation = get_activation(name)
    total = second_moment(activation, 1.3, 0.2)
    gaps = [total - float((activation.hermite_coefficients(k, 1.3, 0.2, normalized=True) ** 2).sum())
            for k in (40, 80)]
    assert -1e-13 < gaps[1] < gaps[0] / 10
    assert gaps[1] < 1e-8


@pytest.mark.parametrize("name", ["relu", "quadratic", "tanh", "softplus", "abs"])
def test_derivative_coefficients_follow_steins_identity(name):
    # E[σ(sG+b) He_{k+1}(G)] = s E[σ′(sG+b) He_k(G)]  (Gaussian integration by parts)
    activation = get_activation(name)
    s, b = torch.tensor(1.7, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64)
    lam = activation.hermite_coefficients(12, s, b)
    lam_prime = activation.derivative().hermite_coefficients(11, s, b)
    assert torch.allclose(lam[1:], s * lam_prime, rtol=1e-10, atol=1e-12)


def test_registry_derivatives_and_powers():
    assert get_activation("relu").derivative() is ACTIVATIONS["step"]
    assert get_activation("step").times_power(1) is ACTIVATIONS["relu"]
    u = torch.linspace(-2, 2, 9, dtype=torch.float64)
    assert torch.allclose(get_activation("quadratic").derivative()(u), 2 * u)
    assert torch.allclose(get_activation("tanh").times_power(2)(u), u**2 * torch.tanh(u))
    custom = get_activation(lambda v: torch.sin(v))
    assert torch.allclose(custom.derivative()(u), torch.cos(u))
    assert get_activation("monomial5").degree == 5
    assert torch.allclose(polynomial([1, 0, 3])(u), 1 + 3 * u**2)


def test_bad_inputs_name_what_is_allowed():
    with pytest.raises(ValueError, match="unknown activation 'rleu'.*relu"):
        get_activation("rleu")
    with pytest.raises(TypeError, match="activation must be"):
        get_activation(3)
    with pytest.raises(ValueError, match="power must be"):
        monomial(-1)
    with pytest.raises(ValueError, match="scale must be >= 0"):
        get_activation("relu").hermite_coefficients(3, -1.0)
    for jumping in ("step", "sign"):
        with pytest.raises(ValueError, match="Dirac"):
            get_activation(jumping).derivative()
