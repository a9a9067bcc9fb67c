"""S x = r for S = V Vᵀ + R with R close to its diagonal: CG preconditioned by D + V Vᵀ.

The random-features normal equations at n = ∞ have this shape. With Hermite coefficients λ_k
per unit, K_ij = E[σ_i σ_j] = Σ_k λ_k(i) λ_k(j) ρ_ijᵏ / k! (x Gaussian, ρ the correlation of
the pre-activations): its degree-0 and degree-1 parts have rank 1 + d, and they carry the large
eigenvalues, while the degree ≥ 2 rest R is a sum of Hadamard powers of a correlation matrix,
close to its diagonal when N ≪ d²/2 (its off-diagonal entries are O(1/d)). With V the N × r
low-rank factor and D = diag(S) − rowsums(V∘V) = diag(R) (plus the ridge),

    P = D + V Vᵀ,     P⁻¹ = D⁻¹ − D⁻¹V (I + VᵀD⁻¹V)⁻¹ VᵀD⁻¹      (Woodbury),

costs O(N r²) once and O(N r) per application, and P⁻¹S = I + P⁻¹(R − diag R) has a spectrum
near 1 (the random-features caller also puts the constant 1/d part of the degree-2 term in V:
its one large eigenvalue cost two iterations). Measured for ReLU features, d = 450, N = 4500:
15 iterations to a relative residual of 7·10⁻¹³. Each iteration is one N × N matrix-vector
product, bound by memory; :class:`LowerSymmetric` stores S by its lower triangle and reads it
once per product (N²/2 entries, against N² for a full product and N³/3 flops for a Cholesky
factorization), and :func:`low_rank_preconditioned_solution` hands back the product its
certificate computed, so that a risk xᵀSx reads S no more.

The preconditioner must be positive definite: :func:`low_rank_preconditioned_solve` declines
(returns None) when some D_ii ≤ ``floor`` · max diag S — features with no degree ≥ 2 part (a
linear σ), where S is V Vᵀ itself and singular — and when CG does not certify ``tol``; the
caller then factorizes.
"""

from __future__ import annotations

import mmap

import torch
from scipy.linalg import blas

from lazylab.solvers.cg import conjugate_gradient
from lazylab.solvers.ridge import factor_solve

__all__ = ["low_rank_preconditioned_solve", "low_rank_preconditioned_solution", "upper_outer",
           "woodbury_inverse", "LowerSymmetric", "mirror_lower", "large_empty", "lower_symv",
           "blas_symmetric"]

Tensor = torch.Tensor

MATVEC_ROWS = 128
"""Rows per strip of :class:`LowerSymmetric`'s product where BLAS's symv cannot serve (other
devices and dtypes): a strip (128 × N, 4.6 MB at N = 4500 in float64) is read once and used
twice, for its rows and for its transpose; three BLAS calls per strip (measured at N = 4500,
one thread: 6.3–6.5 ms per product, 32 rows 7.1 ms, the full N × N gemv 6.3–6.7 ms). On the
CPU in float64 the product is scipy's ``dsymv`` instead, which reads the triangle once:
3.55 ms on one thread, 2.42 ms on two (the strips: 6.33 / 5.9 ms)."""


HUGE_PAGE_BYTES = 1 << 21
"""From this size on, :func:`large_empty` asks the kernel for 2 MB pages."""


def large_empty(rows: int, columns: int, *, device=None) -> Tensor:
    """An uninitialized (rows, columns) float64 tensor; on the CPU and from
    :data:`HUGE_PAGE_BYTES` on, in a private anonymous mapping advised MADV_HUGEPAGE.

    A fresh N × N buffer is otherwise faulted in 4 KB pages on first touch: at N = 4500
    (162 MB) its lower triangle cost 24,000 page faults, 46 ms of kernel time (one thread,
    measured), against 185 faults and 8 ms with 2 MB pages (Linux transparent huge pages in
    "madvise" mode). Plain ``torch.empty`` where mmap cannot advise (other systems, devices).
    The mapping is released with the tensor (``torch.frombuffer`` holds it).
    """
    size = rows * columns * 8
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    if (device is not None and torch.device(device).type != "cpu") or size < HUGE_PAGE_BYTES \
            or not hasattr(mmap, "MADV_HUGEPAGE") or not hasattr(mmap, "MAP_ANONYMOUS"):
        return torch.empty((rows, columns), dtype=torch.float64, device=device)
    buffer = mmap.mmap(-1, size, flags=flags)
    try:
        buffer.madvise(mmap.MADV_HUGEPAGE)
    except OSError:   # huge pages unsupported: an ordinary mapping
        pass
    return torch.frombuffer(buffer, dtype=torch.float64).view(rows, columns)


def mirror_lower(matrix: Tensor, rows: int = 256) -> Tensor:
    """Copy the lower triangle of the square ``matrix`` onto its upper one, in place, by row blocks.

    Returns ``matrix``, now exactly symmetric; temporaries are of one ``rows`` × ``rows`` square.
    """
    width = matrix.shape[0]
    for start in range(0, width, rows):
        stop = min(start + rows, width)
        square = matrix[start:stop, start:stop]
        square.copy_(square.tril() + square.tril(-1).mT)
        matrix[start:stop, stop:].copy_(matrix[stop:, start:stop].mT)
    return matrix


def upper_outer(factor: Tensor, rows: int = 512) -> Tensor:
    """T Tᵀ for an upper triangular T (M, M) with zeros below its diagonal (as
    ``torch.linalg.cholesky(..., upper=True)`` returns it): exactly symmetric, in ≈ M³/3 flops
    where the full product takes 2M³.

    Row block [a, e) of the lower triangle is T[a:e, a:] T[:e, a:]ᵀ: T's rows a … e − 1 are
    zero left of column a, so these are the full product's sums less exact zeros (round-off
    differs only by the order of the terms). Then mirrored (:func:`mirror_lower`).
    A new row-major (M, M) tensor of T's dtype and device, whatever T's layout (a Cholesky's
    upper factor is column-major; FALKON factors the result in place by
    :func:`lazylab.solvers.ridge.cholesky_in_place`, which needs row-major: a column-major
    result cost more in copies than the product saved). ``benchmarks/bench_kernels.py
    --outer``, float64, one thread: 3.6× / 4.5× ``T @ T.T`` at M = 4096 / 8192, within 1.9e-18
    of it relative to its largest entry.
    """
    width = factor.shape[0]
    out = torch.empty((width, width), dtype=factor.dtype, device=factor.device)  # row-major
    for start in range(0, width, rows):
        stop = min(start + rows, width)
        torch.mm(factor[start:stop, start:], factor[:stop, start:].mT, out=out[start:stop, :stop])
    return mirror_lower(out)


def blas_symmetric(matrix: Tensor) -> bool:
    """Whether :func:`lower_symv` applies: a contiguous float64 matrix on the CPU, outside
    autograd (BLAS does not record a graph)."""
    return (matrix.device.type == "cpu" and matrix.dtype == torch.float64
            and matrix.is_contiguous() and not matrix.requires_grad)


def lower_symv(matrix: Tensor, vector: Tensor) -> Tensor:
    """S v for the symmetric S whose lower triangle is that of ``matrix`` (a :func:`blas_symmetric`
    (N, N) tensor; its strict upper triangle is not read), by BLAS's ``dsymv`` (scipy's): the
    row-major lower triangle is the column-major upper one, so no copy, and each entry is read
    once (:data:`MATVEC_ROWS` has the timings). A new (N,) float64 tensor."""
    return torch.from_numpy(blas.dsymv(1.0, matrix.numpy().T, vector.contiguous().numpy(),
                                       lower=0))


class LowerSymmetric:
    """S = L + Lᵀ − diag L + U Uᵀ + shift·I from the lower triangle L of an (N, N) float64 buffer.

    Only the lower triangle of ``lower`` (diagonal included) is read; its strict upper triangle
    may hold anything until :meth:`dense` overwrites it. ``low_rank`` U (N, k) or None;
    ``shift`` ≥ 0 (a ridge). A term to subtract belongs in L itself: subtracted from products
    it would cancel digits. ``S @ v`` reads each stored entry once: on the CPU in float64 by
    BLAS's symmetric product (``scipy.linalg.blas.dsymv`` on the row-major buffer seen as the
    column-major upper triangle, no copy), elsewhere by strips of :data:`MATVEC_ROWS` rows,
    each used for its rows and (from cache) for its transpose, with the diagonal squares stored
    mirrored (N·MATVEC_ROWS entries). Duck-types the ``@`` and ``diagonal()`` that
    :func:`low_rank_preconditioned_solve` uses.
    """

    def __init__(self, lower: Tensor, *, low_rank: Tensor | None = None, shift: float = 0.0):
        width = lower.shape[0]
        self.lower, self.low_rank, self.shift = lower, low_rank, float(shift)
        self.blas = blas_symmetric(lower)
        self.strips = [(a, min(a + MATVEC_ROWS, width)) for a in range(0, width, MATVEC_ROWS)]
        self.squares = [] if self.blas else [mirror_lower(lower[a:e, a:e].clone())
                                             for a, e in self.strips]

    @property
    def shape(self):
        return self.lower.shape

    def diagonal(self) -> Tensor:
        """diag S (N,)."""
        diagonal = self.lower.diagonal() + self.shift
        return diagonal if self.low_rank is None else diagonal + (self.low_rank ** 2).sum(1)

    def __matmul__(self, vector: Tensor) -> Tensor:
        if self.blas:
            out = lower_symv(self.lower, vector)
        else:
            out = torch.empty_like(vector)
            for (a, e), square in zip(self.strips, self.squares):
                torch.mv(square, vector[a:e], out=out[a:e])
                if a:
                    strip = self.lower[a:e, :a]
                    out[a:e].addmv_(strip, vector[:a])
                    out[:a].addmv_(strip.mT, vector[a:e])
        if self.shift:
            out.add_(vector, alpha=self.shift)
        if self.low_rank is not None:
            out.addmv_(self.low_rank, self.low_rank.T @ vector)
        return out

    def dense(self) -> Tensor:
        """S as a full (N, N) matrix, written over the buffer (which this operator then no
        longer represents)."""
        matrix = self.lower
        if self.low_rank is not None:   # before mirroring: U Uᵀ is not exactly symmetric
            matrix.addmm_(self.low_rank, self.low_rank.T)
        if self.shift:
            matrix.diagonal().add_(self.shift)
        return mirror_lower(matrix)


def woodbury_inverse(diagonal: Tensor, factors: Tensor):
    """r ↦ (D + V Vᵀ)⁻¹ r for D = diag(``diagonal``) > 0 (N,) and V = ``factors`` (N, r).

    One r × r Cholesky of the capacitance I + VᵀD⁻¹V (positive definite for D > 0).
    """
    return _woodbury(diagonal, factors, torch.float64)


def _woodbury(diagonal: Tensor, factors: Tensor, dtype: torch.dtype):
    """:func:`woodbury_inverse` with VᵀD⁻¹V summed in ``dtype``: float32 halves its N r² flops
    and gives another symmetric positive definite preconditioner (a relative 2⁻²⁴ change of
    VᵀD⁻¹V moves I + VᵀD⁻¹V, whose eigenvalues are ≥ 1, by a relative ~2⁻²⁴·N; CG's
    certificate is unaffected, only its iteration count could be)."""
    inverse = 1.0 / diagonal
    scaled = factors * inverse[:, None]
    root = (factors * inverse.sqrt()[:, None]).to(dtype)
    capacitance = (root.T @ root).to(torch.float64)
    capacitance = (capacitance + capacitance.T).mul_(0.5)
    capacitance.diagonal().add_(1.0)
    factor = torch.linalg.cholesky(capacitance)

    def apply(rhs: Tensor) -> Tensor:   # (LLᵀ)⁻¹ by two triangular solves
        return inverse * rhs - scaled @ factor_solve(factor.mT, scaled.T @ rhs)
    return apply


def low_rank_preconditioned_solve(matrix, rhs: Tensor, factors: Tensor, *,
                                  tol: float = 1e-12, max_iter: int = 200,
                                  floor: float = 1e-8) -> Tensor | None:
    """x with S x = r by CG preconditioned by diag(S − VVᵀ) + VVᵀ (module docstring), or None.

    Args:
        matrix: S (N, N) float64 (or a :class:`LowerSymmetric`), symmetric positive
            (semi-)definite, S − VVᵀ positive semi-definite. rhs: r (N,). factors: V (N, r),
            r ≪ N.
        tol: the certificate: relative residual ‖r − Sx‖/‖r‖ recomputed at the end.
        max_iter: CG iterations before declining. floor: smallest D_ii / max diag S accepted.
    Returns:
        x (N,), or None when the preconditioner is not positive definite or CG does not meet
        ``tol`` (the caller factorizes S instead).
    """
    solved = low_rank_preconditioned_solution(matrix, rhs, factors, tol=tol, max_iter=max_iter,
                                              floor=floor)
    return None if solved is None else solved[0]


def low_rank_preconditioned_solution(matrix, rhs: Tensor, factors: Tensor, *,
                                     tol: float = 1e-12, max_iter: int = 200,
                                     floor: float = 1e-8) -> tuple[Tensor, Tensor] | None:
    """(x, S x) for :func:`low_rank_preconditioned_solve`'s x, or None where it declines.

    S x is the product CG's certificate computed for x (r − S x is the certified residual),
    so a caller that needs xᵀSx (a risk) reads no more of S.
    """
    diagonal = matrix.diagonal() - (factors * factors).sum(1)
    if not float(diagonal.min()) > floor * float(matrix.diagonal().max()):
        return None
    last = [None, None]

    def apply(vector: Tensor) -> Tensor:
        last[0], last[1] = vector, matrix @ vector
        return last[1]
    result = conjugate_gradient(apply, rhs, preconditioner=_woodbury(diagonal, factors,
                                                                     torch.float32),
                                tol=tol, max_iter=max_iter)
    if not result.converged:
        return None
    product = last[1] if last[0] is result.solution else matrix @ result.solution
    return result.solution, product
