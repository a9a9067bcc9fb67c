"""Ghorbani, Mei, Misiakiewicz, Montanari (NeurIPS 2019), quadratic targets: RF, NT, NN risks.

Notation (THEORY.md §1.1–1.5): x ~ N(0, I_d), centered target f*(x) = xᵀBx − Tr B, so
‖f*‖²_{L²} = 2‖B‖_F² [D]; weights w_i ~ N(0, Γ), Tr Γ = 1 (assumption A2); ρ = N/d is
``width_ratio``; T = Tr(B)²/(d‖B‖_F²) ∈ [0, 1]. Every function returns the *normalized* risk
R/‖f*‖² (the y-axis of Fig. 1), as a float64 array with the shape of ``width_ratio``
(or of ``width``). How each formula was checked: docs/theory.md and tests/theory/.
"""

from __future__ import annotations

import numpy as np

from lazylab.theory._checks import (as_positive_int_array, as_symmetric_matrix, as_width_ratio,
                                    require_psd)
from lazylab.theory.fixed_point import fixed_point_psi
from lazylab.theory.hermite import hermite_constants

__all__ = ["resolve_weight_covariance", "random_features_risk", "random_features_risk_limit",
           "random_features_risk_quadratic_activation", "neural_tangent_risk",
           "neural_tangent_expected_risk", "neural_tangent_risk_for_weights", "network_risk",
           "equation13_risks", "figure1_large_dim_risks", "trace_alignment"]

_TRACE_TOLERANCE = 1e-8


def resolve_weight_covariance(weight_covariance, target_matrix) -> np.ndarray:
    """Γ from ``None``/"isotropic" (I/d), "optimal" (Γ* = B/Tr B, THEORY §1.2 [D]) or a matrix.

    A matrix must be symmetric PSD with Tr Γ = 1 (assumption A2, |Tr Γ − 1| <= 1e-8).
    """
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    d = b.shape[0]
    if weight_covariance is None or (isinstance(weight_covariance, str)
                                     and weight_covariance == "isotropic"):
        return np.eye(d) / d
    if isinstance(weight_covariance, str):
        if weight_covariance != "optimal":
            raise ValueError(f"weight_covariance must be None, 'isotropic', 'optimal' or a "
                             f"matrix, got {weight_covariance!r}")
        require_psd(b, "target_matrix (for weight_covariance='optimal', Gamma* = B/Tr B)")
        if np.trace(b) <= 0:
            raise ValueError("weight_covariance='optimal' needs Tr(target_matrix) > 0")
        return b / np.trace(b)
    gamma = as_symmetric_matrix(weight_covariance, "weight_covariance")
    if gamma.shape != b.shape:
        raise ValueError(f"weight_covariance must have shape {b.shape}, got {gamma.shape}")
    require_psd(gamma, "weight_covariance")
    if abs(np.trace(gamma) - 1.0) > _TRACE_TOLERANCE:
        raise ValueError(f"weight_covariance must have trace 1 (assumption A2), got "
                         f"{np.trace(gamma):.12g}")
    return gamma


def trace_alignment(target_matrix) -> float:
    """T = Tr(B)²/(d‖B‖_F²), the quantity in eqs. (11)–(13) and Theorem 2."""
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    norm2 = float(np.sum(b * b))
    if norm2 == 0:
        raise ValueError("target_matrix must be nonzero (the normalized risk divides by ||B||_F^2)")
    return float(np.trace(b)) ** 2 / (b.shape[0] * norm2)


def random_features_risk(width_ratio, target_matrix, *, activation="hermite2",
                         weight_covariance=None, offset: bool = True) -> np.ndarray:
    """Theorem 1 (RF, general activation), Ghorbani et al. eq. (10), normalized by ‖f*‖².

    R/‖f*‖² = 1 − dψλ₂²⟨Γ,B⟩² / (‖B‖_F² (2 + dψλ₂²‖Γ‖_F²)),   ψ from eq. (9) with 𝒟 the
    empirical spectral distribution of dΓ (:func:`lazylab.theory.fixed_point.fixed_point_psi`).
    Provenance [V→R, THEORY §1.2]: the layout of (10) was garbled in the extracted text; this
    reconstruction reproduces Corollary 1 and eq. (11) exactly (tested) and the exact finite-d
    engine (tests/theory/test_engine_agreement.py). Error o_{d,P}(1) — observed O(d^{-1/2}).

    Args:
        width_ratio: ρ = N/d > 0, any shape.
        target_matrix: B, (d, d) symmetric.
        activation: σ (name/Activation/callable); λ₁, λ₂, λ̃ from :mod:`lazylab.theory.hermite`.
        weight_covariance: Γ — None/'isotropic', 'optimal' or a trace-1 PSD matrix.
        offset: whether the RF predictor has a free constant; False requires λ₀ = 0.
    """
    rho = as_width_ratio(width_ratio)
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    gamma = resolve_weight_covariance(weight_covariance, b)
    consts = hermite_constants(activation, offset=offset)
    d = b.shape[0]
    psi = fixed_point_psi(rho, d * np.linalg.eigvalsh(gamma).clip(min=0.0),
                          lambda1=consts.lambda1, lambda_tilde=consts.lambda_tilde)
    signal = d * psi * consts.lambda2**2
    inner = float(np.sum(gamma * b))
    b_norm2 = float(np.sum(b * b))
    if b_norm2 == 0:
        raise ValueError("target_matrix must be nonzero")
    return 1.0 - signal * inner**2 / (b_norm2 * (2.0 + signal * float(np.sum(gamma * gamma))))


def random_features_risk_limit(target_matrix, *, weight_covariance=None) -> float:
    """Eq. (11) [V]: lim_{ρ→∞} R_RF/‖f*‖² = 1 − ⟨Γ,B⟩²/(‖Γ‖_F²‖B‖_F²) (any activation, λ₂ ≠ 0)."""
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    gamma = resolve_weight_covariance(weight_covariance, b)
    return 1.0 - float(np.sum(gamma * b)) ** 2 / (float(np.sum(gamma * gamma))
                                                   * float(np.sum(b * b)))


def random_features_risk_quadratic_activation(width_ratio, target_matrix, *,
                                              weight_covariance=None) -> np.ndarray:
    """Corollary 1, eq. (12) [V]: σ = u² − 1, R/‖f*‖² = 1 − ρd⟨B,Γ⟩²/(‖B‖_F²(1 + ρd‖Γ‖_F²)).

    Specializations [D, THEORY §1.3]: Γ = I/d gives 1 − ρT/(1+ρ); Γ* = B/Tr B gives T/(T+ρ).
    """
    rho = as_width_ratio(width_ratio)
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    gamma = resolve_weight_covariance(weight_covariance, b)
    d = b.shape[0]
    inner = float(np.sum(gamma * b))
    return 1.0 - rho * d * inner**2 / (float(np.sum(b * b))
                                       * (1.0 + rho * d * float(np.sum(gamma * gamma))))


def neural_tangent_risk(width_ratio, target_matrix) -> np.ndarray:
    """Theorem 2 [V] (NT, σ = x², Γ = I/d), the NT line of eq. (13), averaged over W:

    E R_NT/‖f*‖² = (1−ρ)₊²(1 − T) + (1−ρ)₊T = (1−ρ)₊² + ρ(1−ρ)₊T,   error o_d(1).
    """
    rho = as_width_ratio(width_ratio)
    t = trace_alignment(target_matrix)
    gap = np.clip(1.0 - rho, 0.0, None)
    return gap**2 * (1.0 - t) + gap * t


def neural_tangent_expected_risk(width, target_matrix) -> np.ndarray:
    """Exact finite-d E_W[R_NT]/‖f*‖² for Gaussian W (Weingarten), THEORY §1.4 [D].

    R_NT = 2‖P⊥BP⊥‖_F² exactly for every W [D], and P⊥ is a Haar projection of rank
    k = max(d − N, 0), so with β = k(d−k)/(d(d−1)(d+2)) and α = k²/d² − 2β/d,
    E‖P⊥BP⊥‖_F² = (α + β)‖B‖_F² + β Tr(B)².   Checked against Monte Carlo over W (tests).

    Args:
        width: N ≥ 0, integer array (any shape); target_matrix: B, (d, d) symmetric, d ≥ 2.
    """
    n = as_positive_int_array(width, "width")
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    d = b.shape[0]
    if d < 2:
        raise ValueError(f"target_matrix must be at least 2 x 2 for the Weingarten formula, "
                         f"got d={d}")
    k = np.clip(d - n, 0, None).astype(np.float64)
    beta = k * (d - k) / (d * (d - 1.0) * (d + 2.0))
    alpha = k**2 / d**2 - 2.0 * beta / d
    b_norm2 = float(np.sum(b * b))
    if b_norm2 == 0:
        raise ValueError("target_matrix must be nonzero")
    return ((alpha + beta) * b_norm2 + beta * float(np.trace(b)) ** 2) / b_norm2


def neural_tangent_risk_for_weights(weights, target_matrix) -> float:
    """Exact R_NT/‖f*‖² = ‖P⊥BP⊥‖_F²/‖B‖_F² for given first-layer weights (σ = x², with offset).

    THEORY §1.4 [D]: the NT class {c + xᵀ(WᵀA + AᵀW)x} represents exactly the symmetric M with
    P⊥MP⊥ = 0, P⊥ the projector onto span(w_i)^⊥. Args: weights (N, d); target_matrix (d, d).
    """
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != b.shape[0]:
        raise ValueError(f"weights must have shape (N, {b.shape[0]}), got {w.shape}")
    u, s, _ = np.linalg.svd(w.T, full_matrices=False)
    basis = u[:, s > s.max(initial=0.0) * max(w.shape) * np.finfo(float).eps]
    p_perp = np.eye(b.shape[0]) - basis @ basis.T
    return float(np.sum((p_perp @ b @ p_perp) ** 2) / np.sum(b * b))


def network_risk(width_ratio, target_matrix) -> np.ndarray:
    """Theorem 3 [V] (NN, σ = x², unit second layer): inf L / ‖f*‖² = Σ_{i>N} λ_i(B)²/‖B‖_F².

    N = ⌊ρd + 1e-9⌋ hidden units fit the top-N eigendirections of B (eigenvalues in decreasing
    order). Requires B ⪰ 0 (the model Σ(w_i·x)² + c can only represent PSD matrices).
    Also the NN line of eq. (13).
    """
    rho = as_width_ratio(width_ratio)
    b = as_symmetric_matrix(target_matrix, "target_matrix")
    eig = require_psd(b, "target_matrix (Theorem 3 needs B PSD)")
    d = b.shape[0]
    squares = np.sort(eig.clip(min=0.0))[::-1] ** 2
    total = float(squares.sum())
    if total == 0:
        raise ValueError("target_matrix must be nonzero")
    tails = np.concatenate([np.cumsum(squares[::-1])[::-1], [0.0]])    # tails[n] = Σ_{i>n}
    n = np.minimum(np.floor(rho * d + 1e-9).astype(np.int64), d)
    return tails[n] / total


def equation13_risks(width_ratio, target_matrix) -> dict[str, np.ndarray]:
    """Eq. (13) [V]: normalized RF (σ = u²−1), NT and NN risks for Γ = I/d.

    RF: 1 − ρT/(1+ρ); NT: (1−ρ)₊² + ρ(1−ρ)₊T; NN: 1 − Σ_{i ≤ N∧d} λ_i(B)²/‖B‖_F² (B ⪰ 0).
    """
    return {
        "random_features": random_features_risk_quadratic_activation(width_ratio, target_matrix),
        "neural_tangent": neural_tangent_risk(width_ratio, target_matrix),
        "network": network_risk(width_ratio, target_matrix),
    }


def figure1_large_dim_risks(width_ratio) -> dict[str, np.ndarray]:
    """Large-d closed forms of Fig. 1 for B = diag(γ)/√d, γ_i ~ Exp(1) (THEORY §1.5 [D]).

    T → (Eγ)²/Eγ² = 1/2, giving RF(I) = 1 − ρ/(2(1+ρ)), RF(Γ*) = 1/(1+2ρ),
    NT(I) = (1−ρ)₊² + ρ(1−ρ)₊/2, NN = 1 − ρ(ln²ρ − 2 ln ρ + 2)/2 for ρ ≤ 1 and 0 above
    (∫_t^∞ x²e^{−x}dx = e^{−t}(t² + 2t + 2) at t = −ln ρ, over Eγ² = 2).
    """
    rho = as_width_ratio(width_ratio)
    gap = np.clip(1.0 - rho, 0.0, None)
    small = np.minimum(rho, 1.0)
    log = np.log(small)
    return {
        "random_features_isotropic": 1.0 - rho / (2.0 * (1.0 + rho)),
        "random_features_optimal": 1.0 / (1.0 + 2.0 * rho),
        "neural_tangent_isotropic": gap**2 + rho * gap / 2.0,
        "network": np.where(rho < 1.0, 1.0 - small * (log**2 - 2.0 * log + 2.0) / 2.0, 0.0),
    }
