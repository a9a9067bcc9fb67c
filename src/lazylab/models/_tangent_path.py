"""The matrix-free NT least squares on samples, at one ridge or along a ridge path.

Notation (DESIGN.md, :mod:`lazylab.models.neural_tangent`): Φ (n × p) the gated features,
p = N·d [+ N], v the packed unknowns (A, h), c the unpenalized offset. The fit minimizes
(1/n)‖y − c − Φv‖² + λ‖v‖²; eliminating c = ȳ − μ·v (μ = Φᵀ1/n) leaves the centered normal
equations

    (ΦᵀΦ/n − μμᵀ + λI) v = Φᵀ(y − ȳ)/n,

solved by preconditioned CG (:func:`lazylab.solvers.conjugate_gradient`) with Φv and Φᵀr in
row blocks of x (:class:`CenteredNormalEquations`) and the Kronecker preconditioner of
:class:`lazylab.models._tangent_solvers.SampleStatistics`.

Ridge path (:func:`solve_path`, used by model selection): everything that does not depend on λ
is done once for the whole grid — the gates g(XWᵀ) cached (when n·N [·2] ≤ the cache budget),
the right-hand side Φᵀ(y − ȳ)/n and μ, the preconditioner's κ̂, Ĉ (eigendecomposed once) and
head Gram — and the ridges are solved from the largest to the smallest, each CG started from the
previous λ's solution, or from its linear extrapolation in λ through the previous two solutions
when that has the smaller residual (:func:`_start`). Larger λ is better conditioned, so the path
begins with the cheapest solve. Every λ keeps its own certificate: the
relative residual ‖b − (ΦᵀΦ/n − μμᵀ + λI)v‖/‖b‖ ≤ ``tol`` of its own system (the same
stopping rule as a cold fit, so every path solution is a valid fit at its λ).

With fewer samples than unknowns (n ≤ p/2, :func:`lazylab.models._tangent_dual.use_dual`) the
cold fit and the path solve the dual (n × n) system instead, the path every λ from one Krylov
space (:mod:`lazylab.models._tangent_dual`); the certificate is still the primal residual above.
Up to n ≤ 4096 with n² ≤ 64p (:func:`lazylab.models._tangent_dual.use_dense`) the dual matrix is
formed and eigendecomposed once instead, and every λ's solution from it is certified the same
way (:class:`lazylab.models._tangent_dual.DenseDual`).
"""

from __future__ import annotations

import torch

from lazylab import _checks as checks
from lazylab.models._tangent_dual import (SAFETY, DenseDual, DualEquations,
                                          multishift_conjugate_gradient, use_dense, use_dual)
from lazylab.models._tangent_mixed import SinglePrecisionGram, refined_solve, use_mixed
from lazylab.models._tangent_solvers import SampleStatistics, sample_preconditioner
from lazylab.solvers import conjugate_gradient

__all__ = ["CenteredNormalEquations", "solve_path", "solve_single"]


class CenteredNormalEquations:
    """(ΦᵀΦ/n − μμᵀ + λI) v = Φᵀ(y − ȳ)/n on samples, matrix-free (module docstring).

    Args:
        features: a :class:`lazylab.models.neural_tangent.GatedFeatures`.
        x: (n, d) inputs. y: (n,) targets. cache_entries: the gate cache's budget (entries;
            None: the features' default).
    Attributes: ``rhs`` (p,), ``mean`` μ (p,), ``y_mean`` ȳ, ``cache`` the per-block gates (or
    None above the budget). One pass over x at construction; each operator
    application is one more (three GEMMs per row block, four without the cache).
    """

    def __init__(self, features, x: torch.Tensor, y: torch.Tensor,
                 cache_entries: int | None = None):
        self.features, self.x, self.n = features, x, x.shape[0]
        self.y_mean = y.mean()
        self.cache = features.cache(x, cache_entries)
        rhs, total, _ = features.moments(x, y - self.y_mean, self.cache)
        self.mean, self.rhs = total / self.n, rhs / self.n

    def operator(self, ridge: float):
        """v ↦ (ΦᵀΦ/n − μμᵀ + λI) v."""
        def apply(v):
            return (self.features.gram_apply(self.x, v, self.cache) / self.n
                    - self.mean * (self.mean @ v) + ridge * v)
        return apply

    def solve(self, ridge: float, preconditioner, *, tol: float, max_iter: int | None,
              initial: torch.Tensor | None = None, callback=None):
        """(v, c, diagnostics) at λ = ``ridge``; CG from ``initial`` (zeros when None).

        Diagnostics: ``cg_iterations``, ``cg_residual`` (relative, of this λ's system),
        ``cg_converged`` (1.0 when the residual meets ``tol``).
        """
        result = conjugate_gradient(self.operator(ridge), self.rhs, preconditioner=preconditioner,
                                    tol=tol, max_iter=max_iter, initial=initial,
                                    callback=callback)
        v = result.solution
        return v, self.y_mean - self.mean @ v, {"cg_iterations": result.iterations,
                                                "cg_residual": result.residual,
                                                "cg_converged": float(result.converged)}


def solve_path(features, x: torch.Tensor, y: torch.Tensor, ridges, *, tol: float,
               max_iter: int | None, cache_entries: int | None = None) -> list[tuple]:
    """(v, c, diagnostics) at every λ of ``ridges``, in the order given (module docstring).

    Solves from the largest λ to the smallest, each CG warm-started from the previous solution
    or its extrapolation (:func:`_start`; from zeros after a solve whose solution is not
    finite). The gates (up to ``cache_entries``), the right-hand side and the preconditioner's
    statistics are computed once. Each λ's diagnostics are those of a cold
    :func:`lazylab.models.neural_tangent.fit_gated` with solver "cg", its certificate its own.
    With fewer samples than unknowns (:func:`lazylab.models._tangent_dual.use_dual`) the same
    path runs on the dual unknowns α (:func:`_dual_path`), as the cold fit does.
    """
    if isinstance(ridges, (str, bytes)) or not len(ridges):
        raise ValueError(f"ridges must be a non-empty sequence of penalties λ >= 0, got {ridges!r}")
    ridges = [checks.ridge(r, f"ridges[{k}]") for k, r in enumerate(ridges)]
    equations = CenteredNormalEquations(features, x, y, cache_entries)
    if use_dense(equations.n, features.size):
        dense = DenseDual(DualEquations(equations, y))
        budget = 10 * equations.n if max_iter is None else int(max_iter)
        return [dense.solve(ridge, tol=tol, max_iter=budget)[:3] for ridge in ridges]
    if use_dual(equations.n, features.size):
        return _dual_path(DualEquations(equations, y), ridges, tol=tol, max_iter=max_iter)
    statistics = SampleStatistics(features, x, equations.cache)
    single = (SinglePrecisionGram(equations) if use_mixed(equations.n, features.size, x.dtype)
              else None)
    results: list = [None] * len(ridges)
    solved: list[tuple[float, torch.Tensor]] = []
    for k in sorted(range(len(ridges)), key=lambda k: -ridges[k]):
        start = _start(equations, ridges[k], solved,
                       None if single is None else single.operator(ridges[k]))
        results[k] = _solve(equations, single, ridges[k], statistics.at(ridges[k]), tol=tol,
                            max_iter=max_iter, initial=start)
        solved = _remember(solved, ridges[k], results[k][0])
    return results


def solve_single(features, x: torch.Tensor, y: torch.Tensor, ridge: float, *, tol: float,
                 max_iter: int | None, callback=None) -> tuple:
    """(v, c, diagnostics) of one cold sample CG fit at λ: in the dual for n ≤ p/2
    (:mod:`lazylab.models._tangent_dual`), else the primal PCG, with float32 products refined
    in float64 from n·p ≥ :data:`lazylab.models._tangent_mixed.MIXED_ENTRIES`."""
    equations = CenteredNormalEquations(features, x, y)
    if use_dense(equations.n, features.size):
        return DenseDual(DualEquations(equations, y)).solve(ridge, tol=tol,
                                                            max_iter=max_iter)[:3]
    if use_dual(equations.n, features.size):
        return DualEquations(equations, y).solve(ridge, tol=tol, max_iter=max_iter,
                                                 callback=callback)[:3]
    single = (SinglePrecisionGram(equations) if use_mixed(equations.n, features.size, x.dtype)
              else None)
    return _solve(equations, single, ridge,
                  sample_preconditioner(features, x, ridge, equations.cache), tol=tol,
                  max_iter=max_iter, callback=callback)


def _solve(equations: CenteredNormalEquations, single, ridge: float, preconditioner, **options):
    """The primal PCG at λ: float64, or float32 corrections refined (``single`` given)."""
    if single is None:
        return equations.solve(ridge, preconditioner, **options)
    return refined_solve(equations, single, ridge, preconditioner, **options)


def _dual_path(dual: DualEquations, ridges: list[float], *, tol: float,
               max_iter: int | None) -> list[tuple]:
    """:func:`solve_path` in the dual (:mod:`lazylab.models._tangent_dual`): every λ from one
    Krylov space (:func:`multishift_conjugate_gradient` on Φ_cΦ_cᵀ/n, run on the smallest λ),
    then each λ certified on its own primal system (:meth:`DualEquations.certify`), and
    continued by its own dual CG from there where the certificate is not met yet."""
    budget = 10 * dual.primal.n if max_iter is None else int(max_iter)
    shared = multishift_conjugate_gradient(dual.operator(0.0), dual.rhs, ridges,
                                           tolerances=[tol * SAFETY] * len(ridges),
                                           max_iter=budget)
    results = []
    for ridge, (alpha, iterations) in zip(ridges, shared):
        vector, offset, info, _ = dual.certify(ridge, alpha, tol=tol,
                                               max_iter=max(budget - iterations, 0))
        info["cg_iterations"] += iterations
        results.append((vector, offset, info))
    return results


def _remember(solved: list, ridge: float, solution: torch.Tensor) -> list:
    """The last two (λ, solution) pairs for :func:`_start`; none after a non-finite solution."""
    return solved[-1:] + [(ridge, solution)] if bool(torch.isfinite(solution).all()) else []


def _start(equations: CenteredNormalEquations, ridge: float, solved: list, apply=None):
    """The CG start at λ₂ from the last solutions (λ₀, v₀), (λ₁, v₁) (λ₀ > λ₁ ≥ λ₂).

    v₁ itself, or the linear extrapolation v₁ + (λ₂ − λ₁)(v₁ − v₀)/(λ₁ − λ₀) when its residual
    is smaller: for the eigencomponents with eigenvalue e ≫ λ, v = c/(e + λ) is linear in λ to
    O((λ/e)²), so the start's residual there drops from O(λ₁/e) to O((λ₁/e)²) (the solves at
    small λ, the long ones, start 20 % fewer iterations away; benchmarks/bench_selection.py).
    None (zeros) when nothing is solved yet. Costs two operator applications; ``apply``: the
    operator at λ₂ to compare the two with instead of ``equations.operator`` (the float32 one
    of :mod:`lazylab.models._tangent_mixed`: it only chooses a start).
    """
    if not solved:
        return None
    last_ridge, last = solved[-1]
    if len(solved) < 2 or last_ridge == solved[0][0] or last_ridge == ridge:
        return last
    first_ridge, first = solved[0]
    extrapolated = last + (ridge - last_ridge) / (last_ridge - first_ridge) * (last - first)
    apply = equations.operator(ridge) if apply is None else apply
    residuals = [float(torch.linalg.vector_norm(equations.rhs - apply(v)))
                 for v in (last, extrapolated)]
    return extrapolated if residuals[1] < residuals[0] else last

