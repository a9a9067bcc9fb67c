"""FALKON along a ridge path: every λ of a grid from one set of centers and one CG loop.

Notation as :mod:`lazylab.solvers.kernel_ridge` (FALKON, Rudi, Carratino & Rosasco 2017): n
samples, M Nyström centers, K_nM, K_MM, T with TᵀT = K_MM + δI, and per ridge λ

    A_λᵀA_λ = TTᵀ/M + λI,   W_λ = A_λ⁻ᵀ(T⁻ᵀK_nMᵀK_nM T⁻¹/n + λI)A_λ⁻¹,   α_λ = T⁻¹A_λ⁻¹β_λ/√n,

with CG on W_λ β_λ = A_λ⁻ᵀT⁻ᵀK_nMᵀy/√n. A single fit per λ pays, each time, the centers' K_MM
and its Cholesky T, K_nM (computed once, or once per CG product when it does not fit the
memory budget) and one pass over K_nM per CG iteration. The path shares everything but A_λ:

* the centers are drawn once, by the same ``rng.choice`` as the single fit (so path[λ] is the
  single fit with the same generator state, to round-off); K_MM, T, δ and TTᵀ/M once;
* per λ only A_λ = chol(TTᵀ/M + λI) (M³/3 flops; TTᵀ/M itself once). The L factors take
  L·M² floats; the ridges run in groups (by increasing λ, so that a group's columns need
  similar iteration counts) of as many factors as ``factor_budget`` holds, one CG loop per
  group. ``factorization="eigh"`` instead takes one eigendecomposition TTᵀ/M = QΛQᵀ and
  A_λ = (Λ + λ)^{1/2}Qᵀ (A_λᵀA_λ = TTᵀ/M + λI too; M² floats for every λ, one group). Two
  factors of the same Gram differ by an orthogonal U (A′ = UA), which maps CG's iterates
  β ↦ Uβ and leaves α, the residual norms and the iteration counts unchanged in exact
  arithmetic. On CPU it is slow: torch's eigh took 96–175 s at M = 3000 where a Cholesky took
  0.8–1.4 s (2 cores, load 6–9), so ≈ 120 Choleskys;
* ONE loop of L independent CGs (:class:`lazylab.solvers.batched_cg.BatchedCG`: one per λ,
  each with its own α/β scalars, tolerance test, residual replacement and stop reason exactly
  as :func:`lazylab.solvers.cg.conjugate_gradient`) whose matrix products are batched: every
  round applies K_nMᵀK_nM to the M × L′ block of the still-running columns (their search
  directions, or their iterates when a column's recursive residual has met ``tol`` and its true
  residual b − Wβ is recomputed), so K_nM is read — or recomputed — once per round for all
  ridges instead of once per ridge. Not block CG in the Krylov sense: the columns share
  products, not subspaces.

Cost of L ridges: K_MM, T and TTᵀ/M once, L Choleskys (or one eigendecomposition), and
Σ_groups max_λ∈group(rounds_λ) passes over K_nM (one group: the slowest ridge's), where a single
fit per λ pays Σ_λ rounds_λ passes, and K_MM, T, TTᵀ/M (and a kept K_nM) once per λ.

**The normal matrix.** When K_nM fits no memory budget, every pass recomputes it, and the
elementwise part dominates a pass (arc-cosine kernels: ≈ 20–28 ns an entry on one core, more
than the n·M·d Gram product for d ≤ 450). At M = 16,384 one Cholesky factor is 2.1 GB, so
the 4 GB factor budget ran the kernel grid's 14 ridges as 14 loops: ≈ 200 passes. The path
then keeps instead G = K_nMᵀK_nM (M × M, 8M² bytes, taken from ``factor_budget``), formed in
ONE pass (the upper block triangle by GEMM, n·M² flops, mirrored in place) together with
K_nMᵀy; every round's product is G β (2M² flops a column, no kernel evaluation). G costs as
many flops as ≈ M/(2d + c) passes (c ≈ 900 flop-equivalents of elementwise work an entry):
≈ 23 passes at M = 16,384, d = 128, against 14 loops of 3–25 rounds (measured: 1,478 s
against ≈ 10,250 s, ``benchmarks/bench_kernels.py --damian``). In exact arithmetic the
products are those of the recomputed path. In floating point they are not equally good: G β's
round-off (ε‖G‖‖β‖) falls in every direction of the centers' space, and the preconditioner's
T⁻ᵀ amplifies it along K_MM's small eigenvalues, where K_nMᵀ(K_nM β)'s falls in K_nMᵀ's range.
For the RF kernel at d = 128 the two preconditioned products differ by 1e-7 relative, and CG's
residual stalls above tol = 1e-8 at small λ (3.1e-8 at n = 32,768, M = 8192; 7.8e-8 at
n = 65,536, M = 16,384, where validation then refused every ridge ≤ 5e-6). Such columns are
refined (:class:`lazylab.solvers.batched_cg.BatchedCG`): their residuals recomputed through
K_nM's rows, CG restarted from them with G's products, and checked again through the rows, so
their certificate is the residual of the K_nMᵀK_nM system (the others' that of the G system).
Checked at n = 32,768, M = 8192 (RF kernel, 7 ridges, one core; a script, not a benchmark):
every ridge converges (46 iterations at the smallest, where 41 stalled), the refinement's
passes over K_nM cost ≈ 124 s against 91 s, the validation risks unchanged to 4 digits.

With the normal matrix the rounds are cheap (≈ 2M² flops a column for G β, four triangular
solves) and the Choleskys of TTᵀ/M + λI (M³/3 each) are half of what is left. So there the
ridges run in windows λ₀ ≤ λ ≤ ``SHARED_SPAN``·λ₀ (by increasing λ) that share ONE factor A_λ₀:
any invertible A gives the same α = T⁻¹A⁻¹β/√n at convergence, and with A_λ₀ the preconditioned
matrix is ≈ A_λ₀⁻ᵀ(TTᵀ/M + λI)A_λ₀⁻¹, whose eigenvalues lie in [1, λ/λ₀] (FALKON's own
approximation T⁻ᵀK_nMᵀK_nM T⁻¹/n ≈ TTᵀ/M): a condition number ≤ 100 more, CG rounds that cost
no kernel pass. The certificate is that of the system each column solves (its own A). Measured
(``benchmarks/bench_kernels.py --normal``, the 14 ridges of the kernel grid, d = 128, M = 2048):
6 factors instead of 14, 122 rounds in 6 loops instead of 194 in 14 (a column far from its
window's λ₀ takes up to 42 iterations instead of 7), 1.04× there, where a Cholesky is cheap;
the 8 factorizations it saves are 8·M³/3 flops, ≈ 1.2·10¹³ at M = 16,384. Test predictions
within 10⁻⁸ relative of the per-λ factors' (each certified to tol = 10⁻⁸).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.solvers.batched_cg import BatchedCG
from lazylab.solvers.structured import upper_outer
from lazylab.solvers.kernel_ridge import (DEFAULT_MEMORY_BUDGET, KernelRidgeSolution,
                                          _center_factor, _NystromProducts, _options, _storage,
                                          _triangular, _upper_cholesky_in_place, _validate,
                                          kernel_matrix)

__all__ = ["falkon_path", "FACTORIZATIONS", "DEFAULT_FACTOR_BUDGET"]

Tensor = torch.Tensor
FACTORIZATIONS = ("cholesky", "eigh")
"""How the path factors TTᵀ/M + λI: "cholesky" per λ, or "eigh" once (module docstring)."""

DEFAULT_FACTOR_BUDGET = 4e9
"""Bytes of M × M matrices (8M² each: the normal matrix when kept, the Cholesky factors A_λ) the
path holds at once beyond T: 14 factors share one CG loop up to M ≈ 5900; above, the ridges run
in groups (at M = 16,384, one matrix is 2.1 GB: the normal matrix and one factor at a time)."""


class _CholeskyFactors:
    """A_λ = chol(TTᵀ/M + λI) (upper) for every λ: the single fit's factor, L·M² floats."""

    def __init__(self, gram: Tensor, ridges: Tensor):
        m = gram.shape[0]
        buffers = torch.empty(len(ridges), m, m, dtype=torch.float64, device=gram.device)
        self.inner = []
        for k, ridge in enumerate(ridges.tolist()):  # in place: no M × M temporaries
            buffers[k].copy_(gram).diagonal().add_(ridge)
            self.inner.append(_upper_cholesky_in_place(buffers[k]))

    def inverse(self, beta: Tensor, columns: list[int]) -> Tensor:
        """A_λ⁻¹ β for each column: β (M, L′, k), ``columns`` the L′ ridge indices."""
        return torch.stack([_triangular(self.inner[j], beta[:, i], transpose=False)
                            for i, j in enumerate(columns)], dim=1)

    def inverse_t(self, vector: Tensor, columns: list[int]) -> Tensor:
        """A_λ⁻ᵀ v for each column."""
        return torch.stack([_triangular(self.inner[j], vector[:, i], transpose=True)
                            for i, j in enumerate(columns)], dim=1)


class _EigenFactors:
    """A_λ = (Λ + λ)^{1/2}Qᵀ from one TTᵀ/M = QΛQᵀ (Λ clamped at 0): M² floats for all λ."""

    def __init__(self, gram: Tensor, ridges: Tensor):
        values, self.vectors = torch.linalg.eigh(gram)
        self.scales = (values.clamp(min=0.0)[:, None] + ridges[None, :]).rsqrt()  # (M, L)

    def inverse(self, beta: Tensor, columns: list[int]) -> Tensor:
        """Q (Λ + λ)^{-1/2} β for each column: β (M, L′, k)."""
        scaled = self.scales[:, columns, None] * beta
        return (self.vectors @ scaled.reshape(beta.shape[0], -1)).reshape(beta.shape)

    def inverse_t(self, vector: Tensor, columns: list[int]) -> Tensor:
        """(Λ + λ)^{-1/2} Qᵀ v for each column."""
        rotated = (self.vectors.T @ vector.reshape(vector.shape[0], -1)).reshape(vector.shape)
        return self.scales[:, columns, None] * rotated


class _SharedFactor:
    """One A = chol(TTᵀ/M + λ₀I), λ₀ the group's smallest λ, preconditioning every column of a
    group (normal storage, module docstring): M² floats and one Cholesky for the group."""

    def __init__(self, gram: Tensor, ridges: Tensor):
        buffer = gram.clone()
        buffer.diagonal().add_(float(ridges.min()))
        self.inner = _upper_cholesky_in_place(buffer)

    def inverse(self, beta: Tensor, columns: list[int]) -> Tensor:  # noqa: ARG002
        """A⁻¹ β for every column at once."""
        flat = beta.reshape(beta.shape[0], -1)
        return _triangular(self.inner, flat, transpose=False).reshape(beta.shape)

    def inverse_t(self, vector: Tensor, columns: list[int]) -> Tensor:  # noqa: ARG002
        """A⁻ᵀ v for every column at once."""
        flat = vector.reshape(vector.shape[0], -1)
        return _triangular(self.inner, flat, transpose=True).reshape(vector.shape)


_FACTORS = {"cholesky": _CholeskyFactors, "eigh": _EigenFactors, "shared": _SharedFactor}

SHARED_SPAN = 100.0
"""With the normal matrix kept (storage "normal", Cholesky factorization), the ridges within this
factor of a group's smallest λ₀ share its preconditioner factor A_λ₀ (module docstring)."""


def _operator(products: _NystromProducts, factor: Tensor, factors, ridges: Tensor, n: int,
              rows: bool = False):
    """(β (M, L′, k), ridge indices) ↦ W_λ β per column, with one K_nMᵀK_nM product for all
    (through K_nM's rows even where the normal matrix is kept if ``rows``)."""

    def apply(beta: Tensor, columns: list[int]) -> Tensor:
        inverse_a = factors.inverse(beta, columns)
        flat = _triangular(factor, inverse_a.reshape(beta.shape[0], -1), transpose=False)
        data = _triangular(factor, products.normal(flat, rows=rows), transpose=True)
        data = data.reshape(beta.shape)
        return factors.inverse_t(data / n + ridges[None, columns, None] * inverse_a, columns)

    return apply


def _groups(ridges: list[float], centers: int, factorization: str, budget: float
            ) -> list[list[int]]:
    """Ridge indices by increasing λ, in groups whose Cholesky factors (8M² bytes each) fit
    ``budget`` (at least one per group); one group for "eigh"; for "shared", the windows of
    λ ≤ SHARED_SPAN·λ₀ from each group's smallest λ₀ (one factor each)."""
    order = sorted(range(len(ridges)), key=ridges.__getitem__)
    if factorization == "shared":
        groups = []
        for j in order:
            if groups and ridges[j] <= SHARED_SPAN * ridges[groups[-1][0]]:
                groups[-1].append(j)
            else:
                groups.append([j])
        return groups
    size = len(ridges) if factorization == "eigh" else max(1, int(budget // (8 * centers**2)))
    return [order[start:start + size] for start in range(0, len(order), size)]


def _checked_ridges(ridges) -> list[float]:
    values = [checks.ridge(r, f"ridges[{k}]") for k, r in enumerate(ridges)]
    if not values:
        raise ValueError("ridges must be a non-empty sequence of penalties λ > 0, got []")
    for k, value in enumerate(values):
        if not value > 0:
            raise ValueError(f"ridges[{k}] must be > 0 for FALKON, got {value!r}")
    return values


def falkon_path(kernel, x: Tensor, y: Tensor, ridges, *, n_centers: int | None = None,
                rng: np.random.Generator, tol: float = 1e-8, max_iter: int | None = 100,
                block_size: int | None = None, memory_budget: float = DEFAULT_MEMORY_BUDGET,
                single_storage: bool = True, factorization: str = "cholesky",
                factor_budget: float = DEFAULT_FACTOR_BUDGET, normal_matrix: bool | None = None,
                device: str | torch.device | None = None) -> list[KernelRidgeSolution]:
    """FALKON at every λ of ``ridges`` from one set of centers and one CG loop (module docstring).

    Each solution is what ``kernel_ridge(kernel, x, y, ridge=λ, method="falkon", ...)`` returns
    with the same arguments and the same generator state, up to round-off (the CG certificate
    holds for each column: ``residual`` ≤ ``tol`` when ``converged``). Solutions share one
    centers tensor.

    Args:
        kernel, x (n, d), y (n,) or (n, k), n_centers, tol, max_iter, block_size,
            memory_budget, single_storage, device: as :func:`lazylab.solvers.kernel_ridge`
            (K_nM kept in float64, float32 or recomputed by the same rule).
        ridges: the λ > 0, any order; solutions come back in that order.
        rng: draws the centers, once (``rng.choice(n, M, replace=False)`` as the single fit).
        factorization: "cholesky" (A_λ per λ, the single fit's; with the normal matrix, one
            A_λ₀ per window of λ ≤ SHARED_SPAN·λ₀) or "eigh" (one eigendecomposition for all
            λ; slow on CPU, module docstring).
        factor_budget: bytes of M × M float64 matrices the path holds at once beyond T: the
            normal matrix when kept, then the Cholesky factors (8M² each, at least one): the
            ridges run in groups of that many, by increasing λ, one CG loop per group.
        normal_matrix: keep G = K_nMᵀK_nM (storage "normal") where K_nM would be recomputed
            per round: None (default) when its 8M² bytes fit ``factor_budget``, True always,
            False never (module docstring: when it pays).
    """
    if normal_matrix is not None and not isinstance(normal_matrix, bool):
        raise TypeError(f"normal_matrix must be True, False or None, got {normal_matrix!r}")
    values = _checked_ridges(ridges)
    x, y, _ = _validate(x, y, values[0], "falkon", n_centers, rng, tol, max_iter, device)
    checks.choice(factorization, "factorization", FACTORIZATIONS)
    if not float(factor_budget) >= 0:
        raise ValueError(f"factor_budget must be a number of bytes >= 0, got {factor_budget!r}")
    options = _options(x.shape[0], n_centers=n_centers, rng=rng, tol=tol, max_iter=max_iter,
                       block_size=block_size, memory_budget=memory_budget,
                       single_storage=single_storage)
    m = options["n_centers"]
    centers, factor, jitter = _centers(kernel, x, m, rng, block_size)
    storage, factorization, factor_budget = _plan(
        _storage(x.shape[0] * m, options["memory_budget"], options["single_storage"]),
        factorization, float(factor_budget), normal_matrix, m)
    targets = y[:, None] if y.ndim == 1 else y
    products = _NystromProducts(kernel, x, centers, block_size, storage, targets)
    projected = _triangular(factor, products.transpose(targets), transpose=True)  # T⁻ᵀK_nMᵀy
    budget = m * targets.shape[1] if options["max_iter"] is None else options["max_iter"]
    gram, solutions = upper_outer(factor).div_(m), [None] * len(values)
    for group in _groups(values, m, factorization, factor_budget):
        ridge_tensor = torch.tensor([values[j] for j in group], dtype=torch.float64,
                                    device=x.device)
        coefs, path = _solve_group(products, factor, _FACTORS[factorization](gram, ridge_tensor),
                                   ridge_tensor, projected, options["tol"], budget)
        for k, j in enumerate(group):
            solutions[j] = _solution(kernel, centers, coefs[:, k, 0] if y.ndim == 1
                                     else coefs[:, k], path.outcome(k), jitter, storage)
        del coefs, path  # this group's factors go before the next group's are made
    return solutions


def _plan(storage: str, factorization: str, factor_budget: float, normal_matrix: bool | None,
          m: int) -> tuple[str, str, float]:
    """(storage, factorization, bytes left for factors): the normal matrix where K_nM would be
    recomputed and ``normal_matrix`` asks for it or (None) its 8M² bytes fit the budget, then
    with Cholesky factors shared by windows of λ (module docstring)."""
    if storage == "recomputed" and (normal_matrix or (normal_matrix is None
                                                      and 8 * m * m <= factor_budget)):
        shared = "shared" if factorization == "cholesky" else factorization
        return "normal", shared, factor_budget - 8 * m * m
    return storage, factorization, factor_budget


def _solve_group(products: _NystromProducts, factor: Tensor, factors, ridges: Tensor,
                 projected: Tensor, tol: float, budget: int) -> tuple[Tensor, BatchedCG]:
    """α_λ = T⁻¹A_λ⁻¹β_λ/√n, (M, L, k), for the L ridges of one group, and their CG loop;
    with the normal matrix, the columns that stagnate are refined through K_nM's rows."""
    m, n, every = factor.shape[0], products.x.shape[0], list(range(len(ridges)))
    rhs = factors.inverse_t(projected[:, None].expand(m, len(ridges), -1), every) / math.sqrt(n)
    path = BatchedCG(_operator(products, factor, factors, ridges, n), rhs, tol, budget)
    path.run()
    if products.normal_matrix is not None:
        path.refine(_operator(products, factor, factors, ridges, n, rows=True))
    coefs = _triangular(factor, factors.inverse(path.x, every).reshape(m, -1), transpose=False)
    return coefs.reshape(path.x.shape) / math.sqrt(n), path


def _solution(kernel, centers: Tensor, coef: Tensor, outcome: tuple, jitter: float,
              storage: str) -> KernelRidgeSolution:
    _, iterations, residual, converged, reason = outcome
    return KernelRidgeSolution(kernel, centers, coef.clone(), "falkon", iterations, residual,
                               converged, jitter, storage, reason)


def _centers(kernel, x: Tensor, m: int, rng: np.random.Generator, block_size: int | None
             ) -> tuple[Tensor, Tensor, float]:
    """(centers (M, d), T, δ): the single fit's draw and its factor TᵀT = K_MM + δI."""
    indices = rng.choice(x.shape[0], size=m, replace=False)
    centers = x[torch.as_tensor(np.sort(indices), device=x.device)]
    kernel_mm = kernel_matrix(kernel, centers, centers, block_size=block_size)
    factor, jitter = _center_factor(kernel_mm)
    return centers, factor, jitter
