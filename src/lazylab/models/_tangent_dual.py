"""The NT least squares in the sample space (the dual), for fewer samples than unknowns.

Notation (:mod:`lazylab.models._tangent_path`): Φ (n × p) the gated features, μ = Φᵀ1/n,
Φ_c = Φ − 1μᵀ, and the centered normal equations (Φ_cᵀΦ_c/n + λI) v = b, b = Φ_cᵀ(y − ȳ)/n.
Every α with

    (Φ_cΦ_cᵀ/n + λI) α = (y − ȳ)/n                                            (n × n)

gives their solution v = Φ_cᵀα [multiply by Φ_cᵀ; for λ > 0 the solution is unique] — the
representer form of ridge regression. Φ_cᵀα = Φᵀ(α − ᾱ1) and Φ_c t = Φt − (μ·t)1, so one dual
operator application is one pass over x with the primal's blocked products (the same cost).

Why, for n < p: the primal preconditioner (κ̂ ⊗ Ĉ + λI)⁻¹ is full rank, but Φ_cᵀΦ_c/n vanishes
on the null space of Φ_c (dimension ≥ p − n), where the operator is λI and the preconditioned one
λ(κ̂ ⊗ Ĉ + λI)⁻¹: eigenvalues spread over the Kronecker spectrum's range, far below the rest at
small λ, which PCG has to resolve at every small ridge. The dual has no such part: its
eigenvalues are the nonzero ones of Φ_cᵀΦ_c/n, plus λ, and for n ≪ p its matrix is nearly
diagonal (its off-diagonal entries are sums of p products with random signs). A single λ is
solved with the Jacobi preconditioner (diag(Φ_cΦ_cᵀ)/n + λ)⁻¹, diag entries ‖φ(x_a) − μ‖².

Ridge path: the systems of all λ are shifts of one matrix, so one Krylov space serves them all
(:func:`multishift_conjugate_gradient`, unpreconditioned: a preconditioner would break the shift
structure, and the dual needs little — its diagonal varies by ≈ 10–30 %): the products are those
of the smallest λ alone, each other λ costing scalar work plus its certificate.
Measured (ghorbani-fig1's σ = u² task at d = 100, N = 50, the 11-value grid; tol 1e-10;
products per path, primal → dual path): n = p/9: 848 → 41 (+ 11 certificates), n = p/3:
1251 → 94 (+ 11). At n = 1.1p the dual is worse (3359 iterations with Jacobi, against 451):
hence :data:`DUAL_FRACTION`.

Certificate: the primal one. When the dual CG meets its tolerance τ, v = Φ_cᵀα and the primal
relative residual ‖b − (Φ_cᵀΦ_c/n + λI)v‖/‖b‖ is computed with the primal operator (one more
application); above ``tol``, the dual CG continues from α with τ scaled down by the ratio (at
most :data:`ROUNDS` rounds). So every dual solution carries the certificate of a primal fit.
"""

from __future__ import annotations

import torch

from lazylab.solvers import conjugate_gradient

__all__ = ["DualEquations", "DenseDual", "DUAL_FRACTION", "DENSE_MAX_SAMPLES", "DENSE_RATIO",
           "ROUNDS", "SAFETY", "use_dual", "use_dense", "transposed_apply",
           "multishift_conjugate_gradient"]

DUAL_FRACTION = 0.5
"""The sample CG solves in the dual when n ≤ DUAL_FRACTION · p (p unknowns)."""

ROUNDS = 4
"""Dual CG rounds (each with a tighter dual tolerance) to meet the primal certificate."""

SAFETY = 0.5
"""Each dual tolerance is this fraction of the one the last primal / dual ratio asks for."""


DENSE_MAX_SAMPLES = 4096
"""The dual is formed as a dense n × n matrix only up to this n (128 MB in float64)."""

DENSE_RATIO = 64
"""... and only when n² ≤ DENSE_RATIO · p: its eigendecomposition (≈ 9n³ flops) then costs about
as much as 150 dual CG products (4np flops each). Measured on 2 threads, the 11-ridge default
grid, semi-random s = 1, d = 64, dense / dual CG path: Gaussian inputs (well conditioned, the CG
path takes 500–850 products in all) n = 1000, p = 16,384: 0.24 / 0.18 s; n = 2048, p = 65,536
(n² = 64p): 1.97 / 2.93 s; n² = 256p: 1.29 / 0.56 s (p = 16,384) and 11.8 / 7.3 s (n = 4096);
xie's digits (ill conditioned) n = 1000, p = 65,536: 0.51 / 11.2 s. The dense cost does not
depend on the conditioning; the CG's does."""


def use_dual(samples: int, unknowns: int) -> bool:
    """Whether the sample CG takes the dual: n ≤ :data:`DUAL_FRACTION` · p."""
    return samples <= DUAL_FRACTION * unknowns


def use_dense(samples: int, unknowns: int) -> bool:
    """Whether the dual is solved from its dense matrix (:class:`DenseDual`): n ≤ p/2,
    n ≤ :data:`DENSE_MAX_SAMPLES` and n² ≤ :data:`DENSE_RATIO` · p."""
    return (use_dual(samples, unknowns) and samples <= DENSE_MAX_SAMPLES
            and samples * samples <= DENSE_RATIO * unknowns)


class DualEquations:
    """(Φ_cΦ_cᵀ/n + λI) α = (y − ȳ)/n on samples, matrix-free (module docstring).

    Args:
        primal: the :class:`lazylab.models._tangent_path.CenteredNormalEquations` of the same
            fit (its features, x, gate cache, μ and right-hand side are shared).
        y: (n,) targets.
    Attributes: ``rhs`` (y − ȳ)/n, ``diagonal`` diag(Φ_cΦ_cᵀ)/n (n,), ``ratio`` the last
    solve's primal / dual relative residual (≥ 1; the next solve starts at tolerance
    :data:`SAFETY` · tol / ratio, so a ridge path rarely needs a second round).
    """

    def __init__(self, primal, y: torch.Tensor):
        self.primal = primal
        features, x, cache, n = primal.features, primal.x, primal.cache, primal.n
        self.rhs = (y - primal.y_mean) / n
        norms = torch.cat([features.row_norms(block, gates, heads)
                           for block, gates, heads in features.blocks(x, cache)])
        mean = primal.mean
        self.ratio = 1.0
        self.diagonal = (norms - 2 * features.apply(x, mean, cache) + mean @ mean) / n

    def transpose(self, alpha: torch.Tensor) -> torch.Tensor:
        """v = Φ_cᵀ α = Φᵀ(α − ᾱ1), packed (p,)."""
        return transposed_apply(self.primal.features, self.primal.x, alpha - alpha.mean(),
                                self.primal.cache)

    def operator(self, ridge: float):
        """α ↦ (Φ_cΦ_cᵀ/n + λI) α."""
        primal = self.primal

        def apply(alpha):
            value = primal.features.apply(primal.x, self.transpose(alpha), primal.cache)
            return (value - value.mean()) / primal.n + ridge * alpha
        return apply

    def certify(self, ridge: float, alpha: torch.Tensor, *, tol: float, max_iter: int | None):
        """:meth:`solve` from ``alpha``, checking the primal certificate first: when v = Φ_cᵀα
        already meets ``tol`` it is returned with 0 iterations (one transpose and one primal
        product), otherwise the dual CG continues from α."""
        vector = self.transpose(alpha)
        residual = self._primal_residual(ridge, vector)
        if residual <= tol:
            offset = self.primal.y_mean - self.primal.mean @ vector
            return vector, offset, {"cg_iterations": 0, "cg_residual": residual,
                                    "cg_converged": 1.0}, alpha
        return self.solve(ridge, tol=tol, max_iter=max_iter, initial=alpha)

    def _primal_residual(self, ridge: float, vector: torch.Tensor) -> float:
        """‖b − (Φ_cᵀΦ_c/n + λI)v‖/‖b‖ (0 when b = 0)."""
        norm_b = float(torch.linalg.vector_norm(self.primal.rhs))
        if norm_b == 0:
            return 0.0
        gap = self.primal.rhs - self.primal.operator(ridge)(vector)
        return float(torch.linalg.vector_norm(gap)) / norm_b

    def solve(self, ridge: float, *, tol: float, max_iter: int | None,
              initial: torch.Tensor | None = None, callback=None):
        """(v, c, diagnostics, α) at λ = ``ridge``: dual CG from ``initial`` (zeros when None).

        Diagnostics as the primal :meth:`CenteredNormalEquations.solve`: ``cg_iterations`` (the
        dual iterations of every round), ``cg_residual`` (the primal relative residual of v),
        ``cg_converged`` (1.0 when it meets ``tol``).
        """
        inverse = 1.0 / (self.diagonal + ridge)
        apply = self.operator(ridge)
        alpha, iterations, dual_tol = initial, 0, tol * SAFETY / self.ratio
        for _ in range(ROUNDS):
            remaining = None if max_iter is None else max(int(max_iter) - iterations, 0)
            result = conjugate_gradient(apply, self.rhs, preconditioner=lambda r: inverse * r,
                                        tol=dual_tol, max_iter=remaining, initial=alpha,
                                        callback=callback)
            alpha, iterations = result.solution, iterations + result.iterations
            vector = self.transpose(alpha)
            residual = self._primal_residual(ridge, vector)
            if result.residual > 0 and residual > 0:
                self.ratio = max(residual / result.residual, 1.0)
            if residual <= tol or (remaining is not None and result.iterations >= remaining):
                break
            dual_tol = min(dual_tol, result.residual) * tol / residual * SAFETY
        offset = self.primal.y_mean - self.primal.mean @ vector
        return vector, offset, {"cg_iterations": iterations, "cg_residual": residual,
                                "cg_converged": float(residual <= tol)}, alpha


class DenseDual:
    """The dual matrix Φ_cΦ_cᵀ/n formed once (n × n) and eigendecomposed: α at every λ by
    α = Σ_k u_k (u_kᵀ r)/(e_k + λ), r = (y − ȳ)/n, each then certified on its primal system
    (:meth:`DualEquations.certify`, which continues with the dual CG where the certificate is
    not met yet).

    Φ_cΦ_cᵀ = C ΦΦᵀ C with C = I − 11ᵀ/n, and ΦΦᵀ = (G Gᵀ)∘(X Xᵀ) [+ H Hᵀ]
    (:meth:`lazylab.models.neural_tangent.GatedFeatures.sample_gram`): 2n²(N + d) flops where
    one dual CG product costs 4np = 4nNd. Eigenvalues below n·ε·e_max (round-off of zero; the
    direction 1 is one, and r ⟂ 1) are dropped, so λ = 0 gives the minimum-norm interpolant
    that the cold dual CG from zero converges to.
    """

    def __init__(self, dual: DualEquations):
        primal = dual.primal
        gram = primal.features.sample_gram(primal.x)
        means = gram.mean(1)
        gram.sub_(means[:, None]).sub_(means[None, :]).add_(means.mean()).div_(primal.n)
        values, self.vectors = torch.linalg.eigh(gram)
        del gram
        self.values = values.clamp(min=0.0)
        self.floor = float(primal.n * torch.finfo(values.dtype).eps * values[-1].clamp(min=0))
        self.projected = self.vectors.T @ dual.rhs
        self.dual = dual

    def alpha(self, ridge: float) -> torch.Tensor:
        """The dual solution at λ = ``ridge`` from the eigendecomposition (not yet certified)."""
        shifted = self.values + ridge
        keep = shifted > self.floor
        weights = torch.where(keep, self.projected / torch.where(keep, shifted, 1.0), 0.0)
        return self.vectors @ weights

    def solve(self, ridge: float, *, tol: float, max_iter: int | None):
        """(v, c, diagnostics, α) at λ, as :meth:`DualEquations.solve` returns them."""
        return self.dual.certify(ridge, self.alpha(ridge), tol=tol, max_iter=max_iter)


def transposed_apply(features, x: torch.Tensor, r: torch.Tensor, cache=None) -> torch.Tensor:
    """Φᵀ r = [(G∘r)ᵀ X, Hᵀ r] packed (p,): the features' batch transpose summed over row
    blocks of x."""
    total, start = torch.zeros(features.size, dtype=x.dtype, device=x.device), 0
    for block, gates, heads in features.blocks(x, cache):
        total += features.batch_transpose(block, r[start:start + block.shape[0]], gates, heads)
        start += block.shape[0]
    return total


def multishift_conjugate_gradient(apply, rhs: torch.Tensor, shifts: list[float], *,
                                  tolerances: list[float], max_iter: int):
    """(A + s_j I) x_j = b for every shift s_j from one Krylov space (CG-M), from x_j = 0.

    CG runs on the smallest shift s₀ (the slowest system); every other system's residual stays
    collinear with it, r_j = ζ_j r, so its iterate follows with scalars only [Jegerlehner,
    hep-lat/9612014, "Krylov space solvers for shifted linear systems"; Frommer (2003)]: with
    δ = s_j − s₀ ≥ 0 and the base CG's α_k, β_k,
        ζ_{k+1} = ζ_k ζ_{k−1} α_{k−1} / (α_{k−1} ζ_{k−1}(1 + δ α_k) + α_k β_{k−1}(ζ_{k−1} − ζ_k)),
        x_j += α_k (ζ_{k+1}/ζ_k) p_j,   p_j ← ζ_{k+1} r_{k+1} + β_k (ζ_{k+1}/ζ_k)² p_j.
    A system stops (its iterate frozen) once its recursive relative residual |ζ_j|‖r‖/‖b‖ meets
    its tolerance; the loop ends when all have, or after ``max_iter`` products.
    Returns [(x_j, iterations_j)] in the order of ``shifts`` (recursive residuals only: the
    caller certifies each x_j by its recomputed residual).
    """
    base = min(shifts)
    norm_b = float(torch.linalg.vector_norm(rhs))
    count = len(shifts)
    solutions = [torch.zeros_like(rhs) for _ in range(count)]
    directions = [rhs.clone() for _ in range(count)]
    zeta, zeta_old = [1.0] * count, [1.0] * count
    iterations, active = [0] * count, [norm_b > 0] * count
    r, p = rhs.clone(), rhs.clone()
    rr, alpha_old, beta_old = float(r @ r), 1.0, 0.0
    for _ in range(max_iter):
        if not any(active):
            break
        ap = apply(p) + base * p
        alpha = rr / float(p @ ap)
        r = r - alpha * ap
        rr_next = float(r @ r)
        beta = rr_next / rr
        for j in range(count):
            if not active[j]:
                continue
            delta = shifts[j] - base
            denominator = (alpha_old * zeta_old[j] * (1.0 + delta * alpha)
                           + alpha * beta_old * (zeta_old[j] - zeta[j]))
            zeta_next = zeta[j] * zeta_old[j] * alpha_old / denominator
            ratio = zeta_next / zeta[j]
            solutions[j] += (alpha * ratio) * directions[j]
            directions[j] = zeta_next * r + (beta * ratio * ratio) * directions[j]
            zeta_old[j], zeta[j] = zeta[j], zeta_next
            iterations[j] += 1
            active[j] = abs(zeta_next) * rr_next ** 0.5 / norm_b > tolerances[j]
        p = r + beta * p
        rr, alpha_old, beta_old = rr_next, alpha, beta
    return list(zip(solutions, iterations))
