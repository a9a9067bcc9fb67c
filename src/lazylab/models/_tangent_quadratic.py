"""The n = ∞ NT fit of a quadratic activation with a full-rank first layer, by its function class.

σ(u) = c₀ + c₂u² has σ′(u) = 2c₂u, so the NT model is f(x) = c + 2c₂ Σ_i (w_i·x)(a_i·x) =
c + xᵀSx with S = 2c₂·sym(WᵀA) [D]. When W (N × d) has rank d, WᵀA ranges over every d × d
matrix, so without ridge and head the n = ∞ optimum over A is the best quadratic form,

    min_{S symmetric, c} E(y − c − xᵀSx)²,

which does not depend on W (Ghorbani et al.'s NT risk is flat in N ≥ d for this reason).
For inputs that are a mixture of centred Gaussians with diagonal covariances C_k = diag(γ_k)
(weights p_k; the identity included), Isserlis' theorem gives [D]

    Cov(xᵀSx, xᵀTx) = ⟨T, L(S)⟩,  L(S) = D∘S + diag((ΓPΓᵀ − γ̄γ̄ᵀ) s),  D_jl = 2 Σ_k p_k γ_kj γ_kl,

with s = diag S, Γ = [γ_1 … γ_K] (d × K), P = diag(p), γ̄ = Γp, and Cov(y, xᵀTx) = ⟨T, R⟩ with
R = E[y xxᵀ] − E[y]·C̄, C̄ = Σ_k p_k C_k (E[y xxᵀ] from the task's tangent moment at W = I).
L(S) = R is solved entrywise off the diagonal and as one d × d system on it: O(d³) in all,
against conjugate gradient on N·d unknowns whose operator and preconditioner cost O(N²d) and
O(N³) (measured: 20–99 s per fit at N = 3066–4500, d = 450, on ghorbani-fig2's mixture).

A realizes S through the thin SVD W = UΣVᵀ: A = U X Vᵀ with X symmetric and
X_ij = 2T_ij/(σ_i + σ_j), T = Vᵀ S V/(2c₂), so that WᵀA = VΣXVᵀ has symmetric part V T Vᵀ [D].
A lies in the column space of W (orthogonal to every A₀ with WᵀA₀ = 0, which changes nothing),
and its round-off grows like cond(W), where the minimum-norm realization A = WM (M solving the
Lyapunov equation GM + MG = S/c₂, G = WᵀW) loses cond(WᵀW) = cond(W)²: at N = d = 450 that
realization missed the 10⁻¹⁰ certificate by 10× on one draw in three. (Preconditioned CG from
zero finds the same predictor with yet another A, and at N = d it too can stall above 10⁻¹⁰.) The reported risk is the exact
Var y − 2⟨S, R⟩ + ⟨S, L(S)⟩ of the realized S = 2c₂·sym(WᵀA), and the certificate is the relative
residual ‖L(S) − R‖_F / ‖R‖_F of the normal equation (``cg_iterations`` = 0).
Tested against the conjugate-gradient fit and the exact engine (``tests/models/test_tangent_quadratic.py``).
"""

from __future__ import annotations

import torch

from lazylab.predictors import NeuralTangentModel
from lazylab.tasks.base import is_diagonal

__all__ = ["quadratic_tangent", "MAX_CONDITION"]

MAX_CONDITION = 1e6
"""Largest condition number of W for which the first layer counts as full rank here (the
realization's round-off is ≈ cond(W)·10⁻¹⁶ relative)."""


def _quadratic_scale(sigma) -> float | None:
    """c₂ of σ(u) = c₀ + c₂u² (no linear term), else None."""
    coefficients = getattr(sigma, "coefficients", None)
    if coefficients is None:
        return None
    coefficients = list(coefficients)
    while len(coefficients) > 3 and coefficients[-1] == 0.0:
        coefficients.pop()
    if len(coefficients) != 3 or coefficients[1] != 0.0 or coefficients[2] == 0.0:
        return None
    return float(coefficients[2])


def _diagonal_components(task, dim: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(p (K,), Γ (d, K)) of a mixture of centred Gaussians with diagonal covariances, or None."""
    weights, diagonals = [], []
    for probability, covariance in task.components:
        if covariance is None:
            diagonal = torch.ones(dim, dtype=torch.float64)
        else:
            covariance = torch.as_tensor(covariance, dtype=torch.float64)
            if not is_diagonal(covariance):
                return None
            diagonal = torch.diagonal(covariance)
        weights.append(float(probability))
        diagonals.append(diagonal)
    return torch.tensor(weights, dtype=torch.float64), torch.stack(diagonals, dim=1)


class _Covariance:
    """S ↦ L(S) and its inverse for diagonal-covariance mixtures (module docstring)."""

    def __init__(self, probabilities: torch.Tensor, gammas: torch.Tensor):
        self.mean = gammas @ probabilities                                   # γ̄ = diag C̄
        self.entrywise = 2 * (gammas * probabilities) @ gammas.T             # D
        self.low_rank = (gammas * probabilities) @ gammas.T - torch.outer(self.mean, self.mean)

    def apply(self, s: torch.Tensor) -> torch.Tensor:
        return self.entrywise * s + torch.diag(self.low_rank @ torch.diagonal(s))

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        s = rhs / self.entrywise
        block = torch.diag(torch.diagonal(self.entrywise)) + self.low_rank
        s.diagonal().copy_(torch.linalg.solve(block, torch.diagonal(rhs)))
        return s


def quadratic_tangent(task, sigma, weights: torch.Tensor, *, tol: float
                      ) -> NeuralTangentModel | None:
    """The n = ∞ NT fit (ridge 0, no head) by the best quadratic form (module docstring), or
    None when it does not apply: σ not c₀ + c₂u², inputs not a diagonal-covariance Gaussian
    mixture, or W of rank < d (N < d) or worse conditioned than :data:`MAX_CONDITION`.

    Args:
        task: a task with moments (``components``, ``tangent_moment``, target moments).
        sigma: the :class:`~lazylab.activations.Activation` σ. weights: W, (N, d) float64.
        tol: the certificate's tolerance on ‖L(S) − R‖_F / ‖R‖_F.
    Returns:
        :class:`NeuralTangentModel` with directions A (N, d), offset c and the diagnostics of
        :func:`lazylab.models.optimal_tangent` (``cg_iterations`` = 0), or None.
    """
    scale = _quadratic_scale(sigma)
    width, dim = weights.shape
    if scale is None or width < dim:
        return None
    components = _diagonal_components(task, dim)
    if components is None:
        return None
    left, values, right = torch.linalg.svd(weights, full_matrices=False)     # W = UΣVᵀ
    if not values[-1] > values[0] / MAX_CONDITION:
        return None
    covariance = _Covariance(*components)
    target_mean = float(task.target_mean())
    eye = torch.eye(dim, dtype=torch.float64)
    second = task.tangent_moment(sigma, eye) / (2 * scale)                  # E[y xxᵀ]
    rhs = 0.5 * (second + second.T) - target_mean * torch.diag(covariance.mean)
    quadratic = covariance.solve(rhs)
    vectors = right.T                                                        # V
    rotated = vectors.T @ quadratic @ vectors / scale                        # 2T = VᵀSV/c₂
    directions = left @ (rotated / (values[:, None] + values[None, :])) @ vectors.T
    product = weights.T @ directions
    realized = scale * (product + product.T)                                # 2c₂·sym(WᵀA)
    explained = covariance.apply(realized)
    variance = float(task.target_second_moment()) - target_mean ** 2
    risk = variance - 2 * float(torch.sum(realized * rhs)) + float(torch.sum(realized * explained))
    norm = float(torch.linalg.matrix_norm(rhs))
    residual = float(torch.linalg.matrix_norm(explained - rhs)) / norm if norm > 0 else 0.0
    offset = target_mean - float(torch.sum(torch.diagonal(realized) * covariance.mean))
    return NeuralTangentModel(sigma, weights, directions, offset=offset, diagnostics={
        "population_risk": risk, "cg_iterations": 0, "cg_residual": residual,
        "cg_converged": float(residual <= tol)})
