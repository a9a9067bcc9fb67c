"""Many shifts of one symmetric matrix, a Cholesky factor reused across them by CG.

A ridge grid solves (S + sI) x = b for one positive semi-definite S (a kernel matrix) and a
dozen shifts s. A Cholesky factor P = UᵀU of S + s₀I preconditions the system at a nearby shift:
the eigenvalues of P⁻¹(S + sI) are (μ + s)/(μ + s₀) over the eigenvalues μ of S, so they lie
between 1 and (μ_min + s)/(μ_min + s₀). Kernel matrices of high-dimensional inputs have
μ_min far from zero (the high-degree part of the kernel acts as a ridge of its own: μ_min ≈ 0.12
for the ReLU NTK at n = 4096, d = 128), so every shift below about μ_min is solved by CG on one
factor in a few iterations, where a factor per shift costs m³/3 flops each. When CG on the
current factor does not converge within a budget (:func:`reuse_budget`), S + sI is factored
anew: in float32 where :func:`lazylab.solvers.ridge.solve_shifted` would (m ≥ 4096 and the
trace bounds cond(S + sI) by 10⁶; CG with that factor then refines to float64 accuracy), else
in float64 (then the solve is the direct one, exactly what a factor per shift gives).

CG's products S v read one triangle of S on the CPU (BLAS ``dsymv``,
:func:`lazylab.solvers.structured.lower_symv`). Measured (``benchmarks/bench_kernels.py
--reuse``, the 14-ridge ReLU NTK grid, d = 128, two threads): 1.24× / 2.20× / 2.94× a float64
factor per ridge at m = 2048 / 4096 / 8192 (1.04× / 1.74× / 2.31× with full products), with
3–4 factorizations; predictions within 2.3e-11 relative.

The certificate of a CG solve is the normwise backward error (Rigal & Gaches 1967; Higham 2002,
§7.1) η = ‖b − (S + sI)x‖ / (‖S + sI‖_∞‖x‖ + ‖b‖) ≤ :data:`BACKWARD_TOLERANCE` (residual
recomputed in float64; ‖·‖_∞ bounds ‖·‖₂), what a backward-stable direct solve guarantees up to
a modest constant: the forward error of either is then at most about η·cond(S + sI).
"""

from __future__ import annotations

import math

import torch

from lazylab.solvers.cg import conjugate_gradient
from lazylab.solvers.ridge import (REFINEMENT_STEPS, cholesky_in_place, factor_solve,
                                   mixed_precision_safe, solve_symmetric)
from lazylab.solvers.structured import blas_symmetric, lower_symv

__all__ = ["ReusedFactorSolver", "BACKWARD_TOLERANCE", "reuse_budget"]

Tensor = torch.Tensor

BACKWARD_TOLERANCE = 1e-14
"""Normwise backward error a reused-factor CG solve must reach (≈ 45 float64 ulps)."""


def reuse_budget(size: int) -> int:
    """CG iterations allowed on a reused factor before factoring anew: max(10, m // 100).

    An iteration reads S and the factor once (memory speed), a factorization costs m³/3 flops
    (matmul speed). Measured on the 2-core development machine, one thread: a float32 factor
    costs 41 / 55 / 99 iterations at m = 2048 / 4096 / 8192, so m // 100 spends at most about
    one factorization on a shift that then needs its own. CG stops earlier when its rate so far
    projects past the budget (:class:`ReusedFactorSolver`)."""
    return max(10, size // 100)


def _infinity_norm(matrix: Tensor, rows: int = 1024) -> float:
    """max_i Σ_j |S_ij| in row blocks (no m × m temporary)."""
    return max(float(matrix[start:start + rows].abs().sum(dim=1).max())
               for start in range(0, matrix.shape[0], rows))


class _Hopeless(Exception):
    """Raised from CG's callback when its rate so far projects past the budget."""


def _watch(budget: int, target: float):
    """CG callback: raise :class:`_Hopeless` when, from the 5th iteration on, the geometric
    rate of the relative residual so far would need more than ``budget`` iterations."""
    first = {}

    def callback(iteration: int, relative: float) -> None:
        first.setdefault("residual", (iteration, relative))
        start, initial = first["residual"]
        if iteration - start < 4 or relative <= target:
            return
        rate = (relative / initial) ** (1.0 / (iteration - start))
        if rate >= 1.0 or iteration + math.log(target / relative) / math.log(rate) > budget:
            raise _Hopeless

    return callback


class _Factor:
    """UᵀU = S + s₀I in float32 or float64; :meth:`apply` r ↦ (UᵀU)⁻¹r in float64."""

    def __init__(self, upper: Tensor, shift: float):
        self.upper, self.shift = upper, shift

    @property
    def single(self) -> bool:
        return self.upper.dtype == torch.float32

    def apply(self, residual: Tensor) -> Tensor:
        return factor_solve(self.upper, residual).to(torch.float64)


class ReusedFactorSolver:
    """x(s) = (S + sI)⁻¹b for shifts s > 0 of one S, a factor reused while CG converges fast.

    Call :meth:`solve` with the shifts in increasing order (the factor at s₀ ≤ s then bounds the
    preconditioned spectrum below by 1). Routes: "pcg" (CG on an earlier shift's factor),
    "cholesky-mixed" (a new float32 factor at s, CG with it), "cholesky" (a new float64 factor
    at s, direct solve), "eigh" (S + sI not numerically positive definite: the pseudo-inverse
    solve of :func:`lazylab.solvers.ridge.solve_symmetric`, and no factor is kept).

    Memory: S (m × m float64, not modified) plus one factor (m × m float64 or float32).

    Args:
        matrix: S, (m, m) symmetric positive semi-definite float64.
        rhs: b, (m,) float64.
        budget: CG iterations on a reused factor before factoring anew
            (default :func:`reuse_budget`).
    """

    def __init__(self, matrix: Tensor, rhs: Tensor, *, budget: int | None = None):
        if rhs.ndim != 1:
            raise ValueError(f"ReusedFactorSolver solves one right-hand side, got rhs of shape "
                             f"{tuple(rhs.shape)}")
        self.matrix, self.rhs, self.symv = matrix, rhs, blas_symmetric(matrix)
        self.budget = reuse_budget(matrix.shape[0]) if budget is None else int(budget)
        if self.budget < 1:
            raise ValueError(f"budget must be a positive number of CG iterations, got {budget!r}")
        self.factor: _Factor | None = None
        self.last_shift = -math.inf
        self.warm = torch.zeros_like(rhs)
        self._norm = None
        self.rhs_norm = float(torch.linalg.vector_norm(rhs))

    def solve(self, shift: float) -> tuple[Tensor, str]:
        """(x(s), route) for ``shift`` s > 0, not below the previous call's shift."""
        if not shift > 0.0 or shift < self.last_shift:
            raise ValueError(f"shifts must be positive and increasing, got {shift!r} after "
                             f"{self.last_shift!r}")
        self.last_shift = shift
        if self.factor is not None:
            solution = self._refine(shift, self.factor, self.warm, self.budget)
            if solution is not None:
                return self._keep(solution), "pcg"
        return self._factored(shift)

    def _keep(self, solution: Tensor) -> Tensor:
        self.warm = solution
        return solution

    def _factored(self, shift: float) -> tuple[Tensor, str]:
        """Factor S + sI (float32 first where the trace bound allows) and solve with it."""
        self.factor = None  # released before the new factor is allocated
        if mixed_precision_safe(self.matrix.shape[0], float(self.matrix.diagonal().sum()), shift):
            solution = self._with_new_factor(shift, torch.float32)
            if solution is not None:
                return self._keep(solution), "cholesky-mixed"
        solution = self._with_new_factor(shift, torch.float64)
        if solution is not None:
            return self._keep(solution), "cholesky"
        solution, _ = solve_symmetric(self._shifted(shift, torch.float64), self.rhs,
                                      overwrite=True,
                                      rebuild=lambda: self._shifted(shift, torch.float64))
        return self._keep(solution), "eigh"

    def _with_new_factor(self, shift: float, dtype: torch.dtype) -> Tensor | None:
        """x(s) from a new factor of S + sI in ``dtype`` (float32: refined by CG; float64: the
        direct solve), the factor kept for the next shifts; None if either step fails."""
        upper, ok = cholesky_in_place(self._shifted(shift, dtype))
        if not ok:
            return None
        factor = _Factor(upper, shift)
        if factor.single:
            solution = self._refine(shift, factor, self.warm,
                                    max(self.budget, REFINEMENT_STEPS))
        else:
            solution = factor.apply(self.rhs)
            solution = solution if bool(torch.all(torch.isfinite(solution))) else None
        if solution is not None:
            self.factor = factor
        return solution

    def _shifted(self, shift: float, dtype: torch.dtype) -> Tensor:
        work = self.matrix.to(dtype, copy=True)
        work.diagonal().add_(shift)
        return work

    def _norm_of(self, shift: float) -> float:
        if self._norm is None:
            self._norm = _infinity_norm(self.matrix)
        return self._norm + shift

    def _refine(self, shift: float, factor: _Factor, start: Tensor, budget: int
                ) -> Tensor | None:
        """CG on S + sI preconditioned by ``factor`` from ``start`` to the backward tolerance,
        or None when ``budget`` iterations would not reach it."""
        if self.rhs_norm == 0.0:
            return torch.zeros_like(self.rhs)
        norm = self._norm_of(shift)

        def apply(vector: Tensor) -> Tensor:
            if self.symv and not vector.requires_grad:   # one triangle: half the traffic
                return lower_symv(self.matrix, vector).add_(vector, alpha=shift)
            return torch.addmv(vector, self.matrix, vector, beta=shift)

        solution, left = start, budget
        for _ in range(2):  # the tolerance on ‖r‖/‖b‖ is set from ‖x‖; recheck it once
            scale = norm * float(torch.linalg.vector_norm(solution)) + self.rhs_norm
            tol = BACKWARD_TOLERANCE * scale / self.rhs_norm
            try:
                result = conjugate_gradient(apply, self.rhs, preconditioner=factor.apply, tol=tol,
                                            max_iter=left, initial=solution,
                                            callback=_watch(left, tol))
            except _Hopeless:
                return None
            solution, left = result.solution, left - result.iterations
            if not result.converged or result.breakdown:
                return None
            scale = norm * float(torch.linalg.vector_norm(solution)) + self.rhs_norm
            if result.residual * self.rhs_norm <= BACKWARD_TOLERANCE * scale:
                return solution
        return None
