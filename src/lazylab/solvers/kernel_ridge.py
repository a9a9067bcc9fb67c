"""Kernel ridge regression: exact (Cholesky) and FALKON (Nyström + preconditioned CG).

Notation: x (n × d) training inputs, y (n,) or (n × k) targets, k(·, ·) the kernel, K = k(x, x),
λ = ``ridge``. Both methods minimize

    (1/n) Σᵢ (yᵢ − f(xᵢ))² + λ ‖f‖²_H ,

"cholesky" exactly: f = Σᵢ αᵢ k(xᵢ, ·) with α = (K + nλI)⁻¹ y;
"falkon" over the span of M Nyström centers c₁..c_M drawn uniformly without replacement from x
(Rudi, Carratino & Rosasco 2017, "FALKON: An Optimal Large Scale Kernel Method"): f = Σⱼ αⱼ k(cⱼ, ·)
with α solving the M × M normal equations

    H α = K_nMᵀ y,   H = K_nMᵀ K_nM + λ n K_MM .                                  (FALKON eq. 8)

Preconditioner (FALKON Alg. 1 in its rank-revealing form, their remark on singular K_MM): with
K_MM = U Λ Uᵀ and U_r, Λ_r the eigenpairs above the cut-off M · ε · λ_max, take T = Λ_r^{1/2}U_rᵀ
(TᵀT = K_MM on its numerical range), A = chol(TTᵀ/M + λI) = diag((λᵢ/M + λ)^{1/2}) and

    B = n^{-1/2} T⁺ A⁻¹ = U_r diag(1 / (n λᵢ (λᵢ/M + λ))^{1/2}),
    BBᵀ = U_r ((n/M) Λ_r² + λ n Λ_r)⁻¹ U_rᵀ ,

the pseudo-inverse of H with K_nMᵀK_nM replaced by its Nyström estimate (n/M) K_MM². Conjugate
gradient then runs on the r × r system BᵀHB β = BᵀK_nMᵀy, and α = Bβ. Directions K_MM cannot
resolve (λᵢ below the cut-off) change predictions by O(√λᵢ) and are left out; a jittered Cholesky
(T = chol(K_MM + δI)) instead amplifies their rounding errors by 1/δ and stalls CG for smooth
kernels in low dimension. ``residual`` is the relative residual of the preconditioned system.
K_nM is recomputed in row blocks at every product: memory O(block · M + M²), never n × M.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lazylab.solvers.cg import conjugate_gradient
from lazylab.solvers.ridge import solve_symmetric

__all__ = ["KernelRidgeSolution", "kernel_matrix", "kernel_ridge", "CHOLESKY_MAX_SAMPLES"]

Tensor = torch.Tensor
Kernel = Callable[[Tensor, Tensor], Tensor]

CHOLESKY_MAX_SAMPLES = 20_000
"""Largest n that ``method="auto"`` solves exactly (the n × n float64 K is 3.2 GB there)."""

_BLOCK_ENTRIES = 1 << 22  # kernel blocks of about 4·10⁶ entries (32 MB in float64)


def _rows_per_block(columns: int, block_size: int | None) -> int:
    return max(1, _BLOCK_ENTRIES // max(columns, 1)) if block_size is None else int(block_size)


def _kernel_block(kernel: Kernel, x1: Tensor, x2: Tensor) -> Tensor:
    block = torch.as_tensor(kernel(x1, x2))
    if block.shape != (x1.shape[0], x2.shape[0]):
        raise ValueError(f"kernel(x1, x2) must return shape ({x1.shape[0]}, {x2.shape[0]}) for "
                         f"x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)}, got {tuple(block.shape)}")
    return block.to(torch.float64)


def kernel_matrix(kernel: Kernel, x1: Tensor, x2: Tensor, *,
                  block_size: int | None = None) -> Tensor:
    """k(x1, x2), (n1, n2) float64, evaluated in row blocks into one preallocated matrix.

    Args:
        kernel: (b, d), (n2, d) ↦ (b, n2) tensor.
        x1, x2: (n1, d) and (n2, d) on the same device.
        block_size: rows per kernel call (default: about 4·10⁶ entries per block).
    """
    n1 = x1.shape[0]
    out = torch.empty(n1, x2.shape[0], dtype=torch.float64, device=x1.device)
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
        residual: relative residual ‖b − Sα‖/‖b‖ of the linear system solved, recomputed from
            the kernel: S = K + nλI, b = y (direct); the preconditioned BᵀHB β = BᵀK_nMᵀy
            (falkon).
        converged: whether CG reached ``tol`` (True for the direct methods).
    """

    kernel: Kernel
    centers: Tensor
    coef: Tensor
    method: str
    iterations: int
    residual: float
    converged: bool

    def predict(self, x_new: Tensor, *, block_size: int | None = None) -> Tensor:
        """f(x_new), (m,) or (m, k), for x_new (m, d), in row blocks."""
        x_new = torch.as_tensor(x_new, device=self.centers.device).to(torch.float64)
        rows = _rows_per_block(self.centers.shape[0], block_size)
        parts = [_kernel_block(self.kernel, x_new[s:s + rows], self.centers) @ self.coef
                 for s in range(0, x_new.shape[0], rows)]
        return torch.cat(parts, dim=0)


def _fit_cholesky(kernel: Kernel, x: Tensor, y: Tensor, ridge: float, options: dict
                  ) -> KernelRidgeSolution:
    """α = (K + nλI)⁻¹y, K factored in place: the n × n K is the one large allocation."""
    n, block_size = x.shape[0], options["block_size"]

    def regularized() -> Tensor:
        matrix = kernel_matrix(kernel, x, x, block_size=block_size)
        matrix.diagonal().add_(n * ridge)
        return matrix

    coef, ok = solve_symmetric(regularized(), y, overwrite=True, rebuild=regularized)
    solution = KernelRidgeSolution(kernel, x, coef, "cholesky" if ok else "eigh", 0, 0.0, True)
    # the factor is freed by now; K·α is recomputed in row blocks for an honest residual
    applied = solution.predict(x, block_size=block_size) + (n * ridge) * coef
    return dataclasses.replace(solution, residual=_relative(y - applied, y))


def _relative(difference: Tensor, reference: Tensor) -> float:
    scale = float(torch.linalg.vector_norm(reference))
    return float(torch.linalg.vector_norm(difference)) / scale if scale > 0 else 0.0


def _transpose_pass(kernel: Kernel, x: Tensor, centers: Tensor, block_size: int | None,
                    vector: Tensor | None = None, coef: Tensor | None = None) -> Tensor:
    """K_nMᵀ v for a given v (n, ...), or K_nMᵀ K_nM α for a given α (M, ...); row blocks.

    Each (b × M) block of K_nM is computed, used and dropped: memory O(b·M).
    """
    rows = _rows_per_block(centers.shape[0], block_size)
    template = vector[0] if coef is None else coef[0]
    out = torch.zeros((centers.shape[0], *template.shape), dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        block = _kernel_block(kernel, x[start:start + rows], centers)
        source = vector[start:start + rows] if coef is None else block @ coef
        out += block.T @ source
    return out


def _falkon_basis(kernel_mm: Tensor, n: int, ridge: float) -> Tensor:
    """B = U_r diag(1/√(n λᵢ(λᵢ/M + λ))), (M, r): the FALKON preconditioner of the docstring."""
    m = kernel_mm.shape[0]
    values, vectors = torch.linalg.eigh(kernel_mm)
    keep = values > m * torch.finfo(torch.float64).eps * values.max()
    values = values[keep]
    return vectors[:, keep] * torch.rsqrt(n * values * (values / m + ridge))


def _fit_falkon(kernel: Kernel, x: Tensor, y: Tensor, ridge: float, options: dict
                ) -> KernelRidgeSolution:
    """FALKON: CG on BᵀHB β = BᵀK_nMᵀy, α = Bβ (module docstring)."""
    n, block_size = x.shape[0], options["block_size"]
    indices = options["rng"].choice(n, size=options["n_centers"], replace=False)
    centers = x[torch.as_tensor(np.sort(indices), device=x.device)]
    kernel_mm = kernel_matrix(kernel, centers, centers, block_size=block_size)
    kernel_mm = (kernel_mm + kernel_mm.T) / 2
    basis = _falkon_basis(kernel_mm, n, ridge)
    rhs = basis.T @ _transpose_pass(kernel, x, centers, block_size, vector=y)

    def apply(beta: Tensor) -> Tensor:
        alpha = basis @ beta
        return basis.T @ (_transpose_pass(kernel, x, centers, block_size, coef=alpha)
                          + (n * ridge) * (kernel_mm @ alpha))

    result = conjugate_gradient(apply, rhs, tol=options["tol"], max_iter=options["max_iter"])
    return KernelRidgeSolution(kernel, centers, basis @ result.solution, "falkon",
                               result.iterations, result.residual, result.converged)


_METHODS = {"cholesky": _fit_cholesky, "falkon": _fit_falkon}


def _validate(x, y, ridge, method, n_centers, rng, tol, max_iter) -> tuple[Tensor, Tensor, str]:
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, device=x.device)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, d) with n >= 1, got shape {tuple(x.shape)}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) or ({x.shape[0]}, k) to match x of "
                         f"shape {tuple(x.shape)}, got shape {tuple(y.shape)}")
    if not (math.isfinite(float(ridge)) and float(ridge) >= 0.0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if method == "auto":
        method = "cholesky" if x.shape[0] <= CHOLESKY_MAX_SAMPLES else "falkon"
    if method not in _METHODS:
        raise ValueError(f"method must be 'auto' or one of {sorted(_METHODS)}, got {method!r}")
    if method == "falkon":
        if float(ridge) <= 0.0:
            raise ValueError(f"ridge must be > 0 for method='falkon', got {ridge!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator for method='falkon' (it draws "
                            f"the Nyström centers), got {type(rng).__name__}")
        if n_centers is not None and not 1 <= int(n_centers) <= x.shape[0]:
            raise ValueError(f"n_centers must be in [1, n={x.shape[0]}], got {n_centers!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if max_iter is not None and int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1 or None, got {max_iter!r}")
    return x.to(torch.float64), y.to(torch.float64), method


def kernel_ridge(kernel: Kernel, x: Tensor, y: Tensor, *, ridge: float, method: str = "auto",
                 n_centers: int | None = None, rng: np.random.Generator | None = None,
                 tol: float = 1e-8, max_iter: int | None = 100,
                 block_size: int | None = None) -> KernelRidgeSolution:
    """Minimize (1/n)Σᵢ(yᵢ − f(xᵢ))² + λ‖f‖²_H over the RKHS of ``kernel``.

    Args:
        kernel: (n1, d), (n2, d) ↦ (n1, n2) tensor; called on row blocks.
        x: (n, d) inputs; the computation follows x's device, in float64.
        y: (n,) or (n, k) targets.
        ridge: λ ≥ 0 (> 0 for "falkon"); λ = 0 with "cholesky" interpolates (pseudo-inverse
            fallback when K is singular).
        method: "cholesky" (exact α = (K + nλI)⁻¹y), "falkon", or "auto": cholesky for
            n ≤ ``CHOLESKY_MAX_SAMPLES`` = 2·10⁴, falkon above.
        n_centers: M for falkon; default min(n, ⌈5√n⌉) (FALKON's optimal rates need M of
            order √n up to log factors).
        rng: numpy Generator drawing the centers (required for falkon).
        tol: CG tolerance on the relative residual of the preconditioned system (falkon).
        max_iter: CG iteration cap (falkon); None means the retained rank r ≤ M.
        block_size: rows per kernel block (default about 4·10⁶ entries per block).
    """
    x, y, method = _validate(x, y, ridge, method, n_centers, rng, tol, max_iter)
    n = x.shape[0]
    options = {"block_size": block_size, "rng": rng, "tol": float(tol),
               "max_iter": None if max_iter is None else int(max_iter),
               "n_centers": min(n, math.ceil(5 * math.sqrt(n))) if n_centers is None
               else int(n_centers)}
    return _METHODS[method](kernel, x, y, float(ridge), options)
