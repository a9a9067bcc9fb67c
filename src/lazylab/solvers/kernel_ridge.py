"""Kernel ridge regression: exact (Cholesky) and FALKON (Nyström + preconditioned CG).

Notation: x (n × d) training inputs, y (n,) or (n × k) targets, k(·, ·) the kernel, K = k(x, x),
λ = ``ridge``. Both methods minimize

    (1/n) Σᵢ (yᵢ − f(xᵢ))² + λ ‖f‖²_H ,

"cholesky" exactly: f = Σᵢ αᵢ k(xᵢ, ·) with α = (K + nλI)⁻¹ y;
"falkon" over the span of M Nyström centers c₁..c_M drawn uniformly without replacement from x
(Rudi, Carratino & Rosasco 2017, "FALKON: An Optimal Large Scale Kernel Method"): f = Σⱼ αⱼ k(cⱼ, ·)
with α solving the M × M normal equations

    H α = K_nMᵀ y,   H = K_nMᵀ K_nM + λ n K_MM .                                  (FALKON eq. 8)

Preconditioner (FALKON Alg. 1): T upper triangular with TᵀT = K_MM + δI (Cholesky; the jitter
δ = 10⁻¹¹ · mean diag K_MM, raised tenfold until the factorization succeeds, is reported),
A = chol(TTᵀ/M + λI) (TTᵀ in M³/3 flops: :func:`~lazylab.solvers.structured.upper_outer`),
B = n^{-1/2} T⁻¹A⁻¹. Conjugate gradient runs on

    BᵀH_δB β = BᵀK_nMᵀy,   BᵀH_δB = A⁻ᵀ(T⁻ᵀK_nMᵀK_nM T⁻¹/n + λI)A⁻¹,   α = Bβ,

with H_δ = K_nMᵀK_nM + λn(K_MM + δI): the jitter is a ridge λnδ‖α‖² on the coefficients, negligible
beside λnK_MM on every direction whose K_MM eigenvalue is ≫ δ (the others barely move predictions).
CG stops when the relative residual of this system is below ``tol``; its iteration count, final
(recomputed) residual and ``converged`` are returned, and an unconverged fit says so. K_nM (n × M)
is computed once and kept in float64 when n·M·8 bytes fit ``memory_budget``, else in float32 when
n·M·4 bytes do, else each CG product recomputes it in row blocks (memory O(block·M + M²)). Products
accumulate in float64 whatever the storage, a kept K_nM passing through them in blocks of
``_CACHE_ENTRIES`` upcast entries, so that both block products reuse a block while it is in cache
(one read of K_nM per CG product). The float32 copy rounds each entry once (relative error ≤ 2⁻²⁴ ≈
6·10⁻⁸): CG then solves the Nyström system of the rounded K_nM to ``tol``, and the predictions move
by a few 2⁻²⁴ relative to max|f| (measured 5·10⁻⁸ to 1.4·10⁻⁷ for RBF and NTK kernels, λ = 10⁻³ and
10⁻⁵; tested at 10⁻⁶). Everything follows ``device`` (default: x's), so the same code runs on CUDA.
A grid of λ (validated ridge): :func:`lazylab.solvers.falkon.falkon_path` shares the centers, T and
every pass over K_nM among all λ.

"cholesky" factors K + nλI in place (from n = 4096 on, where the trace bounds its condition by
10⁶, a float32 factor refined in float64, route "cholesky-mixed": half the flops) and reports
no residual (NaN): an honest one would need a second full kernel evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lazylab import _checks as checks

from lazylab.solvers.cg import conjugate_gradient
from lazylab.solvers.ridge import cholesky_in_place, solve_shifted
from lazylab.solvers.structured import upper_outer

__all__ = ["KernelRidgeSolution", "kernel_matrix", "kernel_ridge", "CHOLESKY_MAX_SAMPLES",
           "DEFAULT_MEMORY_BUDGET"]

Tensor = torch.Tensor
Kernel = Callable[[Tensor, Tensor], Tensor]

CHOLESKY_MAX_SAMPLES = 20_000
"""Largest n that ``method="auto"`` solves exactly (the n × n float64 K is 3.2 GB there)."""

DEFAULT_MEMORY_BUDGET = 2e9
"""Bytes FALKON may spend on keeping the n × M K_nM (float64) in memory."""

_JITTER = 1e-11
"""δ / mean diag K_MM. Rounding errors reach the CG operator amplified through T⁻¹ by up to
ε/δ; at M·ε (the paper's choice) the recomputed residual stalls near 10⁻⁷ on numerically
singular K_MM (smooth kernels, low d), at 10⁻¹¹ near 1.5·10⁻⁸ (measured, RBF in d = 2, M = n =
400); a ``tol`` below such a floor ends with stop_reason "stagnated" and converged False."""

_BLOCK_ENTRIES = 1 << 22  # kernel blocks of about 4·10⁶ entries (32 MB in float64)
_CACHE_ENTRIES = 1 << 20  # product blocks of a stored K_nM: 8 MB in float64
_NORMAL_COLUMNS = 2048  # column blocks of K_nMᵀK_nM's upper triangle (GEMM-sized)


def _rows_per_block(columns: int, block_size: int | None) -> int:
    return max(1, _BLOCK_ENTRIES // max(columns, 1)) if block_size is None else int(block_size)


def _kernel_block(kernel: Kernel, x1: Tensor, x2: Tensor) -> Tensor:
    block = torch.as_tensor(kernel(x1, x2))
    if block.shape != (x1.shape[0], x2.shape[0]):
        raise ValueError(f"kernel(x1, x2) must return shape ({x1.shape[0]}, {x2.shape[0]}) for "
                         f"x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)}, got {tuple(block.shape)}")
    return block.to(torch.float64)


def kernel_matrix(kernel: Kernel, x1: Tensor, x2: Tensor, *, block_size: int | None = None,
                  dtype: torch.dtype = torch.float64) -> Tensor:
    """k(x1, x2), (n1, n2), evaluated in float64 row blocks into one preallocated matrix.

    Args:
        kernel: (b, d), (n2, d) ↦ (b, n2) tensor.
        x1, x2: (n1, d) and (n2, d) on the same device.
        block_size: rows per kernel call (default: about 4·10⁶ entries per block).
        dtype: storage of the result (float32 rounds each float64 entry once).
    """
    n1 = x1.shape[0]
    out = torch.empty(n1, x2.shape[0], dtype=dtype, device=x1.device)
    rows = _rows_per_block(x2.shape[0], block_size)
    for start in range(0, n1, rows):
        out[start:start + rows] = _kernel_block(kernel, x1[start:start + rows], x2)
    return out


@dataclass(frozen=True)
class KernelRidgeSolution:
    """A fitted kernel predictor f(x) = Σⱼ αⱼ k(cⱼ, x).

    Attributes:
        kernel: the kernel callable.
        centers: cⱼ, (m, d) float64: all of x for "cholesky", the Nyström centers for "falkon".
        coef: α, (m,) or (m, k) float64.
        method: "cholesky", "eigh" (Cholesky failed; pseudo-inverse by eigendecomposition) or
            "falkon".
        iterations: CG iterations (0 for the direct methods).
        residual: falkon: final relative residual ‖b − Wβ‖/‖b‖ of the preconditioned system
            (recomputed after CG); NaN for the direct methods (not computed).
        converged: whether CG reached ``tol`` (True for the direct methods).
        jitter: δ added to K_MM's diagonal for its Cholesky factor (falkon; 0 otherwise).
        storage: how falkon held K_nM: "float64" or "float32" (kept in memory),
            "recomputed" (row blocks per product) or "normal" (only K_nMᵀK_nM kept:
            :func:`lazylab.solvers.falkon.falkon_path`); "" for the direct methods.
        stop_reason: CG's (:data:`lazylab.solvers.cg.STOP_REASONS`); "direct" otherwise.
    """

    kernel: Kernel
    centers: Tensor
    coef: Tensor
    method: str
    iterations: int
    residual: float
    converged: bool
    jitter: float = 0.0
    storage: str = ""
    stop_reason: str = "direct"

    def predict(self, x_new: Tensor, *, block_size: int | None = None) -> Tensor:
        """f(x_new), (m,) or (m, k), for x_new (m, d), in row blocks."""
        x_new = torch.as_tensor(x_new, device=self.centers.device).to(torch.float64)
        rows = _rows_per_block(self.centers.shape[0], block_size)
        parts = [_kernel_block(self.kernel, x_new[s:s + rows], self.centers) @ self.coef
                 for s in range(0, x_new.shape[0], rows)]
        return torch.cat(parts, dim=0)


def _fit_cholesky(kernel: Kernel, x: Tensor, y: Tensor, ridge: float, options: dict
                  ) -> KernelRidgeSolution:
    """α = (K + nλI)⁻¹y by :func:`~lazylab.solvers.ridge.solve_shifted`: K factored in place
    (the one large allocation), or from n = 4096 on, where the trace bounds cond(K + nλI) by
    10⁶, a float32 factor refined to float64 accuracy beside it (route "cholesky-mixed")."""
    n, block_size = x.shape[0], options["block_size"]

    def regularized() -> Tensor:
        matrix = kernel_matrix(kernel, x, x, block_size=block_size)
        matrix.diagonal().add_(n * ridge)
        return matrix

    coef, route = solve_shifted(regularized(), y, n * ridge, rebuild=regularized)
    return KernelRidgeSolution(kernel, x, coef, route, 0, math.nan, True)


class _NystromProducts:
    """v ↦ K_nMᵀv and α ↦ K_nMᵀK_nM α, K_nM kept in ``storage`` or recomputed in row blocks.

    Products always accumulate in float64: float32-stored rows are upcast block by block.
    Storage "normal" keeps G = K_nMᵀK_nM (M × M, float64) instead, formed in one pass over
    recomputed row blocks (upper block triangle only, then mirrored: n·M² flops); a product is
    then G α (2M² flops per column, no pass over K_nM). K_nMᵀ``targets`` is formed in that same
    pass, so ``transpose(targets)`` costs nothing more; any other vector costs one pass.
    """

    def __init__(self, kernel: Kernel, x: Tensor, centers: Tensor, block_size: int | None,
                 storage: str, targets: Tensor | None = None):
        self.kernel, self.x, self.centers = kernel, x, centers
        self.rows = _rows_per_block(centers.shape[0], block_size)
        # stored rows go through the products in cache-sized float64 blocks: one read of
        # K_nM per product (block (block α) and blockᵀv reuse the block while it is in cache)
        self.cached_rows = max(1, _CACHE_ENTRIES // max(centers.shape[0], 1))
        self.stored = self.normal_matrix = self._targets = None
        if storage == "normal":
            if targets is None:
                raise ValueError("storage 'normal' forms K_nMᵀtargets in its pass: pass targets")
            self._targets = targets
            self.normal_matrix, self._transposed_targets = self._normal_pass(targets)
        elif storage != "recomputed":
            self.stored = kernel_matrix(kernel, x, centers, block_size=block_size,
                                        dtype=getattr(torch, storage))

    def _blocks(self):
        if self.stored is None:
            for start in range(0, self.x.shape[0], self.rows):
                yield start, _kernel_block(self.kernel, self.x[start:start + self.rows],
                                           self.centers)
            return
        for start in range(0, self.x.shape[0], self.cached_rows):
            yield start, self.stored[start:start + self.cached_rows].to(torch.float64)

    def _normal_pass(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """(K_nMᵀK_nM, K_nMᵀtargets) in one pass: blockᵀblock on the block rows' diagonal
        block and right of it (half the flops of the whole product), then mirrored in place."""
        m = self.centers.shape[0]
        gram = torch.zeros(m, m, dtype=torch.float64, device=self.x.device)
        transposed = torch.zeros(m, *targets.shape[1:], dtype=torch.float64, device=self.x.device)
        width = max(1, min(m, _NORMAL_COLUMNS))
        for start, block in self._blocks():
            for first in range(0, m, width):
                gram[first:first + width, first:].addmm_(block[:, first:first + width].T,
                                                         block[:, first:])
            transposed += block.T @ targets[start:start + block.shape[0]]
        for first in range(0, m, width):  # the diagonal blocks are whole: mirror the others
            gram[first + width:, first:first + width] = gram[first:first + width,
                                                             first + width:].T
        return gram, transposed

    def transpose(self, vector: Tensor) -> Tensor:
        """K_nMᵀ v for v (n, ...)."""
        if self._targets is not None and vector is self._targets:
            return self._transposed_targets
        return sum(block.T @ vector[start:start + block.shape[0]]
                   for start, block in self._blocks())

    def normal(self, coef: Tensor, *, rows: bool = False) -> Tensor:
        """K_nMᵀ K_nM α for α (M, ...); through K_nM's rows even where G is kept if ``rows``."""
        if self.normal_matrix is not None and not rows:
            return self.normal_matrix @ coef
        return sum(block.T @ (block @ coef) for _, block in self._blocks())


def _triangular(factor: Tensor, rhs: Tensor, *, transpose: bool) -> Tensor:
    """U⁻¹ r (or U⁻ᵀ r when ``transpose``) for upper triangular U, r (M,) or (M, k)."""
    column = rhs.ndim == 1
    rhs2 = rhs.unsqueeze(1) if column else rhs
    out = torch.linalg.solve_triangular(factor.mT if transpose else factor, rhs2,
                                        upper=not transpose)
    return out[:, 0] if column else out


def _center_factor(kernel_mm: Tensor) -> tuple[Tensor, float]:
    """(T, δ): TᵀT = K_MM + δI, T upper triangular (Cholesky; δ raised tenfold until it works).

    Reads K_MM's upper triangle only (a kernel's K_MM is symmetric up to round-off) and adds δ
    to its diagonal in place (``kernel_mm`` is scratch): no M × M temporaries beside T.
    """
    jitter = _JITTER * max(float(kernel_mm.diagonal().mean()), 1e-300)
    added = 0.0
    for _ in range(12):
        kernel_mm.diagonal().add_(jitter - added)
        added = jitter
        factor, info = torch.linalg.cholesky_ex(kernel_mm, upper=True)
        if int(info) == 0:
            break
        jitter *= 10.0
    else:
        raise ValueError(f"K_MM + δI is not positive definite even with jitter δ = {jitter:.3g}; "
                         f"the kernel is not positive semi-definite on the centers")
    return factor, jitter


def _falkon_factors(kernel_mm: Tensor, ridge: float) -> tuple[Tensor, Tensor, float]:
    """(T, A, δ): TᵀT = K_MM + δI and AᵀA = TTᵀ/M + λI, both upper triangular (Cholesky);
    ``kernel_mm`` is scratch (:func:`_center_factor`)."""
    factor, jitter = _center_factor(kernel_mm)
    inner = upper_outer(factor).div_(factor.shape[0])
    inner.diagonal().add_(ridge)
    return factor, _upper_cholesky_in_place(inner), jitter


def _upper_cholesky_in_place(matrix: Tensor) -> Tensor:
    """U with UᵀU = TTᵀ/M + λI (λ > 0: positive definite) over ``matrix``'s own storage
    (:func:`lazylab.solvers.ridge.cholesky_in_place`)."""
    factor, ok = cholesky_in_place(matrix)
    if not ok:
        raise ValueError("TTᵀ/M + λI is not numerically positive definite; is λ > 0?")
    return factor


def _storage(entries: int, budget: float, single: bool) -> str:
    """float64 if K_nM fits the budget, else float32 (when ``single``) if that fits, else none."""
    if entries * 8 <= budget:
        return "float64"
    return "float32" if single and entries * 4 <= budget else "recomputed"


def _fit_falkon(kernel: Kernel, x: Tensor, y: Tensor, ridge: float, options: dict
                ) -> KernelRidgeSolution:
    """FALKON: CG on BᵀH_δB β = BᵀK_nMᵀy, α = Bβ, B = n^{-1/2}T⁻¹A⁻¹ (module docstring)."""
    n, m, block_size = x.shape[0], options["n_centers"], options["block_size"]
    indices = options["rng"].choice(n, size=m, replace=False)
    centers = x[torch.as_tensor(np.sort(indices), device=x.device)]
    kernel_mm = kernel_matrix(kernel, centers, centers, block_size=block_size)
    factor, inner, jitter = _falkon_factors(kernel_mm, ridge)
    del kernel_mm
    storage = _storage(n * m, options["memory_budget"], options["single_storage"])
    products = _NystromProducts(kernel, x, centers, block_size, storage)

    def basis(beta: Tensor) -> Tensor:  # B β
        return _triangular(factor, _triangular(inner, beta, transpose=False),
                           transpose=False) / math.sqrt(n)

    def basis_t(vector: Tensor) -> Tensor:  # Bᵀ v
        return _triangular(inner, _triangular(factor, vector, transpose=True),
                           transpose=True) / math.sqrt(n)

    def apply(beta: Tensor) -> Tensor:
        inverse_a = _triangular(inner, beta, transpose=False)
        data = _triangular(factor, products.normal(_triangular(factor, inverse_a,
                                                               transpose=False)), transpose=True)
        return _triangular(inner, data / n + ridge * inverse_a, transpose=True)

    result = conjugate_gradient(apply, basis_t(products.transpose(y)), tol=options["tol"],
                                max_iter=options["max_iter"])
    return KernelRidgeSolution(kernel, centers, basis(result.solution), "falkon", result.iterations,
                               result.residual, result.converged, jitter, storage,
                               result.stop_reason)


_METHODS = {"cholesky": _fit_cholesky, "falkon": _fit_falkon}


def _validate(x, y, ridge, method, n_centers, rng, tol, max_iter, device
              ) -> tuple[Tensor, Tensor, str]:
    x = torch.as_tensor(x, device=device)
    y = torch.as_tensor(y, device=x.device)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, d) with n >= 1, got shape {tuple(x.shape)}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) or ({x.shape[0]}, k) to match x of "
                         f"shape {tuple(x.shape)}, got shape {tuple(y.shape)}")
    checks.ridge(ridge)
    if method == "auto":
        method = "cholesky" if x.shape[0] <= CHOLESKY_MAX_SAMPLES else "falkon"
    if method not in _METHODS:
        raise ValueError(f"method must be 'auto' or one of {sorted(_METHODS)}, got {method!r}")
    if method == "falkon":
        _validate_falkon(x.shape[0], ridge, n_centers, rng)
    checks.positive_float(tol, "tol")
    checks.optional(checks.positive_int, max_iter, "max_iter")
    return x.to(torch.float64), y.to(torch.float64), method


def _validate_falkon(n, ridge, n_centers, rng) -> None:
    if float(ridge) <= 0.0:
        raise ValueError(f"ridge must be > 0 for method='falkon', got {ridge!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator for method='falkon' (it draws "
                        f"the Nyström centers), got {type(rng).__name__}")
    if n_centers is not None and not 1 <= int(n_centers) <= n:
        raise ValueError(f"n_centers must be in [1, n={n}], got {n_centers!r}")


def kernel_ridge(kernel: Kernel, x: Tensor, y: Tensor, *, ridge: float, method: str = "auto",
                 n_centers: int | None = None, rng: np.random.Generator | None = None,
                 tol: float = 1e-8, max_iter: int | None = 100, block_size: int | None = None,
                 memory_budget: float = DEFAULT_MEMORY_BUDGET, single_storage: bool = True,
                 device: str | torch.device | None = None) -> KernelRidgeSolution:
    """Minimize (1/n)Σᵢ(yᵢ − f(xᵢ))² + λ‖f‖²_H over the RKHS of ``kernel``.

    Args:
        kernel: (n1, d), (n2, d) ↦ (n1, n2) tensor; called on row blocks.
        x: (n, d) inputs; computed in float64 on ``device``.
        y: (n,) or (n, k) targets.
        ridge: λ ≥ 0 (> 0 for "falkon"); λ = 0 with "cholesky" interpolates (pseudo-inverse
            fallback when K is singular).
        method: "cholesky" (exact α = (K + nλI)⁻¹y), "falkon", or "auto": cholesky for
            n ≤ ``CHOLESKY_MAX_SAMPLES`` = 2·10⁴, falkon above.
        n_centers: M for falkon; default min(n, ⌈5√n⌉) (FALKON's optimal rates need M of
            order √n up to log factors).
        rng: numpy Generator drawing the centers (required for falkon).
        tol: CG tolerance on the relative residual of the preconditioned system (falkon).
        max_iter: CG iteration budget (falkon); None means M. Reaching it unconverged returns
            ``converged=False``.
        block_size: rows per kernel block (default about 4·10⁶ entries per block).
        memory_budget: bytes falkon may spend on keeping K_nM; default 2 GB. K_nM is kept
            in float64 when n·M·8 bytes fit, else in float32 when n·M·4 fit and
            ``single_storage``, else recomputed in row blocks at every product.
        single_storage: allow the float32 copy of K_nM (module docstring: its error).
        device: where kernels, factorizations and CG run ("cpu", "cuda", ...); default x's.
    """
    x, y, method = _validate(x, y, ridge, method, n_centers, rng, tol, max_iter, device)
    options = _options(x.shape[0], n_centers=n_centers, rng=rng, tol=tol, max_iter=max_iter,
                       block_size=block_size, memory_budget=memory_budget,
                       single_storage=single_storage)
    return _METHODS[method](kernel, x, y, float(ridge), options)


def _options(n: int, *, n_centers, rng, tol, max_iter, block_size, memory_budget,
             single_storage) -> dict:
    """The validated options of a fit on n samples (M defaults to min(n, ⌈5√n⌉))."""
    if not float(memory_budget) >= 0:
        raise ValueError(f"memory_budget must be a number of bytes >= 0, got {memory_budget!r}")
    return {"block_size": block_size, "rng": rng, "tol": float(tol),
            "max_iter": None if max_iter is None else int(max_iter),
            "memory_budget": float(memory_budget), "single_storage": bool(single_storage),
            "n_centers": min(n, math.ceil(5 * math.sqrt(n))) if n_centers is None
            else int(n_centers)}
