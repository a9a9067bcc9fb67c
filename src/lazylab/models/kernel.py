"""Infinite-width limits as kernel ridge regression with closed-form (dual-activation) kernels.

Notation: x, y ∈ ℝ^d; w ~ N(0, I/d), so (w·x, w·y) is centered Gaussian with variances ‖x‖²/d,
‖y‖²/d and covariance ⟨x, y⟩/d; E[σ(w·x)τ(w·y)] is the engine's dual activation
:func:`lazylab.gaussian.pair_expectation` at those three numbers (closed-form arc-cosine kernels
for relu/step, Cho & Saul 2009; THEORY.md §5.1). The kernels:

* "rf":  K(x, y) = E_w[σ(w·x)σ(w·y)] — the limit of RandomFeatures: F Fᵀ/N → K, so
  RandomFeatures(width=N, ridge=N·λ, offset=False) ≈ Kernel("rf", ridge=λ) for large N.
* "ntk": K(x, y) = E_w[σ(w·x)σ(w·y)] + (⟨x, y⟩/d) E_w[σ′(w·x)σ′(w·y)] (THEORY §5.4 with
  w ~ N(0, I/d)): the NTK of f(x) = N^{-1/2} Σ a_i σ(v_i·x/√d), v_i ~ N(0, I_d), a_i ~ N(0, 1),
  both layers trained (the a-gradients give the first term, the v-gradients a_i σ′ x/√d the
  second). The /d keeps both parts O(1) for x ~ N(0, I_d).
* "semi_random": K_s(x, y) = (⟨x, y⟩/d) E_r[σ_s(r·x)σ_s(r·y)], r ~ N(0, I/d), σ_s(z) = z^s 1[z>0]
  (THEORY §3.2 with the same 1/d normalization): the limit of SemiRandom(degree=s) features,
  F Fᵀ/(N d) → K_s, so SemiRandom(width=N, ridge=N·d·λ) ≈ Kernel("semi_random", ridge=λ).
  For s = 0 it is the second NTK term with relu.

Fit: :func:`lazylab.solvers.kernel_ridge` minimizes (1/n)Σ(y_k − f(x_k))² + λ‖f‖²_H, exactly by
Cholesky up to 2·10⁴ samples and by FALKON above (``method="auto"``; FALKON needs λ > 0 and
draws its Nyström centers from ``rng``). No offset is fitted (the constant is in the RKHS for
relu-type kernels). There is no n = ∞ fit: kernel ridge needs samples.

Ridge path (:meth:`Kernel.fit_path`, used by model selection): exact fits evaluate the kernel
matrix K once for a whole grid of λ, and solve α(λ) = (K + nλI)⁻¹y per λ on it: by Cholesky, by
CG preconditioned with the factor of a neighbouring λ from n = 1024 on, or from one
eigendecomposition of K for long grids (:func:`lazylab.solvers.ridge_path.symmetric_path`).
FALKON fits draw the centers once and run every λ in one CG loop whose K_nM products serve all
of them (:func:`lazylab.solvers.falkon.falkon_path`; only the λ-dependent preconditioner factor
is per λ).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.gaussian import pair_expectation
from lazylab.models._common import numeric, resolve_input
from lazylab.solvers import KernelRidgeSolution, kernel_matrix, kernel_ridge
from lazylab.solvers.batches import resolve_device
from lazylab.solvers.falkon import falkon_path
from lazylab.solvers.kernel_ridge import CHOLESKY_MAX_SAMPLES
from lazylab.solvers.ridge_path import symmetric_path

__all__ = ["Kernel", "KernelModel", "SharedBlock", "DualKernel", "KERNEL_KINDS",
           "PATH_MAX_SAMPLES", "SHARED_BLOCK_ENTRIES", "arc_cosine_gram"]

KERNEL_KINDS = ("rf", "ntk", "semi_random")
_ARC_FORMS = {  # (kind, degree) -> (a, b, extra) of _arc_block
    ("rf", 0): (1.0, 1.0, False), ("ntk", 0): (1.0, 2.0, False),
    ("semi_random", 0): (0.0, 1.0, False), ("semi_random", 1): (1.0, 1.0, True)}
_BLOCK_ENTRIES = 1 << 18  # 2 MB blocks: the elementwise passes run in cache


def _unit_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x/‖x‖ row by row, zero rows left zero; ‖x‖), float64."""
    norms = torch.linalg.vector_norm(x, dim=1)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None], norms


def _arc_block(cos: torch.Tensor, form: tuple) -> torch.Tensor:
    """a sin θ + b(π − θ) cos θ, times cos θ when ``extra``, for a block of cos θ (clamped to
    [−1, 1] in place); one arccos, sin θ = (1 − cos²θ)^{1/2}."""
    a, b, extra = form
    cos.clamp_(-1.0, 1.0)
    angle = torch.neg(cos).acos_()  # π − θ
    if a:
        out = torch.addcmul(torch.ones((), dtype=cos.dtype, device=cos.device), cos, cos,
                            value=-1.0).sqrt_()
        out.addcmul_(angle, cos, value=b)
    else:
        out = angle.mul_(cos).mul_(b)
    return out.mul_(cos) if extra else out


def arc_cosine_gram(x1: torch.Tensor, x2: torch.Tensor, form: tuple, *,
                    symmetric: bool = False) -> torch.Tensor:
    """K = n₁n₂/(2πd) (a sin θ + b(π − θ) cos θ) (n₁n₂ cos θ/d)^extra, (n1, n2) float64.

    n₁ = ‖x1ᵢ‖, n₂ = ‖x2ⱼ‖, cos θ = ⟨x1ᵢ, x2ⱼ⟩/(n₁n₂), d = x1.shape[1]. With relu:
    E[relu(w·x)relu(w·y)] = (a, b) = (1, 1); the NTK adds (⟨x, y⟩/d)(π − θ)/(2π), so (1, 2);
    semi-random s = 0 is (0, 1), s = 1 is (1, 1) with the extra ⟨x, y⟩/d (Cho & Saul 2009).
    One pass per row block: one float64 GEMM of the unit rows (inputs of any float dtype are
    upcast first, so float32 inputs are taken as exact), one arccos, and in-cache elementwise
    passes. ``symmetric`` (x2 is x1): only blocks on and above the diagonal are computed and
    mirrored (the result is exactly symmetric), and cos θ = 1 is set exactly on the diagonal.
    """
    unit1, norms1 = _unit_rows(x1.to(torch.float64))
    unit2, norms2 = (unit1, norms1) if symmetric else _unit_rows(x2.to(torch.float64))
    dim, (n1, n2) = x1.shape[1], (x1.shape[0], x2.shape[0])
    power = 2 if form[2] else 1
    scale1, scale2 = norms1**power, norms2**power / (2 * math.pi * dim**power)
    out = torch.empty(n1, n2, dtype=torch.float64, device=x1.device)
    rows = max(1, _BLOCK_ENTRIES // max(n2, 1))
    for start in range(0, n1, rows):
        stop, first = min(start + rows, n1), (start if symmetric else 0)
        cos = unit1[start:stop] @ unit2[first:].T
        if symmetric:
            cos[:, :stop - start].diagonal().fill_(1.0)
        block = _arc_block(cos, form).mul_(scale1[start:stop, None]).mul_(scale2[None, first:])
        out[start:stop, first:] = block
        if symmetric:  # mirror: the lower part of this block column, and within the diagonal
            out[stop:, start:stop] = block[:, stop - start:].T
            square = out[start:stop, start:stop]
            square.copy_(square.triu() + square.triu(1).T)
    return out


@dataclass(frozen=True)
class DualKernel:
    """The kernel callable (x1 (n1, d), x2 (n2, d)) ↦ (n1, n2) float64; picklable (names only).

    relu ("rf", "ntk") and "semi_random" use the fused arc-cosine pass
    :func:`arc_cosine_gram`; other activations (and inputs that require a gradient) one float64
    Gram shared by both NTK terms and :func:`lazylab.gaussian.pair_expectation`. Inputs are
    upcast to float64 before any product.
    """

    kind: str
    activation: str = "relu"
    degree: int = 0

    def _form(self):
        if self.kind == "semi_random":
            return _ARC_FORMS[("semi_random", self.degree)]
        sigma = get_activation(self.activation)
        plain_relu = sigma.name == "relu" and sigma.components is None
        return _ARC_FORMS[(self.kind, 0)] if plain_relu else None

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        form = self._form()
        differentiable = torch.is_grad_enabled() and (x1.requires_grad or x2.requires_grad)
        if form is not None and not differentiable:  # the fused pass works in place
            return arc_cosine_gram(x1, x2, form, symmetric=x1 is x2)
        return self._by_pair_expectation(x1.to(torch.float64), x2.to(torch.float64))

    def _by_pair_expectation(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The general (and differentiable) route: one Gram shared by the terms."""
        dim = x1.shape[1]
        var1 = (x1 * x1).sum(1, keepdim=True) / dim
        var2 = (x2 * x2).sum(1)[None, :] / dim
        cov = x1 @ x2.T / dim
        if self.kind == "semi_random":
            gate = "step" if self.degree == 0 else "relu"
            return cov * pair_expectation(gate, gate, var1, var2, cov, None, None)
        sigma = get_activation(self.activation)
        gram = pair_expectation(sigma, sigma, var1, var2, cov, None, None)
        if self.kind == "ntk":
            gram = gram + cov * pair_expectation(sigma.derivative(), sigma.derivative(), var1,
                                                 var2, cov, None, None)
        return gram


class SharedBlock:
    """K(x, c) of one input set x, shared by the predictors of one ridge path (same centers c).

    Selection scores every ridge of a path on the same validation inputs; the predictors hold
    one SharedBlock, so K(x_val, c) is evaluated once instead of once per ridge. It keeps the
    first inputs it is asked about (at most :data:`SHARED_BLOCK_ENTRIES` kernel entries) and
    recognizes them by storage, shape, strides and torch's in-place version counter (a view of
    the same rows, as empirical_risk's row blocks are, matches; modified inputs do not).
    """

    def __init__(self):
        self.inputs: torch.Tensor | None = None
        self.version, self.block = -1, None

    def _matches(self, x: torch.Tensor) -> bool:
        held = self.inputs
        return (held is not None and held.data_ptr() == x.data_ptr() and held.shape == x.shape
                and held.stride() == x.stride() and held.dtype == x.dtype
                and held.device == x.device and x._version == self.version)

    def predict(self, solution: KernelRidgeSolution, x: torch.Tensor) -> torch.Tensor:
        """f(x) = K(x, c) α, K(x, c) from the held block when x is the held input set."""
        if self._matches(x):
            return self.block @ solution.coef
        if self.inputs is None and x.shape[0] * solution.centers.shape[0] <= SHARED_BLOCK_ENTRIES:
            self.block = kernel_matrix(solution.kernel, x.to(solution.centers.device),
                                       solution.centers)
            self.inputs, self.version = x, x._version
            return self.block @ solution.coef
        return solution.predict(x)


SHARED_BLOCK_ENTRIES = 25_000_000
"""Largest K(x, c) a :class:`SharedBlock` keeps (200 MB in float64)."""


@dataclass(eq=False)
class KernelModel:
    """Fitted kernel predictor f(x) = Σ_j α_j K(c_j, x); ``predict(x) -> (n,)``.

    ``shared``: the :class:`SharedBlock` of a ridge path (:meth:`Kernel.fit_path`), else None.
    """

    solution: KernelRidgeSolution
    diagnostics: dict = field(default_factory=dict)
    shared: SharedBlock | None = field(default=None, repr=False)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if self.shared is None:
            return self.solution.predict(x)
        return self.shared.predict(self.solution, x)


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """Kernel ridge regression with the infinite-width kernel of a regime (module docstring).

    Args:
        kind: "rf", "ntk" or "semi_random".
        activation: σ for "rf" and "ntk" ("ntk" needs a σ′ that is a function).
        degree: s ∈ {0, 1} for "semi_random".
        ridge: λ ≥ 0 (> 0 when FALKON is used).
        method: "auto", "cholesky" or "falkon". n_centers: FALKON's M (default ⌈5√n⌉).
        device: where kernels, factorizations and CG run ("cpu" or "cuda[:k]"); the fitted
            predictor is returned on the CPU (its coefficients and centers moved back).
    """

    kind: str = "rf"
    activation: str = "relu"
    degree: int = 0
    ridge: float = 1e-3
    method: str = "auto"
    n_centers: int | None = None
    device: str = "cpu"

    def __post_init__(self):
        checks.choice(self.kind, "kind", KERNEL_KINDS)
        sigma = get_activation(self.activation)
        if self.kind == "ntk":
            sigma.derivative()
        if isinstance(self.degree, bool) or self.degree not in (0, 1):
            raise ValueError(f"degree must be 0 or 1, got {self.degree!r}")
        checks.ridge(self.ridge)
        checks.choice(self.method, "method", ("auto", "cholesky", "falkon"))
        if self.n_centers is not None:
            checks.positive_int(self.n_centers, "n_centers")
        checks.device(self.device)

    @property
    def kernel(self) -> DualKernel:
        activation = self.activation
        if not isinstance(activation, str):
            activation = get_activation(activation)
        return DualKernel(self.kind, activation, int(self.degree))

    def fit(self, data_or_task, *, rng: np.random.Generator) -> KernelModel:
        """Kernel ridge on samples; a task (n = ∞) raises ValueError.

        Diagnostics: ``converged`` (1.0/0.0; FALKON's CG certificate, always 1 for Cholesky),
        ``criterion`` = ``kernel_residual`` (FALKON's final relative residual; absent for
        Cholesky), ``cg_iterations``, ``n_centers``, ``coef_norm_max``.
        """
        data, task = _samples_only(data_or_task)
        solution = kernel_ridge(self.kernel, data.x, data.y, ridge=self.ridge, method=self.method,
                                n_centers=self.n_centers, rng=rng,
                                device=resolve_device(self.device))
        return _kernel_model(_on_cpu(solution))

    def fit_path(self, data_or_task, ridges, *, rng: np.random.Generator
                 ) -> list[KernelModel] | None:
        """This regime fitted at every λ of ``ridges`` (its own ``ridge`` is ignored), or None.

        The kernel matrix K (n × n) is evaluated once and kept; every λ solves
        α(λ) = (K + nλI)⁻¹y on it (:func:`lazylab.solvers.ridge_path.symmetric_path`): a
        Cholesky of a copy of K + nλI per λ — what :meth:`fit` computes, on the same K — below
        n = :data:`lazylab.solvers.ridge_path.REUSE_MIN_SIZE`; from there on the λ in
        increasing order, each by CG preconditioned with the Cholesky factor of an earlier λ
        (method "cholesky-pcg") until CG would need more than its budget, and then a new factor
        (float32 and CG where the trace bound allows, "cholesky-mixed", else float64,
        "cholesky"); each solution to normwise backward error 10⁻¹⁴
        (:mod:`lazylab.solvers.shifted`). From
        :data:`lazylab.solvers.ridge_path.EIGH_MIN_SHIFTS` positive λ on: one
        eigendecomposition K = QΛQᵀ and α(λ) = Q (Λ + nλ)⁻¹ Qᵀy (method "eigh-path"; the same
        answer to round-off wherever nλ exceeds max(n·ε, 10⁻¹²)·max(Λ + nλ)). Memory: two
        n × n float64 matrices, against one for :meth:`fit`. The predictors share one
        :class:`SharedBlock`: the first input set they are evaluated on (selection's
        validation set) costs one kernel evaluation for all of them.

        FALKON (``method`` "falkon", or "auto" above
        :data:`lazylab.solvers.kernel_ridge.CHOLESKY_MAX_SAMPLES`):
        :func:`lazylab.solvers.falkon.falkon_path` draws the centers from ``rng`` once, as
        :meth:`fit` does (so each model is the fit with the same generator state, to CG's
        tolerance), and solves every λ > 0 in one CG loop; the models share the centers and one
        :class:`SharedBlock` K(x_val, centers).

        Returns None for an exact fit above n = :data:`PATH_MAX_SAMPLES`; the caller then
        refits per λ. Diagnostics as :meth:`fit`. The exact path does not use ``rng``.
        """
        data, _ = _samples_only(data_or_task)
        n = data.x.shape[0]
        falkon = self.method == "falkon" or (self.method == "auto" and n > CHOLESKY_MAX_SAMPLES)
        if not falkon and n > PATH_MAX_SAMPLES:
            return None
        ridges = [checks.ridge(r, f"ridges[{k}]") for k, r in enumerate(ridges)]
        if not ridges:
            raise ValueError("ridges must be a non-empty sequence of penalties λ >= 0, got []")
        kernel, shared, device = self.kernel, SharedBlock(), resolve_device(self.device)
        if falkon:
            solutions = falkon_path(kernel, data.x, data.y, ridges, n_centers=self.n_centers,
                                    rng=rng, device=device)
            return [_kernel_model(_on_cpu(solution), shared) for solution in solutions]
        x = data.x.to(torch.float64)
        x_there, y_there = x.to(device), data.y.to(device=device, dtype=torch.float64)
        solved = symmetric_path(kernel_matrix(kernel, x_there, x_there), y_there,
                                [n * r for r in ridges])
        return [_kernel_model(KernelRidgeSolution(kernel, x, coef.cpu(), _ROUTES[route], 0,
                                                  math.nan, True), shared)
                for coef, route in solved]


_ROUTES = {"cholesky": "cholesky", "eigh": "eigh", "path": "eigh-path", "pcg": "cholesky-pcg",
           "cholesky-mixed": "cholesky-mixed"}
"""symmetric_path's route → the solution's ``method`` (the names of the exact fit)."""

PATH_MAX_SAMPLES = 16_384
"""Above this n, :meth:`Kernel.fit_path` declines (the caller refits per λ): its two n × n
float64 matrices (4.3 GB at n = 16,384, against 3.2 GB for one mixed-precision refit) would
double the exact fit's memory. 16,384 = 4d² at d = 64, the largest exact fit of the Damian
study, whose 14 ridges the path solves with 2–4 factorizations instead of 14."""


def _on_cpu(solution: KernelRidgeSolution) -> KernelRidgeSolution:
    """The solution with its centers and coefficients on the CPU (no copy when there)."""
    return dataclasses.replace(solution, centers=solution.centers.cpu(),
                               coef=solution.coef.cpu())


def _kernel_model(solution: KernelRidgeSolution, shared: SharedBlock | None = None
                  ) -> KernelModel:
    """The fitted predictor with its diagnostics (:meth:`Kernel.fit`)."""
    return KernelModel(solution, numeric({
        "cg_iterations": solution.iterations, "kernel_residual": solution.residual,
        "converged": float(solution.converged), "criterion": solution.residual,
        "n_centers": solution.centers.shape[0], "coef_norm_max": solution.coef.abs().max()}),
        shared)


def _samples_only(data_or_task):
    if not isinstance(data_or_task, torch.Tensor) and hasattr(data_or_task, "sample") \
            and not hasattr(data_or_task, "x"):
        raise ValueError("kernel ridge needs samples: Kernel has no n = ∞ (population) fit; pass "
                         "task.sample(n, rng=...) instead of the task")
    return resolve_input(data_or_task)
