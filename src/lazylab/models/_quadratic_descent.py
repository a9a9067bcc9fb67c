"""Population descent of Theorem 3's model in d × d coordinates: O(d³) per step, not O(N d²).

Model (notation of :mod:`lazylab.models.network`): f(x) = c + Σ_i a_i (w_i·x)² with w_i = s_in u_i
and a constant head a_i = α (σ = u², no biases, ``train="first"``: U (N, d) and c trained, the
head fixed, e.g. ``head_init="ones"``). Then f(x) = xᵀMx + c with M = α s_in² UᵀU, and the
closed-form risk R(M, c) of :mod:`lazylab.risk.quadratic` depends on U only through M.

Gradient [D]. dM = κ(dUᵀU + UᵀdU) with κ = α s_in², so dR = 2κ Tr(∂R/∂M · UᵀdU) and

    ∇_U R = U S,   S = 2κ ∂R/∂M   (d × d, symmetric),

with, for the quadratic task (e = Tr M + c − b0 − Tr B the mean gap),

    ∂R/∂M = 4(M − B) + 2e I,   ∂R/∂c = 2e,

and for the mixture (r± = ±1 − c − Tr(MC±), probabilities p± = ½)

    ∂R/∂M = Σ_± p± [4 C±MC± − 2 r± C±],   ∂R/∂c = −2 Σ_± p± r±.

Consequence. Every step of gradient descent, with or without heavy-ball momentum (SGD with
torch.optim's buffer b ← μb + g, any schedule, the group multiplier g_U), maps U to a right
multiple of itself: U_t = U₀A_t, and the buffer is U₀D_t with D_{t+1} = μD_t + A_{t+1}S_{t+1},
A_{t+1} = A_t − η_t g_U D_{t+1}. The whole trajectory lives in the column space of U₀. With the
thin QR factorization U₀ = Q₀L (Q₀ (N, d) with orthonormal columns; N > d), write U = Q₀P with
P = LA (d × d). Since Q₀ᵀQ₀ = I:

* M = κ PᵀP: the risk is that of a width-d network with weights s_in P and head α·1_d;
* ∇_P R(Q₀P) = Q₀ᵀ∇_U R = PS, and the descent in U is Q₀ times the same descent in P (the map
  P ↦ Q₀P is linear and isometric, so it commutes with every SGD/momentum update);
* ‖∇_U R‖_F = ‖Q₀PS‖_F = ‖PS‖_F = √Tr(S M_A S) with M_A = PᵀP = A_tᵀ(U₀ᵀU₀)A_t, so the
  relative-gradient criterion, the divergence tests and the backtracking (restore the best P,
  halve η, restart the buffers) see the same numbers.

So :func:`~lazylab.solvers.training.population_descent` run on (P, c) with that width-d risk is
the same run as on (U, c), up to round-off, at O(d³) per step instead of O(N d²), plus one QR and
one product U = Q₀P, O(N d²) each, at the start and the end. A step of the direct descent costs
three N × d × d products (M = Wᵀdiag(a)W and its two backward products); :func:`gram_risk` takes
two d × d × d products (M = κPᵀP and ∇_P R = PS): about 1.5 N/d times fewer flops.

Scope (:func:`applies`): σ = u², no biases, no laziness, ``train="first"``, a constant head,
optimizer "sgd" (momentum allowed; Adam is coordinate-wise, not invariant under Q₀), the closed-
form tasks (quadratic, mixture), N > d, population training. The learning monitor
(``track_every``) reads W = s_in Q₀P when it observes. Everything else uses the direct descent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lazylab.risk.quadratic import QUADRATIC_RISKS, quadratic_matrix_risk

__all__ = ["ColumnSpace", "applies", "column_space", "gram_risk"]


def applies(net, state, groups: list[dict], task) -> bool:
    """Whether the d × d descent reproduces ``net``'s population descent (module docstring)."""
    raw = state.raw
    return (net.activation == "quadratic" and raw.b is None and net.laziness is None
            and net.train == "first" and net.optimizer == "sgd"
            and type(task) in QUADRATIC_RISKS and raw.u.shape[0] > raw.u.shape[1]
            and bool(groups) and len(groups[0]["params"]) == 1
            and groups[0]["params"][0] is raw.u
            and bool(torch.all(raw.v == raw.v[0])))


@dataclass(frozen=True)
class ColumnSpace:
    """U = Q₀P during the descent: ``basis`` Q₀ (N, d) with orthonormal columns, ``coordinates``
    P (d, d) (trained in place), ``head_value`` the constant effective head α = s_out·v_i."""

    basis: torch.Tensor
    coordinates: torch.Tensor
    head_value: float

    def groups(self, groups: list[dict]) -> list[dict]:
        """The optimizer groups with U replaced by P (same multipliers; c's group unchanged)."""
        return [dict(groups[0], params=[self.coordinates]), *groups[1:]]

    def risk(self, state, task) -> Callable[[], torch.Tensor]:
        """() ↦ :func:`gram_risk` at the current (P, c)."""
        kappa = self.head_value * state.scales.input ** 2
        offset = state.raw.c

        def evaluate() -> torch.Tensor:
            return gram_risk(task, self.coordinates, kappa,
                             self.coordinates.new_zeros(()) if offset is None else offset)

        return evaluate

    @torch.no_grad()
    def expand(self, weights: torch.Tensor) -> None:
        """U ← Q₀P, written into ``weights`` (N, d) in place."""
        weights.copy_(self.basis @ self.coordinates.detach())


def column_space(state) -> ColumnSpace:
    """Q₀, P₀ = L from the thin QR factorization of the raw initial weights U₀ (N, d)."""
    with torch.no_grad():
        basis, triangle = torch.linalg.qr(state.raw.u.detach(), mode="reduced")
    head_value = state.scales.output * float(state.raw.v[0])
    return ColumnSpace(basis, triangle.clone().requires_grad_(True), head_value)


class _GramRisk(torch.autograd.Function):
    """R(κPᵀP, c) with its gradients formed in the forward pass (see :func:`gram_risk`)."""

    @staticmethod
    def forward(ctx, coordinates, offset, task, kappa):
        p = coordinates.detach()
        with torch.enable_grad():
            m = (kappa * (p.T @ p)).requires_grad_(True)
            c = offset.detach().requires_grad_(True)
            risk = quadratic_matrix_risk(task, m, c)
            derivative, offset_derivative = torch.autograd.grad(risk, (m, c))
        ctx.save_for_backward(kappa * (p @ (derivative + derivative.T)), offset_derivative)
        return risk.detach()

    @staticmethod
    def backward(ctx, upstream):
        coordinates_gradient, offset_gradient = ctx.saved_tensors
        offset_gradient = upstream * offset_gradient if ctx.needs_input_grad[1] else None
        return upstream * coordinates_gradient, offset_gradient, None, None


def gram_risk(task, coordinates: torch.Tensor, kappa: float,
              offset: torch.Tensor) -> torch.Tensor:
    """R(M, c) at M = κPᵀP, differentiable in P and c, at two d × d products per evaluation.

    The forward pass forms M (one product), the matrix gradient G = ∂R/∂M of
    :func:`lazylab.risk.quadratic.quadratic_matrix_risk` by autograd on M (O(d²) for diagonal
    B, C±) and ∇_P R = κP(G + Gᵀ) (one product; = PS with S = 2κG at a symmetric M); the
    backward pass only returns them. Autograd through the width-d network instead takes three
    products and its bookkeeping, about twice the time at d = 450.

    Args:
        task: a closed-form task. coordinates: P (d, d) float64. kappa: κ = α s_in².
        offset: c, a 0-d float64 tensor (may require gradients).
    Returns:
        0-d float64 tensor R.
    """
    return _GramRisk.apply(coordinates, offset, task, kappa)
