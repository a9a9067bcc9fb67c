"""Hermite constants λ₀, λ₁, λ₂, λ̃ against an independent numpy Gauss–Hermite quadrature."""

import numpy as np
import pytest
import torch

from lazylab.activations import polynomial
from lazylab.theory.hermite import hermite_constants


def _numpy_constants(function, nodes=200):
    """λ_k and E σ² by Gauss–Hermite_e on a smooth σ (exact to ~1e-15 for polynomials/tanh)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    values = function(z)
    return values @ w, values * z @ w, values * (z**2 - 1) @ w, values**2 @ w


@pytest.mark.parametrize("name, function", [
    ("tanh", np.tanh),
    ("hermite2", lambda z: z**2 - 1),
    ("cubic", lambda z: z**3),
])
def test_constants_match_numpy_quadrature(name, function):
    lam0, lam1, lam2, second = _numpy_constants(function)
    consts = hermite_constants(name, offset=True)
    np.testing.assert_allclose([consts.lambda0, consts.lambda1, consts.lambda2],
                               [lam0, lam1, lam2], atol=1e-12)
    np.testing.assert_allclose(consts.lambda_tilde, second - lam0**2 - lam1**2, rtol=1e-10)


def test_relu_constants_match_a_fine_trapezoid_rule():
    """ReLU has a kink: check against a 2·10⁶-point trapezoid rule on [0, 12] (error ~1e-12)."""
    u = np.linspace(0.0, 12.0, 2_000_001)
    phi = np.exp(-u**2 / 2) / np.sqrt(2 * np.pi)
    integral = lambda f: np.trapezoid(f * phi, u)  # noqa: E731
    consts = hermite_constants("relu", offset=True)
    np.testing.assert_allclose(consts.lambda0, integral(u), atol=1e-10)
    np.testing.assert_allclose(consts.lambda1, integral(u * u), atol=1e-10)
    np.testing.assert_allclose(consts.lambda2, integral(u * (u**2 - 1)), atol=1e-10)
    np.testing.assert_allclose(consts.lambda_tilde,
                               integral(u**2) - integral(u)**2 - integral(u * u)**2, atol=1e-10)


def test_uncentered_activation_without_offset_raises():
    with pytest.raises(ValueError, match="lambda0 = E\\[sigma\\(G\\)\\] = 0.398942"):
        hermite_constants("relu", offset=False)
    with pytest.raises(ValueError, match="offset=True"):
        hermite_constants("quadratic", offset=False)
    assert hermite_constants("hermite2", offset=False).lambda0 == 0.0


def test_affine_activation_raises():
    with pytest.raises(ValueError, match="nonlinear"):
        hermite_constants(polynomial([0.3, 2.0]), offset=True)


def test_callable_activation_is_accepted():
    consts = hermite_constants(lambda u: torch.tanh(u) + u**2 - 1, offset=False)
    lam0, lam1, lam2, second = _numpy_constants(lambda z: np.tanh(z) + z**2 - 1)
    np.testing.assert_allclose([consts.lambda1, consts.lambda2], [lam1, lam2], atol=1e-10)
