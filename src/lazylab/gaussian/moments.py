"""Moments of hidden units σ(w·x + b) under Gaussian inputs x ~ N(0, C), over all pairs of units.

For x ~ N(0, C) the pre-activations u_i = w_i·x are jointly Gaussian with covariance
W C Wᵀ, so every second moment of the hidden layer is a dual activation
(:func:`lazylab.gaussian.dual.pair_expectation`) of the Gram matrix entries. Inputs are torch
tensors; W has shape (N, d), b shape (N,) or None (no biases); C is (d, d) or None (identity).
"""

from __future__ import annotations

import torch

from lazylab.activations import get_activation
from lazylab.activations.families import frozen
from lazylab.gaussian.dual import is_elementwise, pair_expectation, symmetric_dual_matrix

__all__ = ["dual_matrix", "feature_mean", "feature_input_moment", "unit_scales"]

_BLOCK_ELEMENTS = 4_000_000


def _float64(*tensors):
    """Dot products are taken in float64 whatever the input dtype (float32 values are exact)."""
    return tuple(None if t is None else torch.as_tensor(t, dtype=torch.float64) for t in tensors)


def _covariance_apply(weights: torch.Tensor, covariance: torch.Tensor | None) -> torch.Tensor:
    return weights if covariance is None else weights @ covariance


def unit_scales(weights: torch.Tensor, covariance: torch.Tensor | None = None) -> torch.Tensor:
    """s_i = √(w_iᵀ C w_i), the standard deviation of w_i·x; shape (N,), float64."""
    weights, covariance = _float64(weights, covariance)
    return torch.sqrt((_covariance_apply(weights, covariance) * weights).sum(-1))


def dual_matrix(sigma, weights1, biases1, tau=None, weights2=None, biases2=None,
                covariance=None) -> torch.Tensor:
    """M_ij = E[σ(w_i·x + b_i) τ(v_j·x + c_j)] for x ~ N(0, C), shape (N1, N2), float64.

    Args:
        sigma, tau: activations (``tau`` defaults to ``sigma``).
        weights1 (N1, d), biases1 (N1,) or None; weights2/biases2 default to the first layer.
        covariance: (d, d) input covariance C, or None for the identity.
    Every dot product is taken in float64 whatever the input dtype (float32 weights are taken
    as exact). Pairs that need quadrature nodes are computed in row blocks so that temporaries stay near
    4·10⁶ elements per block; elementwise closed forms (polynomials, unbiased ReLU/step/erf)
    in one pass, so per-unit Hermite coefficients are computed once. The symmetric case
    (one activation, one set of units) with no gradient to track is
    :func:`lazylab.gaussian.dual.symmetric_dual_matrix`: half the work, exactly symmetric, and
    ρ_ii = 1 exactly for the closed forms (the general path's 1 − ε put step and sign 5·10⁻⁹
    off on the diagonal, through arccos' √(1 − ρ) cusp at 1).
    """
    if (tau is None or tau is sigma) and weights2 is None and frozen(weights1, biases1,
                                                                     covariance):
        return symmetric_dual_matrix(sigma, weights1, biases1, covariance)
    tau = sigma if tau is None else tau
    if weights2 is None:
        weights2, biases2 = weights1, biases1
    weights1, weights2, biases1, biases2, covariance = _float64(weights1, weights2, biases1,
                                                                biases2, covariance)
    left = _covariance_apply(weights1, covariance)
    var1 = (left * weights1).sum(-1)
    var2 = var1 if weights2 is weights1 else (_covariance_apply(weights2, covariance)
                                             * weights2).sum(-1)
    n1, n2 = weights1.shape[0], weights2.shape[0]
    unbiased = biases1 is None and biases2 is None
    if is_elementwise(sigma, tau, unbiased):
        block = max(n1, 1)
    else:
        block = max(1, _BLOCK_ELEMENTS // (64 * max(n2, 1)))
    rows = []
    for start in range(0, n1, block):
        stop = min(start + block, n1)
        cov = left[start:stop] @ weights2.T
        b1 = None if biases1 is None else biases1[start:stop, None]
        b2 = None if biases2 is None else biases2[None, :]
        rows.append(pair_expectation(sigma, tau, var1[start:stop, None], var2[None, :], cov,
                                     b1, b2))
    if len(rows) == 1:
        return rows[0]
    return torch.cat(rows) if rows else torch.zeros((0, n2), dtype=torch.float64)


def feature_mean(sigma, weights, biases=None, covariance=None) -> torch.Tensor:
    """E[σ(w_i·x + b_i)] = λ_0(σ; s_i, b_i), shape (N,)."""
    scales = unit_scales(weights, covariance)
    bias = torch.zeros_like(scales) if biases is None else biases
    return get_activation(sigma).hermite_coefficients(0, scales, bias)[..., 0]


def feature_input_moment(sigma, weights, biases=None, covariance=None) -> torch.Tensor:
    """E[σ(w_i·x + b_i) x] = C w_i λ_1(σ; s_i, b_i) / s_i (Stein's lemma), shape (N, d)."""
    scales = unit_scales(weights, covariance)
    bias = torch.zeros_like(scales) if biases is None else biases
    lam1 = get_activation(sigma).hermite_coefficients(1, scales, bias)[..., 1]
    weights, covariance = _float64(weights, covariance)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    factor = torch.where(scales > 0, lam1 / safe, torch.zeros_like(lam1))
    return factor[:, None] * _covariance_apply(weights, covariance)
