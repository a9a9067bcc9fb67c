"""Yehudai & Shamir (NeurIPS 2019): random features cannot efficiently approximate one ReLU.

Notation (THEORY.md §2): x ~ N(0, I_d); target f*(x) = [⟨w*, x⟩ + b*]₊; r random features
f_i(x) = relu(⟨w_i, x⟩ + b_i); predictor Σ_i u_i f_i(x) (no offset in the paper's model).

The theorem [V, S3, §2.3]: for every feature distribution there are w*, b* such that, w.h.p.,
risk ≤ 1/50 forces r·max_i|u_i| ≥ exp(c·d) (the slides write 2^d). Its constants, the norms of
w* and b* it needs, and the failure probability are **[M]** (recalled, unverified; THEORY §2.3),
so this module does not implement the bound with constants. It provides
* the exact quantity the theorem is about — the minimal population risk of r given features
  and the head norm it needs — computed with the exact Gaussian engine
  (:func:`lazylab.gaussian.dual_matrix`, closed-form biased ReLU pairs); and
* :func:`exponential_lower_bound_shape`, the qualitative scale·exp(rate·d), a reference shape
  with user-chosen constants, NOT a constant from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lazylab.activations import get_activation
from lazylab.gaussian import dual_matrix, feature_mean, pair_expectation

__all__ = ["SingleNeuronFit", "single_neuron_random_features_risk",
           "exponential_lower_bound_shape", "relu_nonlinear_share"]


@dataclass(frozen=True)
class SingleNeuronFit:
    """Population-optimal head for r random ReLU features fitted to a single ReLU.

    Attributes:
        risk: min_u E(f*(x) − c − Σ u_i f_i(x))² (c = 0 unless offset); exact, float64.
        normalized_risk: risk / E f*(x)² (or / Var f* with an offset).
        target_second_moment: E f*(x)².
        head: the minimizer u (r,); offset: c.
        head_norm_max: max_i |u_i|;  head_scale: r·max_i |u_i| (the theorem's quantity).
    """

    risk: float
    normalized_risk: float
    target_second_moment: float
    head: np.ndarray
    offset: float
    head_norm_max: float
    head_scale: float


def _as_inputs(target_weight, target_bias, feature_weights, feature_biases):
    w_star = torch.as_tensor(np.asarray(target_weight, dtype=np.float64))
    w = torch.as_tensor(np.asarray(feature_weights, dtype=np.float64))
    if w_star.ndim != 1 or w_star.numel() == 0 or not torch.isfinite(w_star).all():
        raise ValueError(f"target_weight must be a finite vector (d,), got shape "
                         f"{tuple(w_star.shape)}")
    d = w_star.numel()
    if w.ndim != 2 or w.shape[1] != d or w.shape[0] == 0 or not torch.isfinite(w).all():
        raise ValueError(f"feature_weights must be a finite (r, {d}) array with r >= 1, got "
                         f"shape {tuple(w.shape)}")
    if not np.isfinite(float(target_bias)):
        raise ValueError(f"target_bias must be finite, got {target_bias!r}")
    b_star = torch.tensor([float(target_bias)], dtype=torch.float64)
    b = torch.zeros(w.shape[0], dtype=torch.float64) if feature_biases is None else \
        torch.as_tensor(np.asarray(feature_biases, dtype=np.float64))
    if b.shape != (w.shape[0],) or not torch.isfinite(b).all():
        raise ValueError(f"feature_biases must be a finite ({w.shape[0]},) array, got shape "
                         f"{tuple(b.shape)}")
    return w_star[None, :], b_star, w, b


def single_neuron_random_features_risk(target_weight, target_bias, feature_weights,
                                       feature_biases=None, *, offset: bool = False,
                                       ridge: float = 0.0) -> SingleNeuronFit:
    """Exact minimal population risk of Σ u_i relu(w_i·x + b_i) for f* = relu(w*·x + b*).

    Normal equations with U_ij = E[f_i f_j], V_i = E[f* f_i], ‖f*‖² = E f*², all exact dual
    activations (THEORY §5.1, biased ReLU closed form): u = (U + ridge·I)⁺V,
    risk = ‖f*‖² − 2uᵀV + uᵀUu. With ``offset`` the features and target are centered first.
    The pseudo-inverse drops eigenvalues below 1e-13·λ_max(U) (numerically dependent features).

    Args:
        target_weight: w* (d,); target_bias: b*.
        feature_weights: W (r, d) — a draw from the feature distribution; feature_biases: (r,)
            or None (zero biases). offset: allow a free constant c (the paper's model has none).
        ridge: ≥ 0, added to U (a penalty ridge·‖u‖²); the risk reported is the unpenalized one.
    Returns:
        :class:`SingleNeuronFit` with risk, head, max|u_i| and r·max|u_i|.
    """
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    w_star, b_star, w, b = _as_inputs(target_weight, target_bias, feature_weights, feature_biases)
    gram = dual_matrix("relu", w, b).numpy()
    cross = dual_matrix("relu", w, b, "relu", w_star, b_star).numpy()[:, 0]
    second = float(dual_matrix("relu", w_star, b_star).numpy()[0, 0])
    target_second = second
    if offset:
        mean = feature_mean("relu", w, b).numpy()
        target_mean = float(feature_mean("relu", w_star, b_star)[0])
        gram = gram - np.outer(mean, mean)
        cross = cross - mean * target_mean
        second = second - target_mean**2
    eig, vec = np.linalg.eigh(gram + ridge * np.eye(gram.shape[0]))
    keep = eig > 1e-13 * max(float(eig.max()), 1e-300)
    head = vec[:, keep] @ ((vec[:, keep].T @ cross) / eig[keep])
    risk = max(second - 2 * head @ cross + head @ gram @ head, 0.0)
    constant = 0.0
    if offset:
        constant = target_mean - float(head @ mean)
    scale = float(np.abs(head).max())
    return SingleNeuronFit(risk=float(risk), normalized_risk=float(risk / max(second, 1e-300)),
                           target_second_moment=target_second, head=head, offset=constant,
                           head_norm_max=scale, head_scale=scale * head.size)


def exponential_lower_bound_shape(dim, *, rate: float, scale: float = 1.0) -> np.ndarray:
    """Reference shape scale·exp(rate·d) of Yehudai–Shamir's bound r·max|u_i| ≥ exp(c·d).

    THEORY §2.3: the theorem is [V] only in this qualitative form (slides: Ω(2^d), i.e.
    rate = ln 2 up to constants); c, the norms of w*, b* and the probability are [M]. ``rate``
    and ``scale`` are therefore user parameters for plotting a reference line, not constants
    from the paper. Args: dim d > 0 (array); rate > 0; scale > 0.
    """
    d = np.asarray(dim, dtype=np.float64)
    if d.size == 0 or np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(f"dim must be finite and > 0, got {dim!r}")
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be finite and > 0 (a user-chosen c in exp(c*d)), got {rate!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    return scale * np.exp(rate * d)


def relu_nonlinear_share(kink: float = 0.0) -> tuple[float, float]:
    """Shares of Var relu(G − t₀) beyond Hermite degree 1 and beyond degree 2, G ~ N(0, 1).

    With λ_k = E[relu(G − t₀) He_k(G)] (exact closed forms of :mod:`lazylab.activations`) and
    V = Var relu(G − t₀) (exact dual activation), the shares are (V − λ₁²)/V and
    (V − λ₁² − λ₂²/2)/V (THEORY.md §2.5: the part of a single-neuron target that a linear or
    quadratic predictor cannot fit). Args: kink t₀ (finite; the target's kink on the N(0, 1)
    scale of w*·x/‖w*‖). Returns: (beyond degree 1, beyond degree 2), floats in [0, 1].
    """
    if not np.isfinite(kink):
        raise ValueError(f"kink must be finite, got {kink!r}")
    relu = get_activation("relu")
    one = torch.tensor(1.0, dtype=torch.float64)
    bias = torch.tensor(-float(kink), dtype=torch.float64)
    coefficients = relu.hermite_coefficients(2, one, bias).reshape(-1)[:3]
    lam = [float(c) for c in coefficients]
    second = float(pair_expectation(relu, relu, one, one, one, bias, bias))
    variance = second - lam[0] ** 2
    beyond_one = (variance - lam[1] ** 2) / variance
    return beyond_one, (variance - lam[1] ** 2 - lam[2] ** 2 / 2) / variance
