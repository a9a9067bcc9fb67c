"""The neural-tangent second-moment operator E[σ′(w_i·z) σ′(w_j·z) z zᵀ], applied without d × d blocks.

Notation: z ~ N(0, I_d); u = w_i·z, v = w_j·z; s_i = ‖w_i‖, c_ij = w_i·w_j, ρ = c/(s_i s_j);
G_ij = [[s_i², c], [c, s_j²]] is the Gram matrix of the pair; κ_ij = E[σ′(u)σ′(v)];
M_ij = E[σ′(u)σ′(v) (u, v)ᵀ(u, v)] (2 × 2).

Splitting z into its component in span(w_i, w_j) and the independent rest gives [D]
    K_ij = E[σ′(u)σ′(v) z zᵀ] = κ_ij I + [w_i w_j] D_ij [w_i w_j]ᵀ,   D_ij = G⁻¹ (M − κ G) G⁻¹,
so (Σ_j K_ij a_j)_i needs only S = W Aᵀ (S_kj = w_k·a_j):
    (K A)_i = Σ_j κ_ij a_j + w_i Σ_j (D¹¹ S_ij + D¹² S_jj) + Σ_j (D¹² S_ij + D²² S_jj) w_j,
three N × N × d matrix products per application. On the diagonal (and for collinear pairs) the
plane is the line of w_i and K_ii = κ_ii I + (E[σ′(u)² u²]/s_i⁴ − κ_ii/s_i²) w_i w_iᵀ.
For σ′ = step the entries of N = M − κG are closed forms (held by the family record,
``Family.tangent_excess``) (no cancellation):
N¹¹ = s_i² sinθ cosθ/(2π), N¹² = s_i s_j sinθ/(2π), N²² = s_j² sinθ cosθ/(2π), θ = arccos ρ,
from E[X² 1{X>0, Y>0}] = (π − θ + sinθcosθ)/(2π) and E[XY 1{X>0,Y>0}] = J₁(θ)/(2π).
The same structure gives the head–tangent cross moment E[σ(u)σ′(v) z] = [w_i w_j] G⁻¹ m_ij with
m_ij = (E[uσ(u)σ′(v)], E[σ(u) vσ′(v)]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lazylab.activations import get_activation
from lazylab.gaussian.dual import pair_expectation

__all__ = ["TangentOperator", "tangent_operator", "cross_moment"]

_COLLINEAR = 1e-10


@dataclass(frozen=True)
class TangentOperator:
    """K for fixed first-layer weights W (N, d), as κ (N, N) and D¹¹, D¹², D²² (N, N)."""

    weights: torch.Tensor
    kappa: torch.Tensor
    d11: torch.Tensor
    d12: torch.Tensor
    d22: torch.Tensor

    def apply(self, directions: torch.Tensor) -> torch.Tensor:
        """(K A)_i = Σ_j K_ij a_j for A of shape (N, d)."""
        s = self.weights @ directions.T
        s_diag = torch.diagonal(s)[None, :]
        own = (self.d11 * s + self.d12 * s_diag).sum(dim=1)
        other = self.d12 * s + self.d22 * s_diag
        return self.kappa @ directions + own[:, None] * self.weights + other @ self.weights

    def diagonal_blocks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """K_ii = κ_ii I + δ_i w_i w_iᵀ as (κ_ii, δ_i), for block-Jacobi preconditioning."""
        return torch.diagonal(self.kappa), torch.diagonal(self.d11)


def _pair_geometry(weights):
    gram = weights @ weights.T
    scales = torch.sqrt(torch.diagonal(gram))
    outer = scales[:, None] * scales[None, :]
    rho = (gram / outer).clamp(-1.0, 1.0)
    collinear = rho.abs() > 1 - _COLLINEAR
    return gram, scales, rho, collinear


def _generic_excess(derivative, gram, scales):
    var = (scales ** 2)
    v1, v2 = var[:, None], var[None, :]
    first, second = derivative.times_power(1), derivative.times_power(2)
    kappa = pair_expectation(derivative, derivative, v1, v2, gram, None, None)
    m11 = pair_expectation(second, derivative, v1, v2, gram, None, None)
    m12 = pair_expectation(first, first, v1, v2, gram, None, None)
    m22 = pair_expectation(derivative, second, v1, v2, gram, None, None)
    return kappa, m11 - kappa * v1, m12 - kappa * gram, m22 - kappa * v2


def tangent_operator(activation, weights: torch.Tensor) -> TangentOperator:
    """Build the NT operator K for activation σ and weights W (N, d) under z ~ N(0, I).

    Units with w_i = 0 are not allowed (their tangent feature is not defined by a direction).
    """
    derivative = get_activation(activation).derivative()
    weights = torch.as_tensor(weights, dtype=torch.float64)   # float64 dot products always
    gram, scales, rho, collinear = _pair_geometry(weights)
    if torch.any(scales == 0):
        raise ValueError("weights: every unit needs a non-zero weight vector for the NT model")
    open_rho = torch.where(collinear, torch.zeros_like(rho), rho)
    closed = None if derivative.family is None else derivative.family.tangent_excess
    if closed is not None:
        kappa, n11, n12, n22 = closed(scales, open_rho)
    else:
        kappa, n11, n12, n22 = _generic_excess(derivative, torch.where(collinear, 0 * gram, gram),
                                               scales)
    rows, cols = torch.nonzero(collinear, as_tuple=True)
    kappa = kappa.index_put((rows, cols), pair_expectation(
        derivative, derivative, scales[rows] ** 2, scales[cols] ** 2, gram[rows, cols], None, None))
    det = (scales[:, None] * scales[None, :]) ** 2 - gram ** 2
    det = torch.where(collinear, torch.ones_like(det), det)
    si2, sj2 = (scales ** 2)[:, None], (scales ** 2)[None, :]
    # G⁻¹ = [[s_j², −c], [−c, s_i²]] / det
    a, b, c = sj2 / det, -gram / det, si2 / det
    d11 = a * (a * n11 + b * n12) + b * (a * n12 + b * n22)
    d12 = a * (b * n11 + c * n12) + b * (b * n12 + c * n22)
    d22 = b * (b * n11 + c * n12) + c * (b * n12 + c * n22)
    d11, d12, d22 = (torch.where(collinear, torch.zeros_like(d), d) for d in (d11, d12, d22))
    d11 = d11.index_put((rows, cols), _collinear_coefficient(derivative, scales, gram, kappa,
                                                             rows, cols))
    return TangentOperator(weights, kappa, d11, d12, d22)


def _collinear_coefficient(derivative, scales, gram, kappa, rows, cols):
    """For w_j = t·w_i: K_ij = κ I + (E[σ′(u)σ′(v)u²]/s_i⁴ − κ/s_i²) w_i w_iᵀ acting via S_ij.

    Evaluated only on the collinear pairs (rows, cols) (the diagonal, and exact duplicates).
    """
    si2, sj2 = scales[rows] ** 2, scales[cols] ** 2
    moment = pair_expectation(derivative.times_power(2), derivative, si2, sj2, gram[rows, cols],
                              None, None)
    return moment / si2 ** 2 - kappa[rows, cols] / si2


def cross_moment(activation, weights: torch.Tensor, head_weights: torch.Tensor | None = None):
    """C_ij = E[σ(w_i·z) σ′(w_j·z) z] as coefficients (α_ij, β_ij) with C_ij = α_ij w_i + β_ij w_j.

    Shapes (N, N) each. Used for the coupling between a trained head and the tangent part.
    """
    sigma = get_activation(activation)
    derivative = sigma.derivative()
    weights = torch.as_tensor(weights, dtype=torch.float64)
    gram, scales, rho, collinear = _pair_geometry(weights)
    v1, v2 = (scales ** 2)[:, None], (scales ** 2)[None, :]
    first_u = pair_expectation(sigma.times_power(1), derivative, v1, v2, gram, None, None)
    first_v = pair_expectation(sigma, derivative.times_power(1), v1, v2, gram, None, None)
    det = torch.where(collinear, torch.ones_like(gram), v1 * v2 - gram ** 2)
    alpha = (v2 * first_u - gram * first_v) / det
    beta = (-gram * first_u + v1 * first_v) / det
    # collinear: E[σ(u)σ′(v) z] = E[σ(u)σ′(v)u]/s_i² · w_i
    alpha = torch.where(collinear, first_u / v1, alpha)
    beta = torch.where(collinear, torch.zeros_like(beta), beta)
    return alpha, beta
