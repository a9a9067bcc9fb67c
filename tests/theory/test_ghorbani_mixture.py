"""Ghorbani et al. mixture formulas: limits, the eq. (15)/(17) discrepancy, Theorems 5/6 against the
unifying 2/(2 + ‖Π_S Δ‖²) derivation (computed here directly), and the Bayes MMSE by Monte Carlo.
"""

import numpy as np
import pytest

from lazylab.theory.ghorbani_mixture import (
    bayes_risk_mixture, network_risk_mixture, neural_tangent_risk_mixture,
    neural_tangent_risk_mixture_for_weights, random_features_risk_mixture,
    random_features_risk_mixture_limit)

RHOS = np.array([0.1, 0.5, 1.0, 2.0, 5.0])


def _paper_delta(d, rng):
    """Fig. 2: Δ diagonal, entries uniform on {2, 1.5, 1}/√d."""
    return np.diag(rng.choice([2.0, 1.5, 1.0], size=d)) / np.sqrt(d)


def _symmetric_delta(d, rng, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a + a.T) / (2 * d)


def test_equation15_tends_to_equation16():
    rng = np.random.default_rng(0)
    delta = _paper_delta(60, rng)
    sigma = np.diag(rng.uniform(0.5, 1.5, size=60))
    gamma = np.eye(60) / np.trace(sigma)
    for activation in ("hermite2", "relu"):
        far = random_features_risk_mixture(1e10, delta, input_covariance=sigma,
                                           activation=activation, weight_covariance=gamma)
        limit = random_features_risk_mixture_limit(delta, input_covariance=sigma,
                                                   weight_covariance=gamma)
        np.testing.assert_allclose(far, limit, atol=1e-7)
        curve = random_features_risk_mixture(RHOS, delta, activation=activation,
                                             input_covariance=sigma, weight_covariance=gamma)
        assert np.all(np.diff(curve) < 0) and np.all(curve > limit)


def test_equation15_specialization_and_printed_equation17_discrepancy():
    """Σ = I, Γ = I/d, σ = u² − 1: (15) gives [1 + ρ/(1+ρ)·Tr(Δ)²/(2d)]⁻¹ (THEORY §1.6).

    The printed RF line of (17) has ρ/(1+2ρ); for the Fig. 2 Δ the two differ by more than
    0.05 at ρ = 1 (engine agreement of (15) is in test_engine_agreement.py).
    """
    rng = np.random.default_rng(1)
    d = 300
    delta = _paper_delta(d, rng)
    c = np.trace(delta) ** 2 / (2 * d)
    from_15 = random_features_risk_mixture(RHOS, delta)
    np.testing.assert_allclose(from_15, 1 / (1 + RHOS / (1 + RHOS) * c), rtol=1e-13)
    printed_17 = 1 / (1 + RHOS / (1 + 2 * RHOS) * c)
    assert np.all(printed_17 > from_15)
    assert printed_17[RHOS == 1.0][0] - from_15[RHOS == 1.0][0] > 0.05


def _projection_onto_tangent_space(delta, weights):
    """Π_S Δ for S = span{w_i aᵀ + a w_iᵀ}, by least squares over the spanning set (no P⊥)."""
    d = delta.shape[0]
    spanning = []
    for w in weights:
        for j in range(d):
            e = np.zeros(d)
            e[j] = 1.0
            spanning.append((np.outer(w, e) + np.outer(e, w)).ravel())
    basis = np.array(spanning).T
    coef, *_ = np.linalg.lstsq(basis, delta.ravel(), rcond=None)
    return (basis @ coef).reshape(d, d)


def test_theorem5_equals_the_unifying_projection_formula():
    rng = np.random.default_rng(2)
    d = 12
    delta = _symmetric_delta(d, rng, scale=1.5)
    for width in (1, 4, 11):
        w = rng.standard_normal((width, d))
        projected = _projection_onto_tangent_space(delta, w)
        unifying = 2 / (2 + np.sum(projected**2))
        np.testing.assert_allclose(neural_tangent_risk_mixture_for_weights(w, delta), unifying,
                                   rtol=1e-10)


def test_theorem5_general_covariance_is_the_whitened_problem():
    """With Σ ≠ I, Theorem 5 equals the Σ = I formula applied to Δ̃ and weights Σ^{1/2}w."""
    rng = np.random.default_rng(3)
    d = 10
    a = rng.standard_normal((d, d))
    sigma = a @ a.T / d + np.eye(d)
    delta = _symmetric_delta(d, rng)
    eig, vec = np.linalg.eigh(sigma)
    root, root_inv = (vec * np.sqrt(eig)) @ vec.T, (vec / np.sqrt(eig)) @ vec.T
    w = rng.standard_normal((4, d))
    projected = _projection_onto_tangent_space(root_inv @ delta @ root_inv, w @ root)
    np.testing.assert_allclose(
        neural_tangent_risk_mixture_for_weights(w, delta, input_covariance=sigma),
        2 / (2 + np.sum(projected**2)), rtol=1e-10)


def test_theorem5_isotropic_average_matches_given_weights_at_large_dimension():
    """κ(ρ,Δ)‖Δ‖² is the large-d value of ‖Δ‖² − ‖P⊥ΔP⊥‖², which concentrates: the gap for one
    draw of W at d = 200 is O(1/d) (observed 3e-4 at d = 300); tolerance 2/d."""
    rng = np.random.default_rng(4)
    d = 200
    delta = _paper_delta(d, rng)
    for rho in (0.3, 0.7, 1.5):
        w = rng.standard_normal((int(rho * d), d)) / np.sqrt(d)
        assert abs(neural_tangent_risk_mixture_for_weights(w, delta)
                   - neural_tangent_risk_mixture(rho, delta)) < 2.0 / d


def test_theorem6_equals_rank_n_truncation_of_the_unifying_formula():
    rng = np.random.default_rng(5)
    d = 20
    delta = _symmetric_delta(d, rng, scale=2.0)
    u, s, vt = np.linalg.svd(delta)
    for n in (1, 5, 20):
        truncated = (u[:, :n] * s[:n]) @ vt[:n]
        np.testing.assert_allclose(network_risk_mixture(n / d, delta),
                                   2 / (2 + np.sum(truncated**2)), rtol=1e-12)
    assert network_risk_mixture(2.0, delta) == pytest.approx(1 / (1 + np.sum(delta**2) / 2))


def test_bayes_mmse_matches_monte_carlo_of_the_exact_posterior_mean():
    """MMSE = 1 − E[y tanh(LLR(x)/2)] with the exact finite-d LLR, 10⁵ samples at d = 200.

    Tolerance 4 standard errors (false-failure probability 6e-5) plus 1/d for the finite-d
    non-Gaussianity of the LLR (observed bias ≈ 4e-3 at d = 100, 1e-3 at d = 300).
    """
    rng = np.random.default_rng(6)
    d, m = 200, 100_000
    delta = _paper_delta(d, rng)
    x = np.diag(delta)
    y = rng.choice([-1.0, 1.0], size=m)
    z = rng.standard_normal((m, d)) * np.sqrt(1 - y[:, None] * x[None, :])
    llr = 0.5 * np.sum(np.log((1 + x) / (1 - x))) - 0.5 * (z**2) @ (1 / (1 - x) - 1 / (1 + x))
    values = y * np.tanh(llr / 2)
    error = 4 * values.std() / np.sqrt(m) + 1.0 / d
    assert abs((1 - values.mean()) - bayes_risk_mixture(delta)) < error
    assert bayes_risk_mixture(delta) < network_risk_mixture(2.0, delta)   # Bayes not achieved


def test_bad_inputs_raise():
    delta = np.eye(4) * 0.1
    with pytest.raises(ValueError, match="width_ratio"):
        random_features_risk_mixture(0.0, delta)
    with pytest.raises(ValueError, match="width_ratio"):
        network_risk_mixture(-1.0, delta)
    with pytest.raises(ValueError, match="lambda0"):
        random_features_risk_mixture(1.0, delta, activation="relu", offset=False)
    with pytest.raises(ValueError, match="class \\+1"):
        random_features_risk_mixture(1.0, np.eye(4) * 2.0)
    with pytest.raises(ValueError, match="B2"):
        random_features_risk_mixture(1.0, delta, weight_covariance=np.eye(4))
