"""L independent conjugate gradients that share one batched operator application per round.

Used by :func:`lazylab.solvers.falkon.falkon_path`: one CG per ridge λ, whose matrix products
all go through K_nM (or the normal matrix) together. Each column keeps its own α/β scalars,
tolerance test, residual replacement and stop reason exactly as
:func:`lazylab.solvers.cg.conjugate_gradient`; the columns share products, not Krylov subspaces
(this is not block CG).

**Refinement by an exact operator.** An operator can be cheap but noisy: FALKON's normal matrix
G = K_nMᵀK_nM gives G v with round-off ε‖G‖‖v‖ spread over every direction of the centers'
space, which the preconditioner's T⁻ᵀ then amplifies along K_MM's small eigenvalues; a product
through K_nM itself (Kᵀ(K v)) puts its round-off in K's range, where T⁻ᵀ is benign. Measured
(RF kernel, d = 128, n = 32,768, M = 8192, λ = 5e-9): the two operators differ by 1e-7 relative
in the preconditioned space; CG with G products stagnates at relative residual 3.1e-8 (tol
1e-8, three replacements) while CG with K_nM products converges to 6.3e-9 in 32 iterations.
:meth:`BatchedCG.refine` takes the columns that stagnated, recomputes their residuals with the
exact operator (one batched application for all of them), and restarts CG from those
residuals with the cheap operator's steps: iterative refinement (Wilkinson 1963; Higham 2002,
ch. 12) by residual replacement (van der Vorst & Ye 2000), where the correction needs only the
relative accuracy the cheap operator has. Its checks wait until every reopened column
is ready, so one exact application serves all of them. The certificate of a refined column is
the exact operator's residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from lazylab.solvers.cg import REPLACEMENTS

__all__ = ["BatchedCG"]

Tensor = torch.Tensor
Operator = Callable[[Tensor, list[int]], Tensor]
"""(X (M, L′, k), the L′ column indices) ↦ the columns' operators applied to X."""


@dataclass
class _Column:
    """The scalars of one column's CG (those of cg._iterate and conjugate_gradient)."""

    norm_b: float
    rz: float = 0.0
    relative: float = 0.0
    iterations: int = 0
    replacements: int = 0
    pending: str | None = None  # a stop reason waiting for its recomputed residual
    residual: float = 0.0
    reason: str = ""

    def finish(self, residual: float, reason: str) -> None:
        self.residual, self.reason, self.pending = residual, reason, None


class BatchedCG:
    """L CGs W_j x_j = b_j (column j of ``rhs`` (M, L, k)) sharing one ``apply`` per round.

    ``check`` computes the recomputed residuals b − W x (default ``apply``); :meth:`refine`
    switches it to an exact operator for the columns that stagnated (module docstring).
    """

    def __init__(self, apply: Operator, rhs: Tensor, tol: float, budget: int):
        self.apply, self.check, self.rhs, self.tol, self.budget = apply, apply, rhs, tol, budget
        self.x, self.r, self.p = torch.zeros_like(rhs), rhs.clone(), rhs.clone()
        norms = torch.linalg.vector_norm(rhs, dim=(0, 2)).tolist()
        self.columns = [_Column(norm) for norm in norms]
        for j, column in enumerate(self.columns):
            if column.norm_b == 0.0:
                column.finish(0.0, "tolerance")
            else:
                column.rz, column.relative = float(torch.sum(rhs[:, j] ** 2)), 1.0
        self.rounds = 0
        self.exact_checks = 0  # applications of the exact operator by refine
        self._hold_checks = False

    def _pending(self) -> tuple[list[int], list[int]]:
        """(columns taking a CG step, columns recomputing b − Wx) this round."""
        steps, checks = [], []
        for j, column in enumerate(self.columns):
            if column.reason:
                continue
            if column.pending is None and column.relative <= self.tol:
                column.pending = "tolerance"
            elif column.pending is None and column.iterations >= self.budget:
                column.pending = "budget"
            (checks if column.pending else steps).append(j)
        if self._hold_checks and steps:
            return steps, []  # the exact checks wait for every column: one application
        return steps, checks

    def run(self) -> None:
        """Iterate until every column has a stop reason."""
        while True:
            steps, checks = self._pending()
            if not steps and not checks:
                return
            if self.check is self.apply:
                products = self.apply(torch.cat([self.p[:, steps], self.x[:, checks]], dim=1),
                                      steps + checks)
                stepped, checked = products[:, :len(steps)], products[:, len(steps):]
            else:
                stepped = self.apply(self.p[:, steps], steps) if steps else None
                checked = self.check(self.x[:, checks], checks) if checks else None
                self.exact_checks += bool(checks)
            self.rounds += 1
            for i, j in enumerate(steps):
                self._step(j, stepped[:, i])
            for i, j in enumerate(checks):
                self._check(j, checked[:, i])

    def refine(self, exact: Operator) -> list[int]:
        """Restart the stagnated columns from ``exact``'s residuals (module docstring); returns
        their indices. Each gets ``REPLACEMENTS`` more restarts, now from exact residuals."""
        reopened = [j for j, column in enumerate(self.columns) if column.reason == "stagnated"]
        if not reopened:
            return reopened
        self.check, self._hold_checks = exact, True
        for j in reopened:
            column = self.columns[j]
            column.reason, column.pending, column.replacements = "", "tolerance", 0
        self.run()
        return reopened

    def _step(self, j: int, product: Tensor) -> None:
        """One CG step of column j given W p (cg._iterate's loop body)."""
        column, direction = self.columns[j], self.p[:, j]
        curvature = float(torch.sum(direction * product))
        if not curvature > 0:
            column.pending = "breakdown" if curvature <= 0 else "diverged"
            return
        alpha = column.rz / curvature
        x_next, r_next = self.x[:, j] + alpha * direction, self.r[:, j] - alpha * product
        relative = float(torch.linalg.vector_norm(r_next)) / column.norm_b
        if not math.isfinite(relative) or not bool(torch.isfinite(x_next).all()):
            column.pending = "diverged"
            return
        self.x[:, j], self.r[:, j] = x_next, r_next
        column.iterations, column.relative = column.iterations + 1, relative
        rz_next = float(torch.sum(r_next * r_next))
        self.p[:, j] = r_next + (rz_next / column.rz) * direction
        column.rz = rz_next

    def _check(self, j: int, product: Tensor) -> None:
        """Column j's recomputed residual b − Wx: stop, or restart CG from it (replacement)."""
        column = self.columns[j]
        residual = self.rhs[:, j] - product
        true = float(torch.linalg.vector_norm(residual)) / column.norm_b
        reason = column.pending
        if not math.isfinite(true):
            true, reason = math.inf, "diverged"
        if reason != "tolerance" or true <= self.tol:
            column.finish(true, reason)
        elif column.replacements == REPLACEMENTS:
            column.finish(true, "stagnated")
        else:
            column.replacements += 1
            self.r[:, j], self.p[:, j] = residual, residual
            column.rz, column.relative, column.pending = float(torch.sum(residual ** 2)), true, None

    def outcome(self, j: int) -> tuple[Tensor, int, float, bool, str]:
        """(x, iterations, residual, converged, stop_reason) of column j, as CGResult's."""
        column = self.columns[j]
        converged = column.residual <= self.tol and column.reason in ("tolerance", "budget")
        reason = column.reason if column.reason != "budget" or not converged else "tolerance"
        return self.x[:, j], column.iterations, column.residual, converged, reason
