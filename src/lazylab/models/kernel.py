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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.gaussian import pair_expectation
from lazylab.models._common import numeric, resolve_input
from lazylab.solvers import KernelRidgeSolution, kernel_ridge

__all__ = ["Kernel", "KernelModel", "DualKernel", "KERNEL_KINDS"]

KERNEL_KINDS = ("rf", "ntk", "semi_random")
_SWITCH = {0: "step", 1: "relu"}


@dataclass(frozen=True)
class DualKernel:
    """The kernel callable (x1 (n1, d), x2 (n2, d)) ↦ (n1, n2); picklable (names only)."""

    kind: str
    activation: str = "relu"
    degree: int = 0

    def _dual(self, name_or_activation, x1, x2):
        dim = x1.shape[1]
        var1 = (x1 * x1).sum(1, keepdim=True) / dim
        var2 = (x2 * x2).sum(1)[None, :] / dim
        return pair_expectation(name_or_activation, name_or_activation, var1, var2,
                                x1 @ x2.T / dim, None, None)

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if self.kind == "semi_random":
            return (x1 @ x2.T / x1.shape[1]) * self._dual(_SWITCH[self.degree], x1, x2)
        sigma = get_activation(self.activation)
        gram = self._dual(sigma, x1, x2)
        if self.kind == "ntk":
            gram = gram + (x1 @ x2.T / x1.shape[1]) * self._dual(sigma.derivative(), x1, x2)
        return gram


@dataclass(eq=False)
class KernelModel:
    """Fitted kernel predictor f(x) = Σ_j α_j K(c_j, x); ``predict(x) -> (n,)``."""

    solution: KernelRidgeSolution
    diagnostics: dict = field(default_factory=dict)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.solution.predict(torch.as_tensor(x, dtype=torch.float64))


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """Kernel ridge regression with the infinite-width kernel of a regime (module docstring).

    Args:
        kind: "rf", "ntk" or "semi_random".
        activation: σ for "rf" and "ntk" ("ntk" needs a σ′ that is a function).
        degree: s ∈ {0, 1} for "semi_random".
        ridge: λ ≥ 0 (> 0 when FALKON is used).
        method: "auto", "cholesky" or "falkon". n_centers: FALKON's M (default ⌈5√n⌉).
    """

    kind: str = "rf"
    activation: str = "relu"
    degree: int = 0
    ridge: float = 1e-3
    method: str = "auto"
    n_centers: int | None = None

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

    @property
    def kernel(self) -> DualKernel:
        activation = self.activation
        if not isinstance(activation, str):
            activation = get_activation(activation)
        return DualKernel(self.kind, activation, int(self.degree))

    def fit(self, data_or_task, *, rng: np.random.Generator) -> KernelModel:
        """Kernel ridge on samples; a task (n = ∞) raises ValueError."""
        data, task = _samples_only(data_or_task)
        solution = kernel_ridge(self.kernel, data.x, data.y, ridge=self.ridge, method=self.method,
                                n_centers=self.n_centers, rng=rng)
        return KernelModel(solution, numeric({
            "cg_iterations": solution.iterations, "kernel_residual": solution.residual,
            "n_centers": solution.centers.shape[0], "coef_norm_max": solution.coef.abs().max()}))


def _samples_only(data_or_task):
    if not isinstance(data_or_task, torch.Tensor) and hasattr(data_or_task, "sample") \
            and not hasattr(data_or_task, "x"):
        raise ValueError("kernel ridge needs samples: Kernel has no n = ∞ (population) fit; pass "
                         "task.sample(n, rng=...) instead of the task")
    return resolve_input(data_or_task)
