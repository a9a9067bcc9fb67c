"""The Hermite constants λ₀, λ₁, λ₂, λ̃ that the asymptotic formulas use, for any activation.

Notation (THEORY.md §1.2, §5.2; Ghorbani et al. 2019 §2.1): G ~ N(0, 1),
λ_k = E[σ(G) He_k(G)] (probabilists' Hermite), λ̃ = E[σ(G)²] − λ₀² − λ₁² (the variance of σ(G)
outside degree ≤ 1; with λ₀ = 0 this is the paper's E σ² − λ₁² = Σ_{k≥2} λ_k²/k!).

Every constant comes from :mod:`lazylab.activations` (exact for relu/step/polynomials, quadrature
otherwise) and :func:`lazylab.gaussian.pair_expectation` (E σ², a 1-D Gaussian integral), never
from literals, so the predictions hold for any activation.

Centering. Theorems 1 and 4 assume λ₀ = 0 (footnote 2 of S1: RF has no offset). THEORY §1.2
notes that a free offset c in the predictor is asymptotically equivalent to centering σ. So:
``offset=False`` requires |λ₀| <= 1e-10·√(E σ²) and raises ValueError otherwise;
``offset=True`` uses the centered activation σ − λ₀ (its λ̃ = Var σ(G) − λ₁²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lazylab.activations import get_activation
from lazylab.gaussian import pair_expectation

__all__ = ["HermiteConstants", "hermite_constants"]

CENTERING_TOLERANCE = 1e-10


@dataclass(frozen=True)
class HermiteConstants:
    """λ₀, λ₁, λ₂, λ̃ and E σ(G)² of one activation (unit scale, no bias)."""

    activation: str
    lambda0: float
    lambda1: float
    lambda2: float
    lambda_tilde: float
    second_moment: float


def hermite_constants(activation, *, offset: bool) -> HermiteConstants:
    """Hermite constants of ``activation`` as Theorems 1/4 of Ghorbani et al. use them.

    Args:
        activation: a name, :class:`lazylab.activations.Activation` or callable.
        offset: True when the predictor has a free constant (then σ is effectively centered and
            λ₀ is reported but not used); False requires λ₀ = 0.
    Returns:
        :class:`HermiteConstants`; ``lambda_tilde`` = E σ² − λ₀² − λ₁² (THEORY §1.2, [V] def.).
    Raises:
        ValueError: offset=False and λ₀ ≠ 0 (e.g. raw relu, λ₀ = 1/√(2π)); or σ is affine
            (λ̃ = 0, excluded by assumption A1: "σ is nonlinear").
    """
    act = get_activation(activation)
    lam = act.hermite_coefficients(2).tolist()
    second = float(pair_expectation(act, act, 1.0, 1.0, 1.0, None, None))
    lambda0, lambda1, lambda2 = lam
    if not offset and abs(lambda0) > CENTERING_TOLERANCE * math.sqrt(max(second, 1e-300)):
        raise ValueError(
            f"activation {act.name!r} has lambda0 = E[sigma(G)] = {lambda0:.6g} != 0; the "
            "Ghorbani et al. RF theorems need a centered activation (lambda0 = 0) or a free "
            "offset: pass offset=True, or use a centered activation (e.g. 'hermite2' = u^2 - 1)")
    lambda_tilde = second - lambda0**2 - lambda1**2
    if lambda_tilde <= 1e-12 * max(second, 1e-300):
        raise ValueError(f"activation {act.name!r} is affine on N(0,1) (lambda_tilde = "
                         f"{lambda_tilde:.3g}); assumption A1 requires a nonlinear activation")
    return HermiteConstants(act.name, lambda0, lambda1, lambda2, lambda_tilde, second)
