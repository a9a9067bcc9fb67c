"""Damian, Lee, Soltanolkotabi (COLT 2022): sample-complexity reference curves, the CSQ bound,
and the population gradient of Lemma 1 at the symmetric initialization.

Notation (THEORY.md §4): d = ``dim``; r = ``rank`` (dimension of the principal subspace S*);
p = ``degree`` of the polynomial target; n = ``n_train``; H = E∇²f*(x); x ~ N(0, I_d).
The scalings are headline orders ("≍", constants unknown): curves are returned with a
user-chosen ``constant`` as reference shapes, not predictions of absolute sample sizes.
"""

from __future__ import annotations

import math

import numpy as np

from lazylab import _checks as checks

__all__ = ["one_step_sample_complexity", "kernel_sample_complexity", "csq_tolerance",
           "csq_sample_complexity", "relu_gradient_leading_term", "relu_gradient_quadratic_target"]


def _degree(degree) -> int:
    return checks.nonnegative_int(degree, "degree")


def one_step_sample_complexity(dim, rank, degree, *, constant: float = 1.0) -> np.ndarray:
    """n ≍ d²r + d r^p for one gradient step + ridge on the head [V, arXiv abstract (S9)].

    Theorem 1's conditions [V, S7] are n ≥ Ω̃(d²κ²r) and the rate √(dr^pκ^{2p}/n); this curve
    drops κ and logarithms. Args: dim, rank > 0 (arrays broadcast); degree p ≥ 0; constant > 0.
    """
    d, r = checks.positive_values(dim, "dim"), checks.positive_values(rank, "rank")
    c = float(checks.positive_values(constant, "constant"))
    return c * (d**2 * r + d * r ** _degree(degree))


def kernel_sample_complexity(dim, degree, *, constant: float = 1.0) -> np.ndarray:
    """n ≍ d^p for kernel methods (incl. NTK/RF) on degree-p targets [V, abstract (S9)]."""
    d = checks.positive_values(dim, "dim")
    return float(checks.positive_values(constant, "constant")) * d ** _degree(degree)


def csq_tolerance(dim, degree, queries) -> np.ndarray:
    """Theorem 2 (CSQ lower bound) [V, S7]: tolerance τ ≤ log^{p/4}(qd)/d^{p/4} is needed.

    Args: dim d > 0, degree p, queries q ≥ 1 (with qd > 1 so the logarithm is positive).
    """
    d, q = checks.positive_values(dim, "dim"), checks.positive_values(queries, "queries")
    p = _degree(degree)
    if np.any(q * d <= 1):
        raise ValueError("queries * dim must be > 1")
    return np.log(q * d) ** (p / 4) / d ** (p / 4)


def csq_sample_complexity(dim, degree, queries) -> np.ndarray:
    """n ≈ 1/τ² = d^{p/2}/log^{p/2}(qd): the heuristic τ ≈ 1/√n applied to Theorem 2 [V, S7]."""
    return csq_tolerance(dim, degree, queries) ** -2.0


def _unit_rows(weights, dim):
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[-1] != dim or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite with last dimension {dim}, got shape {w.shape}")
    norms = np.linalg.norm(w, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("weights must be nonzero rows (the gate 1{w·x ≥ 0} needs a direction)")
    return w / norms


def relu_gradient_leading_term(hessian, weights) -> np.ndarray:
    """Lemma 1's leading term [V, S7]: E[f*(x) x 1{w·x ≥ 0}] ≈ Hŵ/√(2π) (error Õ(√r/d)).

    Valid after the preprocessing C₀ = C₁ = 0. Args: hessian H (d, d); weights (N, d).
    Returns (N, d). The population gradient is −2a_j times this.
    """
    h = np.asarray(hessian, dtype=np.float64)
    unit = _unit_rows(weights, h.shape[0])
    return unit @ h.T / math.sqrt(2 * math.pi)


def relu_gradient_quadratic_target(hessian, weights) -> np.ndarray:
    """Exact E[f*(x) x 1{w·x ≥ 0}] for a centered quadratic f* = xᵀ(H/2)x − Tr(H)/2 [D]:

    (Hŵ − ŵ·(ŵᵀHŵ)/2)/√(2π). Derivation: x = gŵ + x⊥ gives E[f* | g] = (ŵᵀHŵ/2)(g² − 1) and
    E[f* x⊥ | g] = g(I − ŵŵᵀ)Hŵ; then E[(g³ − g)1{g≥0}] = E[g 1{g≥0}] = 1/√(2π).
    This is the expansion of THEORY §4.5 with c_k = λ_k(relu) *including* its k = p = 2 term
    c₄ŵ C₂(ŵ, ŵ)/2! (c₄ = −1/√(2π)); a sum stopped at k = p − 1 as displayed would miss it.
    Checked against the engine's tangent moment (lazylab.tasks.Quadratic).
    """
    h = np.asarray(hessian, dtype=np.float64)
    unit = _unit_rows(weights, h.shape[0])
    hw = unit @ h.T
    quad = np.sum(hw * unit, axis=-1, keepdims=True)
    return (hw - unit * quad / 2) / math.sqrt(2 * math.pi)
