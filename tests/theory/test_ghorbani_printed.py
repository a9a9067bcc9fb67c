"""The printed eq. (17) RF line: its closed form, its limits, and its departure from eq. (15)."""

from __future__ import annotations

import numpy as np
import pytest

from lazylab.theory import printed_equation17_random_features_risk, random_features_risk_mixture

RHOS = np.array([0.1, 0.5, 1.0, 4.0, 100.0])


def _delta(d=60, seed=0):
    values = np.random.default_rng(seed).choice([2.0, 1.5, 1.0], size=d) / np.sqrt(d)
    return np.diag(values)


def test_printed_line_matches_its_formula_and_limits():
    delta = _delta()
    signal = np.trace(delta) ** 2 / (2 * delta.shape[0])
    printed = printed_equation17_random_features_risk(RHOS, delta)
    assert printed.shape == RHOS.shape
    np.testing.assert_allclose(1 / printed - 1, RHOS / (1 + 2 * RHOS) * signal, rtol=1e-12)
    # ρ → ∞: ρ/(1+2ρ) → ½; ρ → 0: risk → 1
    assert printed_equation17_random_features_risk(1e9, delta) == pytest.approx(
        1 / (1 + signal / 2), rel=1e-8)
    assert printed_equation17_random_features_risk(1e-9, delta) == pytest.approx(1.0, abs=1e-8)


def test_printed_line_lies_above_equation15_for_sigma_u2_minus_1():
    """Eq. (15) has ρ/(1+ρ) > ρ/(1+2ρ): the printed line always predicts a larger risk."""
    delta = _delta()
    printed = printed_equation17_random_features_risk(RHOS, delta)
    from15 = random_features_risk_mixture(RHOS, delta, activation="hermite2")
    signal = np.trace(delta) ** 2 / (2 * delta.shape[0])
    np.testing.assert_allclose(1 / from15 - 1, RHOS / (1 + RHOS) * signal, rtol=1e-6)
    assert np.all(printed > from15)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="delta"):
        printed_equation17_random_features_risk(1.0, np.ones((2, 3)))
    with pytest.raises(ValueError, match="width_ratio"):
        printed_equation17_random_features_risk(-1.0, _delta())
