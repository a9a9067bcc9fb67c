"""Kernel ridge in the polynomial regime: spectrum identities, the staircase limit, and exact
kernel ridge on samples at d = 20 with n = d and n = d²."""

import math

import numpy as np
import pytest

from lazylab.theory.staircase import (harmonic_dimension, kernel_degree_eigenvalues,
                                      kernel_ridge_risk, staircase_degree, staircase_risk)


def test_harmonic_dimensions():
    assert [harmonic_dimension(3, k) for k in range(5)] == [1, 3, 5, 7, 9]      # 2k + 1
    d, top = 20, 4                       # harmonics of degree ≤ K = polynomials of degree ≤ K
    total = sum(harmonic_dimension(d, k) for k in range(top + 1))               # on the sphere
    assert total == math.comb(d + top - 1, top) + math.comb(d + top - 2, top - 1)


def test_kernel_eigenvalues_of_polynomial_kernels_and_the_trace_identity():
    d = 20
    mu = kernel_degree_eigenvalues(lambda t: t, d, 3)
    np.testing.assert_allclose(mu, [0, 1 / d, 0, 0], atol=1e-14)
    mu = kernel_degree_eigenvalues(lambda t: t**2, d, 3)     # t² = 1/d + (1 − 1/d) Q₂(t)
    np.testing.assert_allclose(mu * [harmonic_dimension(d, k) for k in range(4)],
                               [1 / d, 0, 1 - 1 / d, 0], atol=1e-14)
    mu = kernel_degree_eigenvalues(np.exp, d, 12)
    mult = np.array([harmonic_dimension(d, k) for k in range(13)])
    np.testing.assert_allclose(mult @ mu, np.e, rtol=1e-10)  # Σ N_k μ_k = h(1)


def test_refined_prediction_tends_to_the_staircase():
    """At n = d^{1.5} the degree-2 part is learned in proportion ≈ n/N₂ ≈ 2/√d, so the gap to
    ‖P_{>1} f*‖² is ≤ 2 e₂/√d (observed 0.47–0.6/√d for d = 50…1000)."""
    energies = [0.0, 1.0, 1.0]
    for d in (50, 200, 1000):
        n = int(d**1.5)
        refined = kernel_ridge_risk(n, d, np.exp, energies, ridge=0.0, noise_variance=0.1)
        assert staircase_degree(n, d) == 1
        assert abs(refined - staircase_risk(n, d, energies)) < 2.0 / math.sqrt(d)


def _sphere(rng, m, d):
    z = rng.standard_normal((m, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(d)


@pytest.mark.parametrize("n_train, repeats", [(20, 100), (400, 10)])
def test_refined_prediction_matches_exact_kernel_ridge_on_samples(n_train, repeats):
    """d = 20, K(x,y) = exp(⟨x,y⟩/d), f*(x) = x₁ + √((d+2)/d)·x₁x₂ (e₁ = e₂ = 1), σ² = 0.1.

    Exact kernel ridge (Cholesky solve) on ``repeats`` training sets; test error on 4000 fresh
    points each. Tolerance: 4.5 standard errors of the mean over repeats, plus 0.5/√d relative
    for the finite-d error of the deterministic equivalent (non-Gaussian harmonics, O(d^{-1/2});
    observed 0.8% at n = d and 3.8% at n = d²). The crude staircase (1.0 and 0.0) is far off at
    this d: at n = d and n = d² the top degree is only partly learned.
    """
    rng = np.random.default_rng(20 + n_train)
    d, ridge, noise = 20, 1e-3, 0.1

    def target(x):
        return x[:, 0] + np.sqrt((d + 2) / d) * x[:, 0] * x[:, 1]

    errors = []
    for _ in range(repeats):
        x = _sphere(rng, n_train, d)
        y = target(x) + math.sqrt(noise) * rng.standard_normal(n_train)
        alpha = np.linalg.solve(np.exp(x @ x.T / d) + n_train * ridge * np.eye(n_train), y)
        x_test = _sphere(rng, 4000, d)
        errors.append(np.mean((np.exp(x_test @ x.T / d) @ alpha - target(x_test)) ** 2))
    errors = np.array(errors)
    predicted = kernel_ridge_risk(n_train, d, np.exp, [0.0, 1.0, 1.0], ridge=ridge,
                                  noise_variance=noise)
    tolerance = 4.5 * errors.std() / math.sqrt(repeats) + 0.5 / math.sqrt(d) * predicted
    assert abs(errors.mean() - predicted) < tolerance
    assert abs(errors.mean() - staircase_risk(n_train, d, [0.0, 1.0, 1.0])) > tolerance


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="n_train"):
        kernel_ridge_risk(0, 20, np.exp, [1.0], ridge=0.1)
    with pytest.raises(ValueError, match="ridge"):
        kernel_ridge_risk(10, 20, np.exp, [1.0], ridge=-1.0)
    with pytest.raises(ValueError, match="dim"):
        harmonic_dimension(2, 1)
    with pytest.raises(ValueError, match="target_energies"):
        staircase_risk(10, 20, [-1.0])
    with pytest.raises(ValueError, match="positive definite"):
        kernel_ridge_risk(10, 20, lambda t: -t, [0.0, 1.0], ridge=0.1)
