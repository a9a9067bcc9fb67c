"""Exact population risk of the quadratic-activation network as a matrix polynomial.

Notation: f(x) = Σ_i a_i (w_i·x)² + c = xᵀMx + c with M = Wᵀ diag(a) W (d, d), symmetric;
W (N, d) = ``weights``, a (N,) = ``head``, c = ``offset``. B, b0: the quadratic target
y = b0 + xᵀBx + noise·ξ; Σ, Δ, C± = Σ ∓ Δ: the mixture x | y = ±1 ~ N(0, C±).

Derivation [D; Ghorbani et al. 2019, proof of Theorem 3 for the first form]. For x ~ N(0, C)
Isserlis' theorem gives E[x_i x_j x_k x_l] = C_ij C_kl + C_ik C_jl + C_il C_jk, hence

    E xᵀMx = Tr(MC),    Var xᵀMx = 2 Tr((MC)²),    E[xᵀMx · x xᵀ] = Tr(MC) C + 2 CMC.

* Quadratic target, x ~ N(0, I): with E y = b0 + Tr B, E y² = (E y)² + 2‖B‖²_F + noise² and
  E[y f] = c E y + E[(xᵀBx + b0) xᵀMx] = c E y + 2 Tr(MB) + Tr M Tr B + b0 Tr M,
  E f² = 2‖M‖²_F + (Tr M + c)². Collecting the squares,

      R = E(y − f)² = 2‖M − B‖²_F + (Tr M + c − b0 − Tr B)² + noise².

  (The centered task b0 = −Tr B gives Ghorbani et al.'s 2‖M − B‖²_F + (Tr M + c)².)
* Mixture, y = ±1 equiprobable (plus independent noise): given the class, y is fixed and
  f = xᵀMx + c with x ~ N(0, C_y), so E[(y − f)² | y] = (y − c − Tr(MC_y))² + 2 Tr((MC_y)²):

      R = noise² + ½ Σ_{y = ±1} [(y − c − Tr(MC_y))² + 2 Tr((MC_y)²)].

Cost O(N d²) at most. When N < d no d × d matrix is formed: with G = W C Wᵀ (N, N),
Tr(MC) = Σ a_i G_ii and Tr((MC)²) = Tr(diag(a) G diag(a) G) = aᵀ(G∘G)a, and
‖M − B‖²_F = Tr M² − 2 Σ a_i w_iᵀBw_i + ‖B‖²_F: O(N² d) plus O(N d) for diagonal B and C
(the paper's presets), O(N d²) for full ones. When N ≥ d, M is formed (O(N d²)) and the traces
cost O(d²) for diagonal C, O(d³) ≤ O(N d²) otherwise; there the quadratic task's ‖M − B‖²_F
is summed directly, which keeps full relative accuracy near the optimum R → 0 (reachable only
for N ≥ rank B). Everything is torch float64 and differentiable in W, a and c.
"""

from __future__ import annotations

import torch

from lazylab.tasks.base import is_diagonal
from lazylab.tasks.mixture import GaussianMixture
from lazylab.tasks.quadratic import Quadratic

__all__ = ["quadratic_network_risk", "quadratic_matrix_risk", "QUADRATIC_RISKS", "MATRIX_RISKS"]


def _times(weights: torch.Tensor, matrix: torch.Tensor | None) -> torch.Tensor:
    """Rows w_i ↦ C w_i, shape (N, d): O(N d) for a diagonal C, O(N d²) otherwise."""
    if matrix is None:
        return weights
    return weights * torch.diagonal(matrix) if is_diagonal(matrix) else weights @ matrix


def _gram_traces(weights, head, covariance) -> tuple[torch.Tensor, torch.Tensor]:
    """(Tr(MC), Tr((MC)²)) through G = W C Wᵀ (N, N): Σ a_i G_ii and aᵀ(G∘G)a (N < d)."""
    gram = _times(weights, covariance) @ weights.T
    return head @ torch.diagonal(gram), head @ ((gram * gram) @ head)


def _matrix_traces(m, covariance) -> tuple[torch.Tensor, torch.Tensor]:
    """(Tr(MC), Tr((MC)²)) from M (d, d) (N ≥ d): O(d²) for a diagonal C, else O(d³)."""
    if covariance is None:
        return torch.trace(m), torch.sum(m * m)
    if is_diagonal(covariance):
        c = torch.diagonal(covariance)
        return torch.sum(torch.diagonal(m) * c), torch.sum(m * m * (c[:, None] * c[None, :]))
    product = m @ covariance
    return torch.trace(product), torch.sum(product * product.T)


class _QuadraticForm(torch.autograd.Function):
    """M = Wᵀ diag(a) W with a hand-written backward: for G = ∂R/∂M and S = G + Gᵀ,
    ∂R/∂W = diag(a) W S and ∂R/∂a_i = ½ w_iᵀ S w_i — one N × d × d product (W S) where autograd
    of (W∘a)ᵀW takes two; with the forward product, 2 instead of 3 per step of population
    descent at N ≥ d (the matrix route below). Differentiable twice (plain torch ops)."""

    @staticmethod
    def forward(ctx, weights, head):
        ctx.save_for_backward(weights, head)
        return (weights * head[:, None]).T @ weights

    @staticmethod
    def backward(ctx, grad):
        weights, head = ctx.saved_tensors
        product = weights @ (grad + grad.T)
        grad_weights = head[:, None] * product if ctx.needs_input_grad[0] else None
        grad_head = 0.5 * (weights * product).sum(1) if ctx.needs_input_grad[1] else None
        return grad_weights, grad_head


def _m(weights, head) -> torch.Tensor:
    return _QuadraticForm.apply(weights, head)


def _quadratic_matrix_risk(task: Quadratic, m, offset) -> torch.Tensor:
    """2‖M − B‖²_F + (Tr M + c − b0 − Tr B)² + noise², from M (d, d): O(d²)."""
    gap = m - task.matrix
    mean_gap = torch.trace(m) + offset - task.target_mean()
    return 2 * torch.sum(gap * gap) + mean_gap ** 2 + task.noise ** 2


def _mixture_matrix_risk(task: GaussianMixture, m, offset) -> torch.Tensor:
    """noise² + ½ Σ_{y=±1} [(y − c − Tr(MC_y))² + 2 Tr((MC_y)²)], from M (d, d)."""
    total = m.new_zeros(()) + task.noise ** 2
    for label, (probability, covariance) in zip((1.0, -1.0), task.components):
        trace, square = _matrix_traces(m, covariance)
        total = total + probability * ((label - offset - trace) ** 2 + 2 * square)
    return total


def _quadratic_risk(task: Quadratic, weights, head, offset) -> torch.Tensor:
    """2‖M − B‖²_F + (Tr M + c − b0 − Tr B)² + noise².

    N < d: ‖M − B‖²_F = Tr M² − 2 Σ a_i w_iᵀBw_i + ‖B‖²_F with Tr M² = aᵀ(G∘G)a, G = WWᵀ
    (O(N² d + N d²), no d × d matrix); N ≥ d: M − B formed directly (O(N d²)).
    """
    if weights.shape[0] >= weights.shape[1]:
        return _quadratic_matrix_risk(task, _m(weights, head), offset)
    trace, square = _gram_traces(weights, head, None)
    cross = head @ torch.sum(_times(weights, task.matrix) * weights, dim=1)
    distance = square - 2 * cross + torch.sum(task.matrix * task.matrix)
    mean_gap = trace + offset - task.target_mean()
    return 2 * distance + mean_gap ** 2 + task.noise ** 2


def _mixture_risk(task: GaussianMixture, weights, head, offset) -> torch.Tensor:
    """noise² + ½ Σ_{y=±1} [(y − c − Tr(MC_y))² + 2 Tr((MC_y)²)]."""
    if weights.shape[0] >= weights.shape[1]:
        return _mixture_matrix_risk(task, _m(weights, head), offset)
    total = weights.new_zeros(()) + task.noise ** 2
    for label, (probability, covariance) in zip((1.0, -1.0), task.components):
        trace, square = _gram_traces(weights, head, covariance)
        total = total + probability * ((label - offset - trace) ** 2 + 2 * square)
    return total


QUADRATIC_RISKS = {Quadratic: _quadratic_risk, GaussianMixture: _mixture_risk}
"""Task type → closed-form risk of f(x) = xᵀWᵀdiag(a)Wx + c (see the module docstring)."""

MATRIX_RISKS = {Quadratic: _quadratic_matrix_risk, GaussianMixture: _mixture_matrix_risk}
"""Task type → the same risk as a function of M = Wᵀdiag(a)W (d, d) and c."""


def _check(task, weights, head, offset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if type(task) not in QUADRATIC_RISKS:
        raise TypeError(f"quadratic_network_risk supports tasks "
                        f"{', '.join(k.__name__ for k in QUADRATIC_RISKS)}, "
                        f"got {type(task).__name__}")
    for name, value in (("weights", weights), ("head", head)):
        if not isinstance(value, torch.Tensor) or value.dtype != torch.float64:
            raise TypeError(f"{name} must be a float64 torch tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
    if weights.ndim != 2 or weights.shape[1] != task.dim:
        raise ValueError(f"weights must have shape (width, dim={task.dim}), "
                         f"got {tuple(weights.shape)}")
    if head.shape != (weights.shape[0],):
        raise ValueError(f"head must have shape ({weights.shape[0]},), got {tuple(head.shape)}")
    offset = torch.as_tensor(offset, dtype=torch.float64)
    if offset.ndim != 0:
        raise ValueError(f"offset must be a scalar, got shape {tuple(offset.shape)}")
    return weights, head, offset


def quadratic_network_risk(task, weights: torch.Tensor, head: torch.Tensor,
                           offset=0.0) -> torch.Tensor:
    """Exact E[(y − f(x))²] of f(x) = Σ_i a_i (w_i·x)² + c, a matrix polynomial in M = WᵀdiagaW.

    Equal to ``population_risk(TwoLayer("quadratic", weights, head, offset=offset), task)``
    (up to round-off) at O(N d²) cost instead of the engine's N × N dual matrices.

    Args:
        task: a :class:`~lazylab.tasks.quadratic.Quadratic` (R = 2‖M − B‖²_F +
            (Tr M + c − b0 − Tr B)² + noise²) or :class:`~lazylab.tasks.mixture.GaussianMixture`
            (R = noise² + ½ Σ_± [(±1 − c − Tr(MC±))² + 2 Tr((MC±)²)]); derivation in the module
            docstring.
        weights: W, (N, d) float64. head: a, (N,) float64. offset: c, a float or 0-d tensor.
            All may require gradients.
    Returns:
        0-d float64 tensor (label noise included).
    Raises:
        TypeError: unsupported task or non-float64 tensors. ValueError: shapes.
    """
    weights, head, offset = _check(task, weights, head, offset)
    return QUADRATIC_RISKS[type(task)](task, weights, head, offset)


def quadratic_matrix_risk(task, matrix: torch.Tensor, offset=0.0) -> torch.Tensor:
    """The risk of :func:`quadratic_network_risk` as a function of M = Wᵀdiag(a)W and c.

    Args:
        task: a :class:`~lazylab.tasks.quadratic.Quadratic` or
            :class:`~lazylab.tasks.mixture.GaussianMixture`.
        matrix: M, (d, d) float64, symmetric (it may require gradients; the formulas are not
            symmetrized, so ∂R/∂M is the gradient of the formula, e.g. 4(M − B) + 2eI for the
            quadratic task at a symmetric M). offset: c, a float or 0-d tensor.
    Returns:
        0-d float64 tensor, O(d²) for diagonal B and C±, O(d³) otherwise.
    Raises:
        TypeError: unsupported task. ValueError: M not of shape (d, d).
    """
    if type(task) not in MATRIX_RISKS:
        raise TypeError(f"quadratic_matrix_risk supports tasks "
                        f"{', '.join(k.__name__ for k in MATRIX_RISKS)}, got {type(task).__name__}")
    if not isinstance(matrix, torch.Tensor) or matrix.shape != (task.dim, task.dim):
        raise ValueError(f"matrix must be a tensor of shape ({task.dim}, {task.dim}), got "
                         f"{tuple(getattr(matrix, 'shape', ())) or type(matrix).__name__}")
    return MATRIX_RISKS[type(task)](task, matrix, offset)
