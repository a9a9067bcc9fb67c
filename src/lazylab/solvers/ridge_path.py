"""Ridge paths: one data set, many ridges λ, the Gram or kernel matrix formed once.

Selecting λ on a grid solves (S + λI) x = b for one symmetric S (a kernel matrix K, or a feature
Gram FᵀF/n or FFᵀ/n) and many λ. Forming S is often the larger part of a fit (a kernel
evaluation, a feature GEMM), so S is formed once. Each λ is then either a Cholesky factor of the
cached S + λI — the same computation as a solve per λ
(:func:`lazylab.solvers.ridge.solve_symmetric`) — or, for long grids, all λ come from one
eigendecomposition S = QΛQᵀ: (S + λI)⁻¹b = Q (Λ + λ)⁻¹ Qᵀb at O(m²) per λ. The
eigendecomposition costs 10–100 Choleskys (:data:`EIGH_MIN_SHIFTS`), so it pays only beyond
about two dozen λ. In between, from m = :data:`REUSE_MIN_SIZE` on, a factor at one λ
preconditions CG at the next ones (:mod:`lazylab.solvers.shifted`): 3–4 factorizations for
the 14 ridges of the kernel studies instead of 14. Conventions (the 1/n loss, unpenalized
intercept, method labels) are those of :mod:`lazylab.solvers.ridge`.
"""

from __future__ import annotations

from typing import Iterable

import torch

from lazylab import _checks as checks
from lazylab.solvers.ridge import (RidgeSolution, _check_pair, pseudo_inverse_cutoff,
                                   solve_ridge, solve_symmetric)
from lazylab.solvers.shifted import ReusedFactorSolver

__all__ = ["symmetric_path", "ridge_path", "EIGH_MIN_SHIFTS", "REUSE_MIN_SIZE"]

Tensor = torch.Tensor


EIGH_MIN_SHIFTS = 24
"""From this many positive shifts on, :func:`symmetric_path` (``method="auto"``) shares one
eigendecomposition; below, it factors the one cached matrix by Cholesky per shift. An
eigendecomposition costs as many Choleskys as this or more: measured eigh/Cholesky time ratios
12–100 (n = 500–2000, float64, 1–2 threads on the loaded 2-core development machine)."""

REUSE_MIN_SIZE = 1024
"""From this m on, :func:`symmetric_path` (``method="auto"``, one right-hand side, fewer than
:data:`EIGH_MIN_SHIFTS` shifts) reuses factors across shifts (``benchmarks/bench_kernels.py
--reuse``: 1.24× at m = 2048, two threads; a one-thread check outside benchmarks/ gave 1.9× at
m = 512 and 1024); below this m a factorization costs milliseconds and the per-shift solve
stays the exact one."""


def symmetric_path(matrix: Tensor, rhs: Tensor, shifts: Iterable[float], *,
                   method: str = "auto") -> list[tuple[Tensor, str]]:
    """x(s) = (S + sI)⁻¹ b for every shift s of one symmetric S: [(x(s), route), ...].

    S (formed once by the caller: a kernel or Gram matrix) is kept and each shift is solved
    either way:

    * ``"cholesky"``: a copy of S + sI factored in place per shift by :func:`solve_symmetric`
      (route "cholesky", or "eigh" where it fell back to the pseudo-inverse): exactly what a
      solve per shift computes, O(m³/3) each.
    * ``"eigh"``: S = QΛQᵀ once, then x(s) = Q diag(w) Qᵀ b, w_i = 1/(λ_i + s) except w_i = 0
      where λ_i + s is at or below :func:`pseudo_inverse_cutoff` of Λ + s (the rule of
      :func:`pseudo_solve` applied to S + sI); route "path". O(m³) once (10–100 Choleskys,
      :data:`EIGH_MIN_SHIFTS`), then O(m²k) per shift. It agrees with the Cholesky route to
      round-off, ε·cond(S + sI) relative, wherever s exceeds that cut-off; below it the
      Cholesky route inverts round-off eigenvalues that this one treats as zero. Shifts s = 0
      take the Cholesky route (the cut-off would decide the answer alone).
    * ``"reuse"``: the positive shifts in increasing order by
      :class:`~lazylab.solvers.shifted.ReusedFactorSolver`: one Cholesky factor serves the
      following shifts as CG's preconditioner while CG converges within its budget (route
      "pcg"); a shift it does not serve is factored anew (routes "cholesky-mixed", "cholesky",
      "eigh"). Each solution has normwise backward error ≤ 10⁻¹⁴ (the forward error of either
      route is at most about that times cond(S + sI); measured within 4.1e-12 relative of the
      Cholesky route on the ReLU NTK grid at m = 4096, where cond reaches 4·10³). One
      right-hand side (m,); zero shifts take the Cholesky route.
    * ``"auto"``: "eigh" from :data:`EIGH_MIN_SHIFTS` positive shifts on; else "reuse" for
      one right-hand side from m = :data:`REUSE_MIN_SIZE` on; else "cholesky".

    Memory: S and one more m × m matrix (the factor, or Q).

    Args:
        matrix: S, (m, m) symmetric positive semi-definite float64; not modified.
        rhs: b, (m,) or (m, k).
        shifts: s ≥ 0, any number of them, returned in this order.
        method: "auto", "cholesky", "eigh" or "reuse".
    """
    checks.choice(method, "method", ("auto", "cholesky", "eigh", "reuse"))
    shifts = [float(s) for s in shifts]
    positive = sorted({s for s in shifts if s > 0.0})
    if method == "auto":
        count = sum(s > 0.0 for s in shifts)
        method = "eigh" if count >= EIGH_MIN_SHIFTS else "reuse" if (
            rhs.ndim == 1 and matrix.shape[0] >= REUSE_MIN_SIZE) else "cholesky"
    if method == "reuse" and rhs.ndim != 1:
        raise ValueError(f"method 'reuse' solves one right-hand side, got rhs of shape "
                         f"{tuple(rhs.shape)}")
    single = _CholeskySolver(matrix, rhs)
    if method == "reuse":
        solver = ReusedFactorSolver(matrix, rhs)
        solved = {shift: solver.solve(shift) for shift in positive}
        return [solved[shift] if shift > 0.0 else single.solve(shift) for shift in shifts]
    shared = _EigenSolver(matrix, rhs) if method == "eigh" and positive else None
    return [(shared.solve(shift), "path") if shared is not None and shift > 0.0
            else single.solve(shift) for shift in shifts]


class _CholeskySolver:
    """(S + sI)⁻¹b by :func:`solve_symmetric` on one work copy of S, refilled per shift."""

    def __init__(self, matrix: Tensor, rhs: Tensor):
        self.matrix, self.rhs, self.work = matrix, rhs, None

    def _shifted(self, shift: float) -> Tensor:
        if self.work is None:
            self.work = torch.empty_like(self.matrix)
        self.work.copy_(self.matrix).diagonal().add_(shift)
        return self.work

    def solve(self, shift: float) -> tuple[Tensor, str]:
        solution, ok = solve_symmetric(self._shifted(shift), self.rhs, overwrite=True,
                                       rebuild=lambda: self._shifted(shift))
        return solution, "cholesky" if ok else "eigh"


class _EigenSolver:
    """S = QΛQᵀ and Qᵀb once; :meth:`solve` gives (S + sI)⁺b with the pseudo-inverse cut-off."""

    def __init__(self, matrix: Tensor, rhs: Tensor):
        self.values, self.vectors = torch.linalg.eigh(matrix)
        self.column = rhs.ndim == 1
        self.projected = self.vectors.T @ (rhs.unsqueeze(1) if self.column else rhs)

    def solve(self, shift: float) -> Tensor:
        shifted = self.values + shift
        keep = shifted > pseudo_inverse_cutoff(shifted)
        inverse = torch.where(keep, 1.0 / torch.where(keep, shifted, torch.ones_like(shifted)), 0.0)
        solution = self.vectors @ (inverse.unsqueeze(1) * self.projected)
        return solution[:, 0] if self.column else solution


def _checked_ridges(ridges: Iterable[float]) -> list[float]:
    ridges = list(ridges)
    if not ridges:
        raise ValueError(f"ridges must be a non-empty sequence of penalties λ >= 0, got {ridges!r}")
    return [checks.ridge(r, f"ridges[{k}]") for k, r in enumerate(ridges)]


def ridge_path(features: Tensor, targets: Tensor, ridges: Iterable[float], *,
               fit_intercept: bool = False, method: str = "auto") -> list[RidgeSolution]:
    """:func:`solve_ridge` at every λ of ``ridges``, the Gram matrix formed once.

    Primal (p ≤ n): S = FᵀF/n, a(λ) = (S + λI)⁻¹Fᵀy/n. Dual (n < p): S = FFᵀ/n,
    a(λ) = Fᵀ(S + λI)⁻¹y/n. S (m × m, m = min(n, p); O(nm²) to form) is formed once and every
    λ is solved by :func:`symmetric_path` with ``method``: a Cholesky per λ of the cached S
    (what :func:`solve_ridge` does; methods "primal"/"dual", "-eigh" on its fallback), or one
    shared eigendecomposition (methods "primal-path"/"dual-path"; the same answer up to
    round-off for λ above max(m·ε, 10⁻¹²) times the largest eigenvalue), or, for one target
    column from m = :data:`REUSE_MIN_SIZE` on, factors reused across λ by CG (methods
    "-pcg"/"-mixed" on a reused or float32 factor; backward error ≤ 10⁻¹⁴, so within about
    10⁻¹⁴·cond(S + λI) of the Cholesky route: measured on ReLU features, d = 64, the grid
    10⁻¹⁴ … 10⁻¹, coefficients within 2.1e-10 / 8.3e-9 / 4.9e-10 relative at (n, p) = (4096,
    2048) / (2200, 2048) / (8192, 4096), where the Gram is far worse conditioned than a
    kernel matrix). λ = 0 entries are
    solved by :func:`solve_ridge` itself (minimum-norm least squares by SVD of F, not the Gram).

    Args:
        features: F, (n, p). targets: y, (n,) or (n, k).
        ridges: λ ≥ 0 for each solution, in the order returned.
        fit_intercept: fit an unpenalized c (exactly, by centering F and y).
        method: "auto", "cholesky", "eigh" or "reuse" (:func:`symmetric_path`).

    Returns:
        One :class:`RidgeSolution` per λ.
    """
    ridges = _checked_ridges(ridges)
    original = _check_pair(features, targets, ("features", "targets"))
    features, targets = original
    zero = torch.zeros(targets.shape[1:], dtype=torch.float64, device=features.device)
    feature_mean, target_mean = torch.zeros_like(features[0]), zero
    if fit_intercept:
        feature_mean, target_mean = features.mean(dim=0), targets.mean(dim=0)
        features, targets = features - feature_mean, targets - target_mean
    positive = [r for r in ridges if r > 0.0]
    taken = iter(_path_coefficients(features, targets, positive, method) if positive else [])
    solutions = []
    for ridge in ridges:
        if ridge == 0.0:
            solutions.append(solve_ridge(*original, ridge=0.0, fit_intercept=fit_intercept))
            continue
        coef, label = next(taken)
        intercept = target_mean - feature_mean @ coef if fit_intercept else zero.clone()
        solutions.append(RidgeSolution(coef=coef, intercept=intercept, method=label))
    return solutions


_ROUTES = {"cholesky": "", "eigh": "-eigh", "path": "-path", "pcg": "-pcg",
           "cholesky-mixed": "-mixed"}


def _path_coefficients(features: Tensor, targets: Tensor, ridges: list[float], method: str
                       ) -> list[tuple[Tensor, str]]:
    """(a(λ), method label) for each λ > 0 on (already centered) F, y: primal when p ≤ n."""
    n, p = features.shape
    if p <= n:
        solved = symmetric_path(features.T @ features / n, features.T @ targets / n, ridges,
                                method=method)
        return [(coef, "primal" + _ROUTES[route]) for coef, route in solved]
    solved = symmetric_path(features @ features.T / n, targets / n, ridges, method=method)
    return [(features.T @ dual, "dual" + _ROUTES[route]) for dual, route in solved]
