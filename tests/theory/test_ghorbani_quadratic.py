"""Ghorbani et al. quadratic-target formulas: internal limits and exact finite-d identities.

Agreement with the exact population engine (optimal_head, optimal_tangent) is in
test_engine_agreement.py.
"""

import numpy as np
import pytest

from lazylab.theory.ghorbani_quadratic import (
    equation13_risks, figure1_large_dim_risks, network_risk, neural_tangent_expected_risk,
    neural_tangent_risk, neural_tangent_risk_for_weights, random_features_risk,
    random_features_risk_limit, random_features_risk_quadratic_activation, trace_alignment)

RHOS = np.array([0.1, 0.5, 1.0, 2.0, 5.0])


def _exp_diagonal(d, rng):
    return np.diag(rng.exponential(size=d)) / np.sqrt(d)


def _random_symmetric(d, rng):
    a = rng.standard_normal((d, d))
    return (a + a.T) / 2 + 0.3 * np.eye(d)


@pytest.mark.parametrize("gamma", ["isotropic", "optimal", "random"])
def test_corollary1_is_theorem1_with_quadratic_activation(gamma):
    rng = np.random.default_rng(0)
    b = _exp_diagonal(50, rng)
    if gamma == "random":
        g = rng.standard_normal((50, 50))
        gamma = g @ g.T
        gamma /= np.trace(gamma)
    np.testing.assert_allclose(
        random_features_risk(RHOS, b, activation="hermite2", weight_covariance=gamma,
                             offset=False),
        random_features_risk_quadratic_activation(RHOS, b, weight_covariance=gamma), rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "hermite2", "tanh"])
def test_theorem1_tends_to_equation_11_as_rho_grows(activation):
    rng = np.random.default_rng(1)
    b = _random_symmetric(30, rng)
    for gamma in ("isotropic", np.diag(rng.uniform(size=30))):
        if not isinstance(gamma, str):
            gamma = gamma / np.trace(gamma)
        limit = random_features_risk_limit(b, weight_covariance=gamma)
        far = random_features_risk(1e10, b, activation=activation, weight_covariance=gamma)
        if activation == "tanh":          # λ₂(tanh) = 0: RF learns nothing quadratic
            np.testing.assert_allclose(far, 1.0, atol=1e-12)
        else:
            np.testing.assert_allclose(far, limit, atol=1e-7)
        curve = random_features_risk(RHOS, b, activation=activation, weight_covariance=gamma)
        assert np.all(np.diff(curve) <= 1e-15)      # more features never hurt
        assert np.all(curve >= limit - 1e-12)


def test_corollary1_specializations():
    """THEORY §1.3 [D]: Γ = I/d gives 1 − ρT/(1+ρ); Γ* = B/Tr B gives T/(T+ρ)."""
    b = _exp_diagonal(80, np.random.default_rng(2))
    t = np.trace(b) ** 2 / (80 * np.sum(b * b))
    np.testing.assert_allclose(random_features_risk_quadratic_activation(RHOS, b),
                               1 - RHOS * t / (1 + RHOS), rtol=1e-13)
    np.testing.assert_allclose(
        random_features_risk_quadratic_activation(RHOS, b, weight_covariance="optimal"),
        t / (t + RHOS), rtol=1e-13)
    np.testing.assert_allclose(trace_alignment(b), t, rtol=1e-14)


def test_weingarten_expectation_matches_monte_carlo_over_weights():
    """E_W ‖P⊥BP⊥‖²/‖B‖² against 20 000 Gaussian W (P⊥ built here with numpy QR).

    Tolerance 4.5 standard errors: a false failure has probability < 1e-5 per width.
    """
    rng = np.random.default_rng(11)
    d, draws = 10, 20_000
    b = _random_symmetric(d, rng)
    for width in (1, 4, 7, 9):
        w = rng.standard_normal((draws, d, width))
        q, _ = np.linalg.qr(w)
        p_perp = np.eye(d) - q @ np.swapaxes(q, 1, 2)
        values = np.sum((p_perp @ b @ p_perp) ** 2, axis=(1, 2)) / np.sum(b * b)
        exact = neural_tangent_expected_risk(width, b)
        assert abs(values.mean() - exact) < 4.5 * values.std() / np.sqrt(draws)
    np.testing.assert_allclose(neural_tangent_expected_risk([0, d, 2 * d], b), [1, 0, 0],
                               atol=1e-15)


def test_weingarten_tends_to_theorem2():
    """Finite-d expectation → (1−ρ)₊² + ρ(1−ρ)₊T with an O(1/d) gap (largest term 2β/d·…)."""
    rng = np.random.default_rng(4)
    d = 2000
    b = _exp_diagonal(d, rng)
    widths = (RHOS * d).astype(int)
    gap = neural_tangent_expected_risk(widths, b) - neural_tangent_risk(RHOS, b)
    assert np.max(np.abs(gap)) < 5.0 / d


def test_nt_risk_for_weights_is_zero_above_full_rank_and_one_without_weights():
    rng = np.random.default_rng(5)
    b = _random_symmetric(8, rng)
    assert neural_tangent_risk_for_weights(rng.standard_normal((8, 8)), b) < 1e-24
    assert neural_tangent_risk_for_weights(np.zeros((3, 8)), b) == pytest.approx(1.0, abs=1e-14)


def test_theorem3_equals_the_best_rank_n_approximation():
    """Σ_{i>N} λ_i² / ‖B‖²: compared with ‖B − B_N‖²/‖B‖², B_N from the SVD, for PSD B."""
    rng = np.random.default_rng(6)
    d = 40
    g = rng.standard_normal((d, d))
    b = g @ g.T / d
    u, s, vt = np.linalg.svd(b)
    for n in (1, 10, 39, 40):
        truncated = (u[:, :n] * s[:n]) @ vt[:n]
        direct = np.sum((b - truncated) ** 2) / np.sum(b * b)
        np.testing.assert_allclose(network_risk(n / d, b), direct, atol=1e-13)
    assert network_risk(3.0, b) == 0.0


def test_theorem3_rejects_indefinite_target():
    b = np.diag([1.0, -0.5, 2.0])
    with pytest.raises(ValueError, match="positive semidefinite"):
        network_risk(0.5, b)
    with pytest.raises(ValueError, match="positive semidefinite"):
        random_features_risk(1.0, b, weight_covariance="optimal")


def test_equation13_rows_and_figure1_closed_forms_at_large_dimension():
    """B = diag(γ)/√d with γ on the Exp(1) quantile grid γ_i = −ln(1 − (i − ½)/d), d = 500.

    The grid is a midpoint rule for E γ, E γ² and the NN tail integral; its error is dominated by
    the last cell, where ln²(1 − u) is singular: O(ln d / d). Tolerance 2 ln d / d ≈ 0.025 (observed ≤ 0.0034).
    """
    d = 500
    gamma = -np.log1p(-(np.arange(d) + 0.5) / d)
    b = np.diag(gamma) / np.sqrt(d)
    rhos = np.array([0.05, 0.3, 0.7, 1.0, 1.5, 4.0])
    tol = 2 * np.log(d) / d
    finite = equation13_risks(rhos, b)
    limit = figure1_large_dim_risks(rhos)
    np.testing.assert_allclose(finite["random_features"], limit["random_features_isotropic"],
                               atol=tol)
    np.testing.assert_allclose(finite["neural_tangent"], limit["neural_tangent_isotropic"],
                               atol=tol)
    np.testing.assert_allclose(finite["network"], limit["network"], atol=tol)
    np.testing.assert_allclose(
        random_features_risk_quadratic_activation(rhos, b, weight_covariance="optimal"),
        limit["random_features_optimal"], atol=tol)


@pytest.mark.parametrize("call", [
    lambda b: random_features_risk(0.0, b),
    lambda b: random_features_risk(-1.0, b, activation="relu"),
    lambda b: random_features_risk_quadratic_activation([1.0, -2.0], b),
    lambda b: neural_tangent_risk(0.0, b),
    lambda b: network_risk(-0.1, b),
])
def test_nonpositive_width_ratio_raises(call):
    with pytest.raises(ValueError, match="width_ratio"):
        call(np.eye(5))


def test_bad_matrices_and_activation_raise():
    with pytest.raises(ValueError, match="lambda0"):
        random_features_risk(1.0, np.eye(4), activation="relu", offset=False)
    with pytest.raises(ValueError, match="symmetric"):
        random_features_risk(1.0, np.triu(np.ones((4, 4))))
    with pytest.raises(ValueError, match="trace 1"):
        random_features_risk(1.0, np.eye(4), weight_covariance=np.eye(4))
    with pytest.raises(ValueError, match="weight_covariance"):
        random_features_risk(1.0, np.eye(4), weight_covariance="best")
    with pytest.raises(ValueError, match="width"):
        neural_tangent_expected_risk(2.5, np.eye(4))
