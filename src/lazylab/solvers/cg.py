"""Matrix-free preconditioned conjugate gradient on tensors of any shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["CGResult", "conjugate_gradient"]

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CGResult:
    """Outcome of :func:`conjugate_gradient`.

    Attributes:
        solution: x with A x ≈ b, same shape as b.
        iterations: matrix-vector products used.
        residual: final relative residual ‖b − A x‖ / ‖b‖ (recomputed, not the recursive one).
        converged: whether the recursive residual reached ``tol`` and the recomputed one is
            within 10·tol of it (round-off makes the two drift apart), with no breakdown.
        breakdown: the iteration met p·Ap ≤ 0 (A not positive definite along p) and stopped.
    """

    solution: torch.Tensor
    iterations: int
    residual: float
    converged: bool
    breakdown: bool = False


def conjugate_gradient(apply: Operator, rhs: torch.Tensor, *, preconditioner: Operator | None = None,
                       tol: float = 1e-10, max_iter: int | None = None,
                       initial: torch.Tensor | None = None,
                       callback: Callable[[int, float], None] | None = None) -> CGResult:
    """Solve A x = b for symmetric positive (semi-)definite A given only x ↦ A x.

    Inner products are over all entries, so x may be a matrix (e.g. the N × d NT unknowns).
    Standard PCG (Hestenes–Stiefel with preconditioner M ≈ A⁻¹).

    Args:
        apply: x ↦ A x, shape-preserving.
        rhs: b.
        preconditioner: r ↦ M r (defaults to identity).
        tol: stop when the recursive relative residual ‖r‖/‖b‖ falls below ``tol``.
        max_iter: defaults to the number of unknowns (exact arithmetic would finish by then).
        initial: starting point (zeros by default).
        callback: called as ``callback(iteration, relative_residual)`` after each step.
    """
    precondition = preconditioner or (lambda r: r)
    max_iter = rhs.numel() if max_iter is None else int(max_iter)
    norm_b = float(torch.linalg.vector_norm(rhs))
    x = torch.zeros_like(rhs) if initial is None else initial.clone()
    if norm_b == 0.0:
        return CGResult(torch.zeros_like(rhs), 0, 0.0, True)
    r = rhs - apply(x) if initial is not None else rhs.clone()
    z = precondition(r)
    p = z.clone()
    rz = torch.sum(r * z)
    iterations = 0
    relative = float(torch.linalg.vector_norm(r)) / norm_b
    breakdown = False
    while relative > tol and iterations < max_iter:
        ap = apply(p)
        curvature = torch.sum(p * ap)
        if curvature <= 0:
            breakdown = True
            break
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * ap
        iterations += 1
        relative = float(torch.linalg.vector_norm(r)) / norm_b
        if callback is not None:
            callback(iterations, relative)
        z = precondition(r)
        rz_next = torch.sum(r * z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    true_residual = float(torch.linalg.vector_norm(rhs - apply(x))) / norm_b
    converged = relative <= tol and true_residual <= 10 * tol and not breakdown
    return CGResult(x, iterations, true_residual, converged, breakdown)
