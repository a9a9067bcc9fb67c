"""Single-precision products with a double-precision correction for the NT normal equations.

Notation (:mod:`lazylab.models._tangent_path`): (Φ_cᵀΦ_c/n + λI) v = b, the products Φv and Φᵀr
in row blocks of x. A product in float32 (x, W and the cached gates g(XWᵀ) rounded once, the
GEMMs in float32) takes half the time of the float64 one (measured 0.30 s against 0.65 s at
d = 450, N = 225, n = 33,750 on one thread), and differs from it by a relative ≈ 4·10⁻⁷ (the
same measurement) — far above the fit's tolerance (10⁻¹⁰), so it only ever *proposes*
corrections (defect correction, i.e. iterative refinement):

    r_k = b − (A + λ) v_k                 float64 product: the certificate
    (Ã + λ) δ_k ≈ r_k                     PCG with float32 products Ã, to relative ``INNER``
                                          (or until it stalls, :data:`STALL`)
    v_{k+1} = v_k + δ_k

With ‖(A + λ)⁻¹(Ã − A)‖ = ε̃ < 1 each step multiplies the residual by at most ≈ INNER + ε̃·κ
[Higham, Accuracy and Stability of Numerical Algorithms, §12.1]; ε̃ ≈ 4·10⁻⁷·cond. A step that
does not halve the residual (ill-conditioned systems, where ε̃ ≳ 1/2) hands the solve to the
float64 PCG from where it stands, so the result and its certificate — the float64 relative
residual ≤ ``tol``, the same as every other route — never depend on float32 accuracy.
Used by the primal sample CG when n·p ≥ :data:`MIXED_ENTRIES` (the size at which solver
"auto" leaves the dense solve).
"""

from __future__ import annotations

import torch

__all__ = ["SinglePrecisionGram", "refined_solve", "MIXED_ENTRIES", "INNER", "STALL",
           "use_mixed"]

MIXED_ENTRIES = 25_000_000
"""The primal sample CG uses float32 products with float64 correction when n·p reaches this."""

INNER = 1e-4
"""Relative tolerance of each float32 correction solve."""

STALL = 50
"""A float32 correction solve stops when its residual has not halved in this many iterations:
its attainable accuracy (≈ the float32 error times the condition number) is reached."""


def use_mixed(samples: int, unknowns: int, dtype: torch.dtype) -> bool:
    """Whether the primal CG refines float32 solves: float64 data and n·p ≥ MIXED_ENTRIES."""
    return dtype == torch.float64 and samples * unknowns >= MIXED_ENTRIES


class SinglePrecisionGram:
    """v ↦ (Φ_cᵀΦ_c/n + λI) v with Φᵀ(Φv) in float32 (module docstring); v, μ and the result
    in float64.

    Args:
        primal: the :class:`lazylab.models._tangent_path.CenteredNormalEquations` (its features,
            x, gate cache and μ).
    Memory: float32 copies of x and of the cached gates (half their float64 size).
    """

    def __init__(self, primal):
        features = primal.features
        self.primal = primal
        self.features = type(features)(features.weights.float(), features.gate, features.head)
        self.x = primal.x.float()
        self.cache = None if primal.cache is None else [
            tuple(None if part is None else part.float() for part in parts)
            for parts in primal.cache]

    def operator(self, ridge: float):
        """v ↦ (Φ̃ᵀΦ̃/n − μμᵀ + λI) v, Φ̃ in float32."""
        mean, n = self.primal.mean, self.primal.n

        def apply(v):
            gram = self.features.gram_apply(self.x, v.float(), self.cache).double()
            return gram / n - mean * (mean @ v) + ridge * v
        return apply


def refined_solve(primal, single: SinglePrecisionGram, ridge: float, preconditioner, *,
                  tol: float, max_iter: int | None, initial: torch.Tensor | None = None,
                  callback=None):
    """(v, c, diagnostics) at λ by float32 PCG corrections of float64 residuals (module
    docstring), falling back to float64 PCG when a correction does not halve the residual.

    Diagnostics as :meth:`CenteredNormalEquations.solve`: ``cg_iterations`` counts every PCG
    iteration (float32 and float64), ``cg_residual`` is the float64 relative residual.
    """
    rhs, apply = primal.rhs, primal.operator(ridge)
    norm_b = float(torch.linalg.vector_norm(rhs))
    vector = torch.zeros_like(rhs) if initial is None else initial.clone()
    budget = 10 * rhs.numel() if max_iter is None else int(max_iter)
    iterations, single_apply = 0, single.operator(ridge)
    residual = rhs - apply(vector) if initial is not None else rhs.clone()
    relative = float(torch.linalg.vector_norm(residual)) / norm_b if norm_b > 0 else 0.0
    while relative > tol and iterations < budget:
        correction, steps = _correction(single_apply, residual, preconditioner,
                                        tol=max(INNER, tol / relative / 2),
                                        max_iter=budget - iterations, callback=callback)
        iterations += steps
        trial = vector + correction
        trial_residual = rhs - apply(trial)
        trial_relative = float(torch.linalg.vector_norm(trial_residual)) / norm_b
        if not trial_relative <= relative / 2:
            break
        vector, residual, relative = trial, trial_residual, trial_relative
    if relative > tol:
        left = None if max_iter is None else max(budget - iterations, 0)
        vector, offset, info = primal.solve(ridge, preconditioner, tol=tol, max_iter=left,
                                            initial=vector, callback=callback)
        info["cg_iterations"] += iterations
        return vector, offset, info
    return vector, primal.y_mean - primal.mean @ vector, {
        "cg_iterations": iterations, "cg_residual": relative, "cg_converged": 1.0}


def _correction(apply, rhs: torch.Tensor, preconditioner, *, tol: float, max_iter: int,
                callback=None) -> tuple[torch.Tensor, int]:
    """(δ, iterations): PCG from 0 on Ã δ = r with the float32 operator Ã, until the relative
    (recursive) residual ≤ ``tol``, ``max_iter`` iterations, or a stall (no halving of the best
    residual in :data:`STALL` iterations: Ã is not exactly the symmetric A, so below its
    attainable accuracy CG no longer converges, and the caller's float64 residual decides)."""
    norm = float(torch.linalg.vector_norm(rhs))
    x, r = torch.zeros_like(rhs), rhs.clone()
    z = preconditioner(r)
    p, rz = z.clone(), torch.sum(r * z)
    best, since, iterations = 1.0, 0, 0
    while iterations < max_iter and since < STALL:
        ap = apply(p)
        curvature = torch.sum(p * ap)
        if not curvature > 0:
            break
        alpha = rz / curvature
        x, r = x + alpha * p, r - alpha * ap
        iterations += 1
        relative = float(torch.linalg.vector_norm(r)) / norm
        if callback is not None:
            callback(iterations, relative)
        if relative <= tol or relative != relative:
            break
        best, since = (relative, 0) if relative <= best / 2 else (best, since + 1)
        z = preconditioner(r)
        rz_next = torch.sum(r * z)
        p, rz = z + (rz_next / rz) * p, rz_next
    return x, iterations
