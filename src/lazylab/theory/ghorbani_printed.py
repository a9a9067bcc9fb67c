"""Formulas as *printed* in Ghorbani et al. (2019) where lazylab implements a corrected form.

Kept so that a figure can draw the printed line beside the implemented one (THEORY.md §1.6):
lazylab's :func:`lazylab.theory.random_features_risk_mixture` is eq. (15), which for Σ = I,
Γ = I/d and σ = u² − 1 reduces to [1 + ρ/(1+ρ)·Tr(Δ)²/(2d)]⁻¹; the summary eq. (17) prints
ρ/(1+2ρ) in its place, which would follow only if ζ₁ = d Tr(ΣΓΣΓ) lacked its ½. The exact
finite-d engine agrees with (15) (tests/theory/test_engine_agreement.py), not with this.
"""

from __future__ import annotations

import numpy as np

from lazylab.theory._checks import as_symmetric_matrix, as_width_ratio

__all__ = ["printed_equation17_random_features_risk"]


def printed_equation17_random_features_risk(width_ratio, delta) -> np.ndarray:
    """The RF line of eq. (17) as printed [V, THEORY §1.6]: [1 + ρ/(1+2ρ)·Tr(Δ)²/(2d)]⁻¹.

    Args:
        width_ratio: ρ = N/d > 0, any shape. delta: Δ, (d, d) symmetric.
    Returns:
        float64 array with the shape of ``width_ratio`` (R with R₀ = E y² = 1). Known to be
        inconsistent with eq. (15); use :func:`lazylab.theory.random_features_risk_mixture`.
    """
    rho = as_width_ratio(width_ratio)
    dl = as_symmetric_matrix(delta, "delta")
    signal = float(np.trace(dl)) ** 2 / (2.0 * dl.shape[0])
    return 1.0 / (1.0 + rho / (1.0 + 2.0 * rho) * signal)
