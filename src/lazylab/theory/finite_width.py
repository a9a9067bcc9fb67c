"""Finite-d correction of RF with the quadratic activation at N ≫ d (Ghorbani et al. 2019, Cor. 1).

Setting [V, Corollary 1, eq. (12)]: σ = u² − 1 (or u², the offset absorbs the −1), Γ = I/d,
centered f*(x) = xᵀBx − Tr B, offset fitted. As d → ∞ at ρ = N/d fixed,
R/‖f*‖² → 1 − ρT/(1 + ρ) with T = Tr(B)²/(d‖B‖_F²) (:func:`~lazylab.theory.trace_alignment`):
T is the share of ‖B‖_F² along the identity, 1 − T the traceless share.

Finite d [D, this module]. The fit is f = c + xᵀSx with S in span{w_i w_iᵀ}, so exactly
R/‖f*‖² = ‖(I − P)B‖_F²/‖B‖_F², P the Frobenius projector onto that span. Write B = βÎ + B₀
(Î = I/√d, B₀ traceless, β² = T‖B‖²). Gaussian W makes the law of P invariant under
conjugation by O(d); the traceless symmetric matrices (dimension D = d(d+1)/2 − 1) carry an
irreducible representation, so (Schur) E[QPQ] = (E Tr QPQ/D)·Q on them and the cross term
E⟨Î, (I − P)B₀⟩ vanishes. With e = E‖(I − P)Î‖² and Tr QPQ = N − 1 + e (N ≤ D):

    E_W R/‖f*‖² = T·e + (1 − T)·(1 − (N − 1 + e)/D)                      (exact given e),
    e ≈ 1/(1 + ρD/(D − N))                                               (approximation).

For e: the normalized features are φ_i = Î/√d + ξ_i with nearly orthonormal traceless ξ_i, whose
Gram is Marchenko–Pastur with ratio N/D, so 1ᵀΞ⁻¹1 ≈ N/(1 − N/D) and e = 1/(1 + 1ᵀΞ⁻¹1/d);
as d → ∞ at fixed ρ it returns Corollary 1's e = 1/(1 + ρ). The correction to Corollary 1 is

    E_W R/‖f*‖² − (1 − ρT/(1 + ρ)) = T(e − 1/(1 + ρ)) − (1 − T)(N − 1 + e)/D
                                   ≈ −(1 − T)·N/(d(d+1)/2)   for d ≪ N ≪ d².

For N > D the span is all symmetric matrices (generic W) and R = 0.
Checked (tests/theory/test_finite_width.py): the exact projection (= the engine's ``optimal_head``,
1e-8) averaged over 100 draws of W at d = 30 and 40, N = 2d … 12d, B = diag(Exp(1))/√d: within
0.003 (≤ 1.9 standard errors) of the formula, where N/(d(d+1)/2) alone is off by 0.013–0.03.
Issue 11's d = 450, N = 2093/3072/4500 (T ≈ 1/2): −0.012/−0.017/−0.024 against the observed
−0.011/−0.018/−0.024. Other activations (relu) dilute the degree-2 part with higher degrees; the
formula does not apply to them.
"""

from __future__ import annotations

import numpy as np

from lazylab.theory._checks import as_positive_int_array

__all__ = ["finite_width_rf_correction"]


def finite_width_rf_correction(dim, width, share) -> np.ndarray:
    """E_W R_RF/‖f*‖² at finite d minus Corollary 1's 1 − ρT/(1 + ρ) (σ = u² − 1, Γ = I/d) [D].

    Args:
        dim: d ≥ 2.
        width: N ≥ 1, integers, any shape.
        share: T = Tr(B)²/(d‖B‖_F²) ∈ [0, 1], the identity share of B
            (:func:`lazylab.theory.trace_alignment`).
    Returns:
        float64 array with the shape of ``width`` (negative: finite d helps RF). Formula in the
        module docstring; for N > D = d(d+1)/2 − 1 it returns −(1 − ρT/(1 + ρ)) (risk 0).
    """
    d = int(dim)
    if d != dim or d < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    n = as_positive_int_array(width, "width", allow_zero=False).astype(np.float64)
    t = float(share)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"share must be T = Tr(B)^2/(d ||B||_F^2) in [0, 1], got {share!r}")
    rho = n / d
    total = d * (d + 1) / 2.0 - 1.0
    inside = n <= total
    capped = np.where(inside, n, 0.0)
    identity_residual = (total - capped) / (total - capped + rho * total)   # 1/(1 + ρD/(D − N))
    finite = t * identity_residual + (1.0 - t) * (1.0 - (capped - 1.0 + identity_residual) / total)
    finite = np.where(inside, finite, 0.0)
    return finite - (1.0 - rho * t / (1.0 + rho))
