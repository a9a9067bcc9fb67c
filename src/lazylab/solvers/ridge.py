"""Ridge regression on explicit features: in memory (primal or dual) and streamed in blocks.

Notation: F (n × p) features, y (n,) or (n × k) targets, a (p,) or (p × k) coefficients, c the
intercept, λ = ``ridge``. Every solver here minimizes

    (1/n) ‖y − c − F a‖² + λ ‖a‖²,

the 1/n convention of Damian, Lee & Soltanolkotabi's code, whose solution is

    a = (FᵀF/n + λI)⁻¹ Fᵀy/n            (primal, p × p)
      = Fᵀ (FFᵀ/n + λI)⁻¹ y/n           (dual, n × n; push-through identity).

The intercept is not penalized; minimizing over c first gives c = ȳ − f̄ᵀa, and a solves the same
problem on centered F and y, so centering is exact. λ = 0 gives the minimum-norm least-squares
solution a = F⁺y (on centered data when ``fit_intercept``).

``method`` reports the path taken: "primal" / "dual" (Cholesky), "primal-eigh" / "dual-eigh"
(Cholesky failed on a numerically singular matrix and an eigendecomposition with the
pseudo-inverse cut-off of :func:`pseudo_inverse_cutoff` replaced it), "lstsq" (λ = 0, minimum-norm
least squares), "primal-path" / "dual-path" (:func:`lazylab.solvers.ridge_path.ridge_path`: one
eigendecomposition shared by many λ), "primal-pcg" / "dual-pcg" and "primal-mixed" /
"dual-mixed" (the same function from m = 1024 on: CG preconditioned by another λ's Cholesky
factor, or by a float32 factor of this λ; :mod:`lazylab.solvers.shifted`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from lazylab import _checks as checks

__all__ = ["RidgeSolution", "NormalEquations", "solve_ridge", "streaming_ridge", "solve_symmetric",
           "cholesky_in_place", "pseudo_solve", "pseudo_inverse_cutoff", "refined_cholesky_solve",
           "REFINEMENT_STEPS", "solve_shifted", "MIXED_MIN_SIZE", "MIXED_MAX_CONDITION",
           "mixed_precision_safe", "factor_solve"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class RidgeSolution:
    """A fitted linear predictor x ↦ c + F(x) a.

    Attributes:
        coef: a, float64, shape (p,) or (p, k) as the targets were (n,) or (n, k).
        intercept: c, float64 tensor, shape () or (k,); zero when no intercept was fitted.
        method: "primal", "dual", "primal-eigh", "dual-eigh", "lstsq", "primal-path",
            "dual-path", "primal-pcg", "dual-pcg", "primal-mixed" or "dual-mixed" (see module
            docstring).
    """

    coef: Tensor
    intercept: Tensor
    method: str

    def predict(self, features: Tensor) -> Tensor:
        """c + F a for features F of shape (m, p); returns (m,) or (m, k)."""
        return features.to(self.coef.dtype) @ self.coef + self.intercept


def _check_pair(features: Tensor, targets: Tensor, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    features = torch.as_tensor(features)
    targets = torch.as_tensor(targets, device=features.device)
    if features.ndim != 2:
        raise ValueError(f"{names[0]} must have shape (n, p), got shape {tuple(features.shape)}")
    if targets.ndim not in (1, 2) or targets.shape[0] != features.shape[0]:
        raise ValueError(f"{names[1]} must have shape ({features.shape[0]},) or "
                         f"({features.shape[0]}, k) to match {names[0]} of shape "
                         f"{tuple(features.shape)}, got shape {tuple(targets.shape)}")
    if features.shape[0] == 0:
        raise ValueError(f"{names[0]} must have at least one row, got shape {tuple(features.shape)}")
    return features.to(torch.float64), targets.to(torch.float64)


def pseudo_inverse_cutoff(values: Tensor) -> Tensor:
    """The one eigenvalue cut-off of every symmetric solve in lazylab: max(m·ε, 10⁻¹²) · max|λ|.

    Eigenvalues of the symmetric m × m matrix at or below it are treated as zero. m·ε is
    numpy/LAPACK's rcond, the round-off of the eigensolver; the 10⁻¹² floor covers matrices whose
    entries themselves carry relative error ~10⁻¹³ (closed-form dual activations through arccos
    and erf, Gram matrices formed from features), so their numerical null space is never inverted.

    Args:
        values: the eigenvalues λ, (m,), as returned by ``torch.linalg.eigh``.
    """
    relative = max(values.shape[0] * torch.finfo(values.dtype).eps, 1e-12)
    return relative * values.abs().max()


def solve_symmetric(matrix: Tensor, rhs: Tensor, *, overwrite: bool = False,
                    rebuild: Callable[[], Tensor] | None = None) -> tuple[Tensor, bool]:
    """Solve S x = b for symmetric positive (semi-)definite S; returns (x, used_cholesky).

    Cholesky first; if it fails or gives a non-finite x (S numerically singular), the
    eigendecomposition S = QΛQᵀ gives the minimum-norm x = Q Λ⁺ Qᵀ b, eigenvalues at or below
    :func:`pseudo_inverse_cutoff` treated as zero (:func:`pseudo_solve`).

    Args:
        matrix: S, (m, m) float64. Destroyed (holds the Cholesky factor) when ``overwrite``.
        rhs: b, (m,) or (m, k).
        overwrite: factor in place, so S is the only m × m allocation on the Cholesky path.
        rebuild: with ``overwrite``, recomputes S for the eigendecomposition fallback.
    """
    if overwrite and rebuild is None:
        raise ValueError("solve_symmetric: overwrite=True needs rebuild, got rebuild=None")
    if overwrite:
        factor, ok = cholesky_in_place(matrix.contiguous())
    else:
        factor, info = torch.linalg.cholesky_ex(matrix, upper=True)
        ok = int(info) == 0
    if ok:  # S = UᵀU
        solution = factor_solve(factor, rhs)
        if bool(torch.all(torch.isfinite(solution))):
            return solution, True
    del factor
    return pseudo_solve(rebuild() if overwrite else matrix, rhs), False


def factor_solve(upper: Tensor, rhs: Tensor) -> Tensor:
    """(UᵀU)⁻¹ r for an upper triangular Cholesky factor U (m, m) and r (m,) or (m, k): two
    triangular solves in U's dtype (r cast to it; ``torch.cholesky_solve`` would copy U),
    shaped as r. A lower factor L solves with U = Lᵀ (UᵀU = LLᵀ)."""
    column = rhs.ndim == 1
    rhs2 = (rhs.unsqueeze(1) if column else rhs).to(upper.dtype)
    lower = torch.linalg.solve_triangular(upper.mT, rhs2, upper=False)
    solution = torch.linalg.solve_triangular(upper, lower, upper=True)
    return solution[:, 0] if column else solution


def cholesky_in_place(matrix: Tensor) -> tuple[Tensor, bool]:
    """(U, ok): UᵀU = S for a row-major symmetric S (m, m), factored over its own storage.

    LAPACK works on column-major storage; the transposed view of a row-major symmetric S is S in
    column-major order, so factoring that view (upper) is truly in place, where a row-major
    ``out`` makes torch copy the m × m matrix (measured: twice the memory, 0.54 GB more at
    m = 8192). U comes back as that column-major view; ``ok`` is False when S is not
    numerically positive definite (U then holds a partial factorization).
    """
    target = matrix.mT
    info = torch.empty((), dtype=torch.int32, device=matrix.device)
    factor, info = torch.linalg.cholesky_ex(target, upper=True, out=(target, info))
    return factor, int(info) == 0


def pseudo_solve(matrix: Tensor, rhs: Tensor) -> Tensor:
    """Q Λ⁺ Qᵀ b for symmetric S = QΛQᵀ, b (m,) or (m, k); cut-off :func:`pseudo_inverse_cutoff`."""
    values, vectors = torch.linalg.eigh(matrix)
    keep = values > pseudo_inverse_cutoff(values)
    inverse = torch.where(keep, 1.0 / torch.where(keep, values, torch.ones_like(values)), 0.0)
    column = rhs.ndim == 1
    rhs2 = rhs.unsqueeze(1) if column else rhs
    solution = vectors @ (inverse.unsqueeze(1) * (vectors.T @ rhs2))
    return solution[:, 0] if column else solution


def _min_norm_lstsq(features: Tensor, targets: Tensor) -> Tensor:
    """F⁺ y by an SVD-based solver (gelsd on CPU; pinv elsewhere, where gelsd is missing)."""
    if features.device.type == "cpu":
        rhs = targets.unsqueeze(1) if targets.ndim == 1 else targets
        solution = torch.linalg.lstsq(features, rhs, driver="gelsd").solution
        return solution[:, 0] if targets.ndim == 1 else solution
    return torch.linalg.pinv(features) @ targets


def solve_ridge(features: Tensor, targets: Tensor, *, ridge: float = 0.0,
                fit_intercept: bool = False) -> RidgeSolution:
    """Minimize (1/n)‖y − c − F a‖² + λ‖a‖² in memory.

    Primal a = (FᵀF/n + λI)⁻¹Fᵀy/n (p × p Cholesky) when p ≤ n, dual a = Fᵀ(FFᵀ/n + λI)⁻¹y/n
    (n × n) when n < p; λ = 0 gives the minimum-norm least-squares a = F⁺y by SVD.

    Args:
        features: F, (n, p), any real dtype (computed in float64) on any device.
        targets: y, (n,) or (n, k).
        ridge: λ ≥ 0.
        fit_intercept: fit an unpenalized c (exactly, by centering F and y).
    """
    ridge = checks.ridge(ridge)
    features, targets = _check_pair(features, targets, ("features", "targets"))
    n, p = features.shape
    intercept = torch.zeros(targets.shape[1:], dtype=torch.float64, device=features.device)
    if fit_intercept:
        feature_mean, target_mean = features.mean(dim=0), targets.mean(dim=0)
        features, targets = features - feature_mean, targets - target_mean
    if ridge == 0.0:
        coef, method = _min_norm_lstsq(features, targets), "lstsq"
    elif p <= n:
        gram = features.T @ features / n
        gram.diagonal().add_(ridge)
        coef, ok = solve_symmetric(gram, features.T @ targets / n, overwrite=False)
        method = "primal" if ok else "primal-eigh"
    else:
        gram = features @ features.T / n
        gram.diagonal().add_(ridge)
        dual, ok = solve_symmetric(gram, targets / n, overwrite=False)
        coef, method = features.T @ dual, "dual" if ok else "dual-eigh"
    if fit_intercept:
        intercept = target_mean - feature_mean @ coef
    return RidgeSolution(coef=coef, intercept=intercept, method=method)


class NormalEquations:
    """Streaming normal equations: Σ FᵀF, Σ Fᵀy, Σ F, Σ y and n, accumulated block by block.

    Memory O(p² + b·p) for blocks of b rows; the n × p feature matrix is never formed. The Gram
    sum is updated in place by ``addmm_`` (one BLAS GEMM per block) into a preallocated p × p
    float64 buffer. Buffers are allocated on the first block, on that block's device.

    With ``fit_intercept`` the centered sums are recovered as ΣFᵀF − n f̄f̄ᵀ and ΣFᵀy − n f̄ȳᵀ;
    this loses about log10(‖f̄‖²/var) digits when feature means dwarf their spread.
    """

    def __init__(self) -> None:
        self.gram: Tensor | None = None
        self.cross: Tensor | None = None
        self.feature_sum: Tensor | None = None
        self.target_sum: Tensor | None = None
        self.n_samples = 0

    def accumulate(self, features_block: Tensor, targets_block: Tensor) -> "NormalEquations":
        """Add a block: features (b, p), targets (b,) or (b, k) (same trailing shape every call)."""
        features, targets = _check_pair(features_block, targets_block,
                                        ("features_block", "targets_block"))
        if self.gram is None:
            self._allocate(features, targets)
        elif features.shape[1] != self.gram.shape[0] or targets.shape[1:] != self.target_sum.shape:
            raise ValueError(
                f"features_block/targets_block shapes {tuple(features.shape)}/"
                f"{tuple(targets.shape)} do not match earlier blocks: (b, {self.gram.shape[0]}) "
                f"and (b,{''.join(f' {s}' for s in self.target_sum.shape)})")
        self.gram.addmm_(features.T, features)
        if targets.ndim == 1:
            self.cross.addmv_(features.T, targets)
        else:
            self.cross.addmm_(features.T, targets)
        self.feature_sum += features.sum(dim=0)
        self.target_sum += targets.sum(dim=0)
        self.n_samples += features.shape[0]
        return self

    def _allocate(self, features: Tensor, targets: Tensor) -> None:
        options = {"dtype": torch.float64, "device": features.device}
        p = features.shape[1]
        self.gram = torch.zeros(p, p, **options)
        self.cross = torch.zeros((p, *targets.shape[1:]), **options)
        self.feature_sum = torch.zeros(p, **options)
        self.target_sum = torch.zeros(targets.shape[1:], **options)

    def solve(self, *, ridge: float = 0.0, fit_intercept: bool = False) -> RidgeSolution:
        """Minimize (1/n)‖y − c − F a‖² + λ‖a‖² over everything accumulated so far.

        a = (G/n + λI)⁻¹ r/n with G = ΣFᵀF, r = ΣFᵀy (centered when ``fit_intercept``);
        λ = 0 gives the minimum-norm a = G⁺r by eigendecomposition (method "lstsq"), whose
        accuracy is limited by cond(F)²·ε since it goes through the Gram matrix.
        """
        ridge = checks.ridge(ridge)
        if self.gram is None:
            raise ValueError("NormalEquations.solve needs at least one accumulated block, got none")
        gram, cross, feature_mean, target_mean = self._normalized(fit_intercept)
        if ridge == 0.0:
            coef, method = pseudo_solve(gram, cross), "lstsq"
        else:
            def rebuild() -> Tensor:
                matrix = self._normalized(fit_intercept)[0]
                matrix.diagonal().add_(ridge)
                return matrix
            gram.diagonal().add_(ridge)
            coef, ok = solve_symmetric(gram, cross, overwrite=True, rebuild=rebuild)
            method = "primal" if ok else "primal-eigh"
        intercept = (target_mean - feature_mean @ coef if fit_intercept
                     else torch.zeros_like(self.target_sum))
        return RidgeSolution(coef=coef, intercept=intercept, method=method)

    def _normalized(self, fit_intercept: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """G/n and r/n (centered when ``fit_intercept``), f̄ and ȳ; fresh tensors."""
        n = self.n_samples
        gram, cross = self.gram / n, self.cross / n
        feature_mean, target_mean = self.feature_sum / n, self.target_sum / n
        if fit_intercept:
            gram -= torch.outer(feature_mean, feature_mean)
            cross -= (torch.outer(feature_mean, target_mean) if cross.ndim == 2
                      else feature_mean * target_mean)
        return gram, cross, feature_mean, target_mean


def streaming_ridge(feature_map: Callable[[Tensor], Tensor],
                    blocks: Iterable[tuple[Tensor, Tensor]], *, ridge: float = 0.0,
                    fit_intercept: bool = False) -> RidgeSolution:
    """Ridge on features of samples that arrive in blocks, never forming the n × p matrix.

    The paper's method for random features (least squares on 5·10⁵ fresh samples): for each
    (x_block (b, d), y_block (b,) or (b, k)) the block's features F_b = feature_map(x_block),
    (b, p), are folded into :class:`NormalEquations` and dropped. Memory O(p² + b·p).
    Minimizes (1/n)‖y − c − F a‖² + λ‖a‖² (see the module docstring).

    Args:
        feature_map: x (b, d) ↦ features (b, p); runs on x's device.
        blocks: iterable of (x_block, y_block); may be a generator producing fresh samples.
        ridge: λ ≥ 0.
        fit_intercept: fit an unpenalized c.
    """
    ridge = checks.ridge(ridge)
    equations = NormalEquations()
    for x_block, y_block in blocks:
        equations.accumulate(feature_map(x_block), y_block)
    return equations.solve(ridge=ridge, fit_intercept=fit_intercept)


REFINEMENT_STEPS = 30
"""Most refinement steps of :func:`refined_cholesky_solve` before it gives up."""


def refined_cholesky_solve(matrix: Tensor, rhs: Tensor) -> Tensor | None:
    """Mixed-precision Cholesky: x with S x = r to float64 accuracy, or None if it fails.

    ``matrix`` S: (N, N) symmetric positive definite float64; ``rhs`` r: (N,) float64 (any
    other shape returns None). Half the flops of a float64 factorization.

    S ≈ UᵀU in float32 (one N × N float32 buffer, factored in place); then
    x ← x + (UᵀU)⁻¹(r − S x) with the residual in float64, which contracts the error by about
    cond(S)·2⁻²⁴ per step (iterative refinement, Higham 2002, §12.1). It stops when a step is
    below float64 round-off of x, or when the contraction stalls (a step more than half the
    previous one): accepted then only if that step is ≤ 1e-11‖x‖. A failed factorization,
    a non-finite step or 30 steps give None (S ill-conditioned or singular).
    """
    if rhs.ndim != 1:
        return None
    factor, ok = cholesky_in_place(matrix.to(torch.float32))
    if not ok:
        return None
    solution = torch.zeros_like(rhs)
    residual, previous = rhs, float("inf")
    for _ in range(REFINEMENT_STEPS):
        step = factor_solve(factor, residual).to(torch.float64)
        solution += step
        size, scale = float(step.norm()), float(solution.norm())
        if not math.isfinite(size):
            return None
        if size <= 2.0 ** -52 * scale:
            return solution
        if size > 0.5 * previous:
            return solution if size <= 1e-11 * scale else None
        previous = size
        residual = rhs - matrix @ solution
    return None


MIXED_MIN_SIZE = 4096
MIXED_MAX_CONDITION = 1e6
""":func:`solve_shifted` refines a float32 factor when m ≥ MIXED_MIN_SIZE and its bound on
cond(K + sI) is at most MIXED_MAX_CONDITION (contraction ≤ 0.06 a refinement step). Measured
on the ReLU NTK kernel matrix, m = 8192, d = 64, one thread: 1.93–1.96× a float64 Cholesky,
solutions within 1.8e-13 relative at s = 10⁻⁶·tr K/m (bound 10⁶), 4e-15 at 10⁻²·tr K/m."""


def mixed_precision_safe(size: int, trace: float, shift: float) -> bool:
    """Whether a float32 factor of K + sI refined in float64 is used: m = ``size`` ≥
    :data:`MIXED_MIN_SIZE` and (tr K + s)/s ≤ :data:`MIXED_MAX_CONDITION`, which bounds
    cond(K + sI) ≤ (λ_max(K) + s)/s for K positive semi-definite (``trace`` = tr K, s > 0)."""
    return size >= MIXED_MIN_SIZE and shift > 0 and trace + shift <= MIXED_MAX_CONDITION * shift


def solve_shifted(matrix: Tensor, rhs: Tensor, shift: float, *, rebuild) -> tuple[Tensor, str]:
    """x = (K + sI)⁻¹ r for ``matrix`` = K + sI, (m, m) float64 (K positive semi-definite,
    s = ``shift`` ≥ 0 already added), ``rhs`` r (m,) or (m, k): (x, route), x shaped as r.

    cond(K + sI) ≤ (λ_max(K) + s)/s ≤ (tr K + s)/s. When that bound is at most
    :data:`MIXED_MAX_CONDITION`, m ≥ :data:`MIXED_MIN_SIZE` and r is one column,
    :func:`refined_cholesky_solve` (float32 factor, float64 refinement; route
    "cholesky-mixed"; ``matrix`` kept for the residuals beside its float32 copy); otherwise, or
    if that fails, :func:`solve_symmetric` factoring ``matrix`` in place (route "cholesky", or
    "eigh" on its fallback; ``rebuild()`` remakes the matrix for it).
    """
    size = matrix.shape[0]
    if rhs.ndim == 1 and mixed_precision_safe(size, float(matrix.diagonal().sum()) - size * shift,
                                              shift):
        solution = refined_cholesky_solve(matrix, rhs)
        if solution is not None:
            return solution, "cholesky-mixed"
    solution, ok = solve_symmetric(matrix, rhs, overwrite=True, rebuild=rebuild)
    return solution, "cholesky" if ok else "eigh"
