"""Kernel-ridge baselines shared by the studies: one validated ridge grid, relative to the kernel.

The kernel studies (kernel-curves; damian-onestep should use the same, see its report) fit the
infinite-width bias-free ReLU kernels ("rf", "ntk") by kernel ridge, α = (K + nλI)⁻¹y
(:mod:`lazylab.solvers.kernel_ridge`), with λ chosen on a validation split. The grid is
log-spaced relative to the kernel's scale s = E k(x, x) = h(1) (x ~ N(0, I_d); a bias-free ReLU
kernel is 1-homogeneous in each argument, K(x, y) = ‖x‖‖y‖/d·κ(x̂·ŷ), so s = κ(1) for every d
and equals trace(K)/n in expectation — the scale of the platform's ``ridge = "auto"``):

    λ_k = s · 10^k,  k ∈ RIDGE_EXPONENTS = −14, −12, −10, −8, −6, −5, …, 2, 4.

Why these ends (measured: kernel-curves' validation risks on the two-index target):

* low end 10⁻¹⁴·s, the solver's numerical floor: nλ must exceed the round-off of K's diagonal
  entries (≈ s, unit round-off 1.1·10⁻¹⁶), and 10⁻¹⁴·s·n ≥ 16·10⁻¹⁴·s is ≈ 10³ ulps of them
  while 10⁻¹⁶·s would be about one. The validation risk is flat (to < 0.1 %) for λ ≤ 10⁻⁶·s on
  noise-free targets: the kernel's high-degree tail acts as a ridge by itself ("self-induced
  regularization"). A choice at this edge therefore means "ridge-less is optimal", not "the
  optimum lies below the grid", and is reported as such (:func:`edge_side` = "floor").
* high end 10⁴·s: K/(nλ) ≤ 10⁻⁴, the predictor is ≈ 0 (the validation risk has reached the null
  risk to < 0.1 %); a choice here means "predicting 0 is optimal" (:func:`edge_side` = "null").
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lazylab.models.kernel import DualKernel

__all__ = ["KINDS", "RIDGE_EXPONENTS", "kernel_profile", "kernel_scale", "kernel_ridge_grid",
           "kernel_ridge_selection", "edge_side"]

KINDS = ("rf", "ntk")
RIDGE_EXPONENTS = (-14, -12, -10, -8, -6, -5, -4, -3, -2, -1, 0, 1, 2, 4)
"""k of λ = s·10^k: decades where the validation risk moves, every other one where it is flat."""


def kernel_profile(kind: str):
    """h(t) = K(x, y) at ‖x‖ = ‖y‖ = √m, ⟨x, y⟩/m = t (m = 2), through the kernel itself.

    For the bias-free ReLU kernels K(x, y) = ‖x‖‖y‖/d · κ(cos θ), so h does not depend on d.
    Returns a callable t (array in [−1, 1]) → h(t) (same shape).
    """
    kernel = DualKernel(kind, "relu")
    anchor = torch.tensor([[math.sqrt(2.0), 0.0]], dtype=torch.float64)

    def profile(t):
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        points = math.sqrt(2.0) * np.stack([t, np.sqrt(1.0 - t * t)], axis=-1)
        return kernel(anchor, torch.from_numpy(points.reshape(-1, 2))).numpy()[0].reshape(t.shape)
    return profile


def kernel_scale(kind: str) -> float:
    """s = E k(x, x) = h(1) for x ~ N(0, I_d), any d (bias-free ReLU kernel ``kind``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return float(kernel_profile(kind)(1.0))


def kernel_ridge_grid(kind: str) -> tuple[float, ...]:
    """λ_k = s·10^k for k in :data:`RIDGE_EXPONENTS` (module docstring), increasing."""
    scale = kernel_scale(kind)
    return tuple(scale * 10.0 ** k for k in RIDGE_EXPONENTS)


def kernel_ridge_selection(kind: str) -> dict:
    """The spec value ``{"grid": [...], "select": "validation"}`` of a kernel baseline's ridge."""
    return {"grid": list(kernel_ridge_grid(kind)), "select": "validation"}


def edge_side(kind: str, ridge: float) -> str:
    """Where a selected ridge sits: "floor" (the grid's numerical-floor end: ridge-less is
    optimal), "null" (its top: predicting ≈ 0 is optimal) or "" (interior)."""
    grid = kernel_ridge_grid(kind)
    if math.isclose(ridge, grid[0], rel_tol=1e-9):
        return "floor"
    if math.isclose(ridge, grid[-1], rel_tol=1e-9):
        return "null"
    return ""
