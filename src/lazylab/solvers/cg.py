"""Matrix-free preconditioned conjugate gradient on tensors of any shape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["CGResult", "conjugate_gradient", "REPLACEMENTS", "STOP_REASONS"]

Operator = Callable[[torch.Tensor], torch.Tensor]


REPLACEMENTS = 3
"""Restarts from the recomputed residual b − Ax allowed when the recursive residual has met the
tolerance but the recomputed one has not (round-off makes the two drift apart)."""

STOP_REASONS = ("tolerance", "budget", "breakdown", "stagnated", "diverged")


@dataclass(frozen=True)
class CGResult:
    """Outcome of :func:`conjugate_gradient`, with its convergence certificate.

    Attributes:
        solution: x with A x ≈ b, same shape as b (finite: a non-finite iterate is not kept).
        iterations: matrix-vector products in the iteration (also ``steps``).
        residual: final relative residual ‖b − A x‖ / ‖b‖, recomputed (also ``criterion``;
            ∞, never NaN, when the operator returns non-finite values).
        converged: ``residual`` ≤ ``tolerance``.
        breakdown: the iteration met p·Ap ≤ 0 (A not positive definite along p) and stopped.
        tolerance: the tolerance on the relative residual.
        stop_reason: "tolerance"; "budget" (``max_iter`` reached); "breakdown"; "stagnated"
            (the recursive residual met the tolerance ``REPLACEMENTS`` + 1 times but the
            recomputed one stayed above it: the round-off floor); "diverged" (non-finite
            residual, e.g. from an operator returning NaN).
    """

    solution: torch.Tensor
    iterations: int
    residual: float
    converged: bool
    breakdown: bool = False
    tolerance: float = 0.0
    stop_reason: str = "tolerance"

    @property
    def steps(self) -> int:
        return self.iterations

    @property
    def criterion(self) -> float:
        return self.residual


def _relative(vector: torch.Tensor, norm_b: float) -> float:
    return float(torch.linalg.vector_norm(vector)) / norm_b


def _iterate(apply, precondition, x, r, norm_b, tol, budget, callback, start):
    """CG from (x, r = b − Ax) until the recursive residual ≤ tol; returns (x, its, reason)."""
    z = precondition(r)
    p = z.clone()
    rz = torch.sum(r * z)
    iterations, relative = start, _relative(r, norm_b)
    while relative > tol:
        if iterations >= budget:
            return x, iterations, "budget"
        ap = apply(p)
        curvature = torch.sum(p * ap)
        if not curvature > 0:
            return x, iterations, "breakdown" if curvature <= 0 else "diverged"
        alpha = rz / curvature
        x_next, r = x + alpha * p, r - alpha * ap
        relative = _relative(r, norm_b)
        if not math.isfinite(relative) or not bool(torch.isfinite(x_next).all()):
            return x, iterations, "diverged"
        x, iterations = x_next, iterations + 1
        if callback is not None:
            callback(iterations, relative)
        z = precondition(r)
        rz_next = torch.sum(r * z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    return x, iterations, "tolerance"


def conjugate_gradient(apply: Operator, rhs: torch.Tensor, *, preconditioner: Operator | None = None,
                       tol: float = 1e-10, max_iter: int | None = None,
                       initial: torch.Tensor | None = None,
                       callback: Callable[[int, float], None] | None = None) -> CGResult:
    """Solve A x = b for symmetric positive (semi-)definite A given only x ↦ A x.

    Inner products are over all entries, so x may be a matrix (e.g. the N × d NT unknowns).
    Standard PCG (Hestenes–Stiefel with preconditioner M ≈ A⁻¹) with residual replacement:
    when the recursive residual meets ``tol``, the residual is recomputed as b − Ax and, if it
    is still above ``tol``, the iteration restarts from it (at most ``REPLACEMENTS`` times).

    Args:
        apply: x ↦ A x, shape-preserving.
        rhs: b.
        preconditioner: r ↦ M r (defaults to identity).
        tol: the certificate: stop when the relative residual ‖b − Ax‖/‖b‖ ≤ ``tol``.
        max_iter: the budget of iterations; defaults to the number of unknowns (exact
            arithmetic would finish by then).
        initial: starting point (zeros by default).
        callback: called as ``callback(iteration, relative_residual)`` after each step.
    """
    precondition = preconditioner or (lambda r: r)
    max_iter = rhs.numel() if max_iter is None else int(max_iter)
    norm_b = float(torch.linalg.vector_norm(rhs))
    if norm_b == 0.0:
        return CGResult(torch.zeros_like(rhs), 0, 0.0, True, tolerance=tol)
    x = torch.zeros_like(rhs) if initial is None else initial.clone()
    r = rhs - apply(x) if initial is not None else rhs.clone()
    iterations, reason = 0, "tolerance"
    for _ in range(REPLACEMENTS + 1):
        x, iterations, reason = _iterate(apply, precondition, x, r, norm_b, tol, max_iter,
                                         callback, iterations)
        r = rhs - apply(x)
        true_residual = _relative(r, norm_b)
        if not math.isfinite(true_residual):
            true_residual, reason = math.inf, "diverged"
        if reason != "tolerance" or true_residual <= tol:
            break
    else:
        reason = "stagnated"
    converged = true_residual <= tol and reason in ("tolerance", "budget")
    return CGResult(x, iterations, true_residual, converged, reason == "breakdown", tol,
                    reason if reason != "budget" or not converged else "tolerance")
