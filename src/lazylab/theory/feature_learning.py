"""Rich-end predictions for the lazy model of a quadratic network: alignment and kernel change.

Model (Chizat, Oyallon & Bach 2019 §1–2 on Ghorbani et al. 2019's Theorem 3 network):
f_α(x) = α(f_θ(x) − f_θ₀(x)), f_θ(x) = Σ_i (w_i·x)² + c, head at ones, w_i(0) ~ N(0, s_w² I/d),
x ~ N(0, I_d), target y = xᵀBx − Tr B. Write M = WᵀW, M₀ = W₀ᵀW₀ and F = α(M − M₀), the matrix
of the learned function f_α(x) − α(c − c₀) = xᵀFx. Exactly [D]:

* WᵀW = M₀ + F/α, so the share of ‖W‖_F² in the span of V_N (B's top-N eigenvectors,
  P = V_N V_Nᵀ) is A = (Tr(P M₀) + Tr(P F)/α)/(Tr M₀ + Tr F/α).
* The tangent kernel of the first layer is K(x, x') = 4(x·x') xᵀMx' (up to the gradient
  multiplier), and in L²(N(0, I) ⊗ N(0, I)) its squared norm is ‖Q‖_K² = (d + 6)‖Q‖_F² + 2(Tr Q)²
  (:func:`lazylab.models._network_diagnostics.quadratic_kernel_change`), so
  ‖K_T − K₀‖/‖K₀‖ = ‖F‖_K/(α‖M₀‖_K): ∝ 1/α at any fixed F.

At the rich end the fit reaches Theorem 3's optimum F = B_N = P B P (the top-N part of B; the
risk within 0.15–1.3 % of Theorem 3 at α = 10⁻² in the lazy-rich study). Averaging over W₀ with
Wishart moments (M₀ = (s_w²/d)GᵀG, G (N, d) iid N(0, 1)):
E Tr M₀ = s_w²N, E‖M₀‖_F² = s_w⁴N(N + d + 1)/d, E(Tr M₀)² = s_w⁴N(Nd + 2)/d. The predictions
replace Tr(P M₀)/Tr M₀ by the measured initial share A₀ and ‖M₀‖_K² by its mean. The kernel
line is then biased low for the mean over W₀ by ≈ (3/8)·CV² of ‖M₀‖_K² (Jensen; 1.7 % at N = 6,
d = 30), checked by Monte Carlo in tests/theory/test_feature_learning.py.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["top_part", "kernel_norm_squared", "rich_alignment", "rich_kernel_change"]


def top_part(matrix, width: int) -> np.ndarray:
    """B_N = Σ_{k ≤ N} max(λ_k, 0) v_k v_kᵀ over B's N largest eigenvalues; (d, d) → (d, d)."""
    b = np.asarray(matrix, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] != b.shape[1] or not np.allclose(b, b.T):
        raise ValueError(f"matrix must be symmetric (d, d), got shape {b.shape}")
    if int(width) < 1:
        raise ValueError(f"width must be >= 1, got {width!r}")
    values, vectors = np.linalg.eigh(b)
    values, vectors = values[::-1][:width], vectors[:, ::-1][:, :width]
    return (vectors * np.clip(values, 0, None)) @ vectors.T


def kernel_norm_squared(matrix) -> float:
    """‖Q‖_K² = (d + 6)‖Q‖_F² + 2(Tr Q)² (module docstring) of a symmetric (d, d) Q."""
    q = np.asarray(matrix, dtype=np.float64)
    return float((q.shape[0] + 6) * np.sum(q * q) + 2.0 * np.trace(q) ** 2)


def rich_kernel_change(alpha, matrix, width: int, weight_scale: float) -> np.ndarray:
    """‖B_N‖_K/(α (E‖M₀‖_K²)^{1/2}): the relative tangent-kernel change at the rich end.

    Args:
        alpha: laziness α > 0, any shape A. matrix: B (d, d). width: N. weight_scale: s_w > 0.
    Returns:
        float64 array of shape A.
    """
    b = np.asarray(matrix, dtype=np.float64)
    d, n, s4 = b.shape[0], int(width), float(weight_scale) ** 4
    if not s4 > 0:
        raise ValueError(f"weight_scale must be > 0, got {weight_scale!r}")
    initial = s4 * n * ((d + 6) * (n + d + 1) + 2 * (n * d + 2)) / d
    return math.sqrt(kernel_norm_squared(top_part(b, n)) / initial) / np.asarray(alpha, float)


def rich_alignment(alpha, matrix, width: int, weight_scale: float,
                   initial: float) -> np.ndarray:
    """A(α) = (A₀ s_w²N + Tr B_N/α)/(s_w²N + Tr B_N/α): the first layer's share in V_N.

    Args:
        alpha: laziness α > 0, any shape A. matrix: B (d, d). width: N. weight_scale: s_w.
        initial: A₀, the share at initialization (≈ N/d for isotropic W₀).
    Returns:
        float64 array of shape A (→ 1 as α → 0, → A₀ as α → ∞).
    """
    trace, start = float(np.trace(top_part(matrix, width))), float(weight_scale) ** 2 * width
    learned = trace / np.asarray(alpha, float)
    return (initial * start + learned) / (start + learned)
