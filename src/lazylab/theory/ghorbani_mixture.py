"""Ghorbani et al. (NeurIPS 2019) §3, mixture of Gaussians: RF, NT, NN risks and the Bayes MMSE.

Notation (THEORY.md §1.6): y = ±1 with probability ½; x | y=+1 ~ N(0, Σ − Δ),
x | y=−1 ~ N(0, Σ + Δ); Δ̃ = Σ^{-1/2}ΔΣ^{-1/2}; ρ = N/d (``width_ratio``). Risks are on the scale
of E y² = 1 (R₀ = 1, the best constant). Assumptions M1 (c₁I ⪯ Σ ⪯ c₂I) and M2
(‖Δ‖_op = Θ(1/√d)) are the regime in which the o_d(1) errors vanish; they are not checked
(finite d has no Θ), but Σ must be positive definite and Σ ± Δ PSD (they are covariances).
"""

from __future__ import annotations

import numpy as np

from lazylab.theory._checks import as_symmetric_matrix, as_width_ratio, require_psd
from lazylab.theory.fixed_point import fixed_point_psi
from lazylab.theory.hermite import hermite_constants

__all__ = ["random_features_risk_mixture", "random_features_risk_mixture_limit",
           "neural_tangent_risk_mixture", "neural_tangent_risk_mixture_for_weights",
           "network_risk_mixture", "bayes_risk_mixture", "equation17_risks",
           "whitened_difference"]

_TRACE_TOLERANCE = 1e-8


def _mixture(delta, input_covariance):
    dl = as_symmetric_matrix(delta, "delta")
    d = dl.shape[0]
    sigma = np.eye(d) if input_covariance is None else \
        as_symmetric_matrix(input_covariance, "input_covariance")
    if sigma.shape != dl.shape:
        raise ValueError(f"input_covariance must have shape {dl.shape}, got {sigma.shape}")
    eig = np.linalg.eigvalsh(sigma)
    if eig.min() <= 0:
        raise ValueError(f"input_covariance must be positive definite, got smallest eigenvalue "
                         f"{eig.min():.6g}")
    require_psd(sigma - dl, "input_covariance - delta (the class +1 covariance)")
    require_psd(sigma + dl, "input_covariance + delta (the class -1 covariance)")
    return dl, sigma


def whitened_difference(delta, input_covariance=None) -> np.ndarray:
    """Δ̃ = Σ^{-1/2} Δ Σ^{-1/2} (Theorems 5 and 6)."""
    dl, sigma = _mixture(delta, input_covariance)
    eig, vec = np.linalg.eigh(sigma)
    root_inv = (vec / np.sqrt(eig)) @ vec.T
    return root_inv @ dl @ root_inv


def _resolve_gamma(weight_covariance, sigma):
    d = sigma.shape[0]
    if weight_covariance is None or (isinstance(weight_covariance, str)
                                     and weight_covariance == "isotropic"):
        gamma = np.eye(d) / np.trace(sigma)
    elif isinstance(weight_covariance, str):
        raise ValueError(f"weight_covariance must be None, 'isotropic' or a matrix, got "
                         f"{weight_covariance!r}")
    else:
        gamma = as_symmetric_matrix(weight_covariance, "weight_covariance")
        if gamma.shape != sigma.shape:
            raise ValueError(f"weight_covariance must have shape {sigma.shape}, got {gamma.shape}")
        require_psd(gamma, "weight_covariance")
    if abs(np.sum(gamma * sigma) - 1.0) > _TRACE_TOLERANCE:
        raise ValueError(f"weight_covariance must satisfy Tr(Gamma Sigma) = 1 (assumption B2), "
                         f"got {np.sum(gamma * sigma):.12g}")
    return gamma


def random_features_risk_mixture(width_ratio, delta, *, input_covariance=None,
                                 activation="hermite2", weight_covariance=None,
                                 offset: bool = True) -> np.ndarray:
    """Theorem 4 (RF), Ghorbani et al. eq. (15) — NOT the printed eq. (17).

    R_RF = (1 + ζ₁λ₂²ψ) / (1 + (ζ₁ + ζ₂)λ₂²ψ),  ζ₁ = d Tr(ΣΓΣΓ)/2,  ζ₂ = d Tr(ΔΓ)²/4,
    ψ from eq. (14) with 𝒟 the spectrum of d·Γ^{1/2}ΣΓ^{1/2}. Error o_{d,P}(1).
    Provenance [V, layout of (15) recoverable, THEORY §1.6], re-derived there [D] and checked
    here against the exact finite-d engine. For Σ = I, Γ = I/d, σ = u²−1 it gives
    [1 + ρ/(1+ρ)·Tr(Δ)²/(2d)]⁻¹, whereas the printed RF line of eq. (17) reads ρ/(1+2ρ): the
    printed version disagrees with (15) and with exact finite-d numerics (by > 0.08 at ρ = 1),
    so (15) is implemented (THEORY §1.6; the test suite asserts the two differ).

    Args:
        width_ratio: ρ > 0; delta: Δ (d, d); input_covariance: Σ (default I);
        activation: σ; weight_covariance: Γ with Tr(ΓΣ) = 1 (default I/Tr Σ);
        offset: free constant in the predictor (else λ₀ = 0 is required).
    """
    rho = as_width_ratio(width_ratio)
    dl, sigma = _mixture(delta, input_covariance)
    gamma = _resolve_gamma(weight_covariance, sigma)
    consts = hermite_constants(activation, offset=offset)
    d = dl.shape[0]
    g_eig, g_vec = np.linalg.eigh(gamma)
    g_root = (g_vec * np.sqrt(g_eig.clip(min=0.0))) @ g_vec.T
    spectrum = d * np.linalg.eigvalsh(g_root @ sigma @ g_root).clip(min=0.0)
    psi = fixed_point_psi(rho, spectrum, lambda1=consts.lambda1, lambda_tilde=consts.lambda_tilde)
    sg = sigma @ gamma
    zeta1 = d * float(np.sum(sg * sg.T)) / 2.0
    zeta2 = d * float(np.sum(dl * gamma)) ** 2 / 4.0
    scale = consts.lambda2**2 * psi
    return (1.0 + zeta1 * scale) / (1.0 + (zeta1 + zeta2) * scale)


def random_features_risk_mixture_limit(delta, *, input_covariance=None,
                                       weight_covariance=None) -> float:
    """Eq. (16) [V]: lim_{ρ→∞} R_RF = ζ₁/(ζ₁ + ζ₂) (at the given finite-d ζ's)."""
    dl, sigma = _mixture(delta, input_covariance)
    gamma = _resolve_gamma(weight_covariance, sigma)
    sg = sigma @ gamma
    zeta1 = dl.shape[0] * float(np.sum(sg * sg.T)) / 2.0
    zeta2 = dl.shape[0] * float(np.sum(dl * gamma)) ** 2 / 4.0
    return zeta1 / (zeta1 + zeta2)


def neural_tangent_risk_mixture(width_ratio, delta) -> np.ndarray:
    """Theorem 5 [V], Σ = I, σ = x², w_i ~ N(0, I/d): R_NT = 2/(2 + κ(ρ,Δ)‖Δ‖_F²) + o(1),

    κ = 1 − (1−ρ)₊²(1 − T_Δ) − (1−ρ)₊T_Δ,  T_Δ = Tr(Δ)²/(d‖Δ‖_F²); equal to 1/(1 + ‖Δ‖_F²/2)
    for ρ ≥ 1. κ‖Δ‖² is the expected ‖Δ‖² − ‖P⊥ΔP⊥‖² (Theorem 2's average).
    """
    rho = as_width_ratio(width_ratio)
    dl, _ = _mixture(delta, None)
    norm2 = float(np.sum(dl * dl))
    t = float(np.trace(dl)) ** 2 / (dl.shape[0] * norm2) if norm2 > 0 else 0.0
    gap = np.clip(1.0 - rho, 0.0, None)
    kappa = 1.0 - gap**2 * (1.0 - t) - gap * t
    return 2.0 / (2.0 + kappa * norm2)


def neural_tangent_risk_mixture_for_weights(weights, delta, *, input_covariance=None) -> float:
    """Theorem 5 [V], general Σ, for given W: 2/(2 + ‖Δ̃‖_F² − ‖P⊥Δ̃P⊥‖_F²) + o_d(1),

    P⊥ = I − Σ^{1/2}W(WᵀΣW)⁻¹WᵀΣ^{1/2} (the projector off span(Σ^{1/2}w_i)); weights (N, d).
    """
    dl, sigma = _mixture(delta, input_covariance)
    tilde = whitened_difference(dl, sigma)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != dl.shape[0]:
        raise ValueError(f"weights must have shape (N, {dl.shape[0]}), got {w.shape}")
    eig, vec = np.linalg.eigh(sigma)
    spanning = (vec * np.sqrt(eig)) @ vec.T @ w.T                 # Σ^{1/2} Wᵀ, (d, N)
    u, s, _ = np.linalg.svd(spanning, full_matrices=False)
    basis = u[:, s > s.max(initial=0.0) * max(w.shape) * np.finfo(float).eps]
    p_perp = np.eye(dl.shape[0]) - basis @ basis.T
    captured = float(np.sum(tilde * tilde) - np.sum((p_perp @ tilde @ p_perp) ** 2))
    return 2.0 / (2.0 + captured)


def network_risk_mixture(width_ratio, delta, *, input_covariance=None) -> np.ndarray:
    """Theorem 6 [V] (NN, σ = x², free a_i): R = 2/(2 + Σ_{i ≤ N∧d} s_i(Δ̃)²) + o_d(1),

    s_i(Δ̃) the singular values of Δ̃ in decreasing order, N = ⌊ρd + 1e-9⌋.
    """
    rho = as_width_ratio(width_ratio)
    tilde = whitened_difference(delta, input_covariance)
    d = tilde.shape[0]
    squares = np.sort(np.abs(np.linalg.eigvalsh(tilde)))[::-1] ** 2
    captured = np.concatenate([[0.0], np.cumsum(squares)])
    n = np.minimum(np.floor(rho * d + 1e-9).astype(np.int64), d)
    return 2.0 / (2.0 + captured[n])


def bayes_risk_mixture(delta, *, input_covariance=None, nodes: int = 101) -> float:
    """Bayes MMSE E(y − E[y|x])² in the M2 limit: 1 − E tanh(s + √s Z), s = ‖Δ̃‖_F²/2.

    THEORY §1.6 [D] (no formula in S1): E[y|x] = tanh(LLR/2) and LLR | y ≈ N(2sy, 4s), so the
    MMSE is that of ±1 signalling at SNR s; Z ~ N(0,1) integrated by Gauss–Hermite with
    ``nodes`` points. Error O(d^{-1/2}) at finite d (non-Gaussianity of the LLR); checked against
    Monte Carlo of the exact finite-d posterior mean.
    """
    tilde = whitened_difference(delta, input_covariance)
    s = float(np.sum(tilde * tilde)) / 2.0
    z, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    return 1.0 - float(np.tanh(s + np.sqrt(s) * z) @ w) / np.sqrt(2.0 * np.pi)


def equation17_risks(width_ratio, delta) -> dict[str, np.ndarray]:
    """The Σ = I, Γ = I/d, σ = x²(−1) summary of Ghorbani et al. eq. (17), RF line from eq. (15).

    RF: [1 + ρ/(1+ρ)·Tr(Δ)²/(2d)]⁻¹ (eq. (15) specialized; the *printed* (17) has ρ/(1+2ρ),
    which is inconsistent with (15) — THEORY §1.6); NT: [1 + κ‖Δ‖_F²/2]⁻¹ (Theorem 5);
    NN: [1 + Σ_{i≤N∧d} λ_i(Δ)²/2]⁻¹ (Theorem 6).
    """
    return {
        "random_features": random_features_risk_mixture(width_ratio, delta),
        "neural_tangent": neural_tangent_risk_mixture(width_ratio, delta),
        "network": network_risk_mixture(width_ratio, delta),
    }
