"""The ψ fixed point of Ghorbani et al. (2019), eqs. (9) and (14), for any spectral distribution.

Notation: ρ = N/d (``width_ratio``); 𝒟 = the limiting spectral distribution of d·Γ (eq. 9) or of
d·Γ^{1/2}ΣΓ^{1/2} (eq. 14), given here as atoms t_j ≥ 0 with weights p_j (a finite d gives the
empirical spectral distribution: t = eigenvalues, p_j = 1/d). ψ > 0 solves [V, S1 eq. (9)]

    −λ̃ = −ρ/ψ + ∫ λ₁² t / (1 + λ₁² t ψ) 𝒟(dt).

Interpretation [D, THEORY §1.2]: ψ = (1/d) Tr (λ̃ I_N + λ₁² WᵀW)⁻¹.

Solver. Multiplying by ψ > 0 gives G(ψ) = λ̃ψ − ρ + ∫ λ₁²tψ/(1 + λ₁²tψ) 𝒟(dt), a sum of strictly
increasing terms with G(0⁺) = −ρ < 0, so the root is unique and lies in
[ρ/(λ̃ + λ₁² E_𝒟 t), ρ/λ̃] (bound each fraction by 0 and by λ₁²tψ). We bisect G vectorized over ρ
until the bracket is below 4 ulps. (THEORY §1.2 states that the unmultiplied difference is
decreasing; we bracket G, whose monotonicity is immediate.)

Isotropic closed form [D, THEORY §1.2]: 𝒟 = δ₁ turns (9) into
λ̃λ₁²ψ² + (λ̃ + λ₁²(1 − ρ))ψ − ρ = 0; ψ = ρ/λ̃ when λ₁ = 0. Tested against the solver.
"""

from __future__ import annotations

import numpy as np

from lazylab import _checks as checks
from lazylab.theory._checks import as_width_ratio

__all__ = ["fixed_point_psi", "fixed_point_psi_isotropic"]

_MAX_BISECTIONS = 200


def _check_constants(lambda1: float, lambda_tilde: float) -> None:
    checks.finite_float(lambda1, "lambda1")
    checks.positive_float(lambda_tilde, "lambda_tilde", alternative=" (a nonlinear activation)")


def fixed_point_psi(width_ratio, spectrum, spectrum_weights=None, *, lambda1: float,
                    lambda_tilde: float) -> np.ndarray:
    """ψ(ρ) solving Ghorbani et al. eq. (9)/(14) for a spectral distribution given by atoms.

    Args:
        width_ratio: ρ = N/d > 0, any shape.
        spectrum: atoms t_j ≥ 0 of 𝒟, shape (m,) (e.g. the eigenvalues of d·Γ).
        spectrum_weights: p_j ≥ 0 summing to 1, shape (m,); default uniform 1/m.
        lambda1, lambda_tilde: Hermite constants λ₁ and λ̃ > 0 (:mod:`lazylab.theory.hermite`).
    Returns:
        ψ, float64 array with the shape of ``width_ratio``; relative accuracy ~1e-15.
    """
    rho = as_width_ratio(width_ratio)
    _check_constants(lambda1, lambda_tilde)
    t = np.asarray(spectrum, dtype=np.float64).ravel()
    if t.size == 0 or np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("spectrum must be a non-empty array of finite values >= 0")
    p = np.full(t.size, 1.0 / t.size) if spectrum_weights is None else \
        np.asarray(spectrum_weights, dtype=np.float64).ravel()
    if p.shape != t.shape or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-10:
        raise ValueError(f"spectrum_weights must be >= 0, sum to 1 and match spectrum's shape "
                         f"{t.shape}, got shape {p.shape} and sum {p.sum():.6g}")
    a = lambda1**2 * t                                            # (m,)
    flat = rho.ravel()
    low = flat / (lambda_tilde + float(p @ a))
    high = flat / lambda_tilde
    for _ in range(_MAX_BISECTIONS):
        mid = 0.5 * (low + high)
        x = a[None, :] * mid[:, None]
        g = lambda_tilde * mid - flat + (x / (1.0 + x)) @ p
        positive = g > 0
        high = np.where(positive, mid, high)
        low = np.where(positive, low, mid)
        if np.all(high - low <= 4 * np.finfo(np.float64).eps * high):
            break
    return (0.5 * (low + high)).reshape(rho.shape)


def fixed_point_psi_isotropic(width_ratio, *, lambda1: float, lambda_tilde: float) -> np.ndarray:
    """Closed-form ψ(ρ) for 𝒟 = δ₁ (Γ = I/d): the positive root of THEORY §1.2's quadratic.

    ψ = [−(λ̃ + λ₁²(1−ρ)) + √((λ̃ + λ₁²(1−ρ))² + 4ρλ̃λ₁²)] / (2λ̃λ₁²), and ψ = ρ/λ̃ if λ₁ = 0.
    Evaluated in the cancellation-free form ψ = 2ρ / [(λ̃ + λ₁²(1−ρ)) + √(…)].
    """
    rho = as_width_ratio(width_ratio)
    _check_constants(lambda1, lambda_tilde)
    linear = lambda_tilde + lambda1**2 * (1.0 - rho)
    root = np.sqrt(linear**2 + 4.0 * rho * lambda_tilde * lambda1**2)
    # when linear < 0 the "+" form cancels; use the textbook form there (no cancellation).
    with np.errstate(divide="ignore", invalid="ignore"):
        stable = 2.0 * rho / (linear + root)
        textbook = (root - linear) / (2.0 * lambda_tilde * lambda1**2) if lambda1 != 0 else stable
    return np.where(linear >= 0, stable, textbook)
