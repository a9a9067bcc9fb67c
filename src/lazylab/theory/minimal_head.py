"""The smallest head max_i|u_i| among heads whose exact population risk reaches a threshold.

Yehudai & Shamir's theorem (THEORY.md §2.3) bounds r·max_i|u_i| from below for EVERY head u of
r given features with risk ≤ 1/50, so the quantity to measure is the minimum over such heads,

    t* = min ‖u‖_∞  subject to  R(u) = s − 2uᵀV + uᵀUu ≤ τ,

with U = E[f f ᵀ] (r, r) the feature Gram, V = E[f f*] (r,), s = E f*² (all exact). R is a convex
quadratic, so this is a convex program [D]:

* :func:`minimal_max_head` bisects on t; for each t it minimizes R over the box ‖u‖_∞ ≤ t by
  accelerated projected gradient (FISTA with restart, step 1/(2λ_max(U))). A box is certified
  feasible when an iterate has R ≤ τ, and infeasible when the Frank–Wolfe lower bound
  min_box R ≥ R(u) + ∇R(u)ᵀ(v − u) for all v in the box, i.e. R(u) − ∇ᵀu − t‖∇‖₁ > τ.
  The answer is the certified bracket [lower, upper] ∋ t*. (Moving an end past the midpoint
  — to a feasible head's ‖u‖_∞, or to the largest box the linear bound excludes,
  (R(u) − ∇ᵀu − τ)/‖∇‖₁ — saved 0–2 of 6–14 boxes on yehudai-shamir's programs: not kept.)
* :func:`ridge_path_head_bounds` is the cheap sandwich from the ridge path u_λ = (U + λI)⁻¹V,
  which solves min ‖u‖₂ s.t. R ≤ τ at the largest λ with R(u_λ) ≤ τ: since ‖u‖_∞ ≥ ‖u‖₂/√r,
  ‖u_λ‖₂/√r ≤ t* ≤ ‖u_λ‖_∞.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lazylab.theory._checks import as_symmetric_matrix

__all__ = ["MinimalHead", "minimal_max_head", "ridge_path_head_bounds"]


@dataclass(frozen=True)
class MinimalHead:
    """Certified bracket lower ≤ t* ≤ upper of min max|u_i| s.t. R(u) ≤ τ, and a feasible head."""

    lower: float
    upper: float
    head: np.ndarray
    risk: float


def _problem(gram, cross, second, threshold):
    u = as_symmetric_matrix(gram, "gram")
    v = np.asarray(cross, dtype=np.float64).ravel()
    if v.shape != (u.shape[0],) or not np.all(np.isfinite(v)):
        raise ValueError(f"cross must be a finite ({u.shape[0]},) vector, got shape {v.shape}")
    if not (np.isfinite(second) and np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"second and threshold must be finite with threshold > 0, got "
                         f"{second!r}, {threshold!r}")
    return u, v, float(second), float(threshold)


def _spectrum(u_mat, spectrum):
    if spectrum is None:
        return np.linalg.eigh(u_mat)
    eig, vec = (np.asarray(part, dtype=np.float64) for part in spectrum)
    if eig.shape != (u_mat.shape[0],) or vec.shape != u_mat.shape:
        raise ValueError(f"spectrum must be (values ({u_mat.shape[0]},), vectors "
                         f"{u_mat.shape}) as np.linalg.eigh(gram) returns, got shapes "
                         f"{eig.shape}, {vec.shape}")
    return eig, vec


def _risk(gram, cross, second, head) -> float:
    return second - 2.0 * head @ cross + head @ gram @ head


def _box_decision(gram, cross, second, threshold, bound, start, iterations, lipschitz):
    """Decide whether min over ‖u‖_∞ ≤ bound of R reaches threshold: (True/False/None, u).

    One product with U per iteration: the extrapolated point y = u + β(u − u₋) has
    Uy = Uu + β(Uu − Uu₋), a combination of the products already made at u and u₋."""
    u = np.clip(start, -bound, bound)
    gram_u = gram @ u
    y, gram_y, momentum = u, gram_u, 1.0
    for _ in range(iterations):
        gradient_u = 2.0 * (gram_u - cross)
        risk_u = second - 2.0 * u @ cross + u @ gram_u
        if risk_u <= threshold:
            return True, u
        if risk_u - gradient_u @ u - bound * np.abs(gradient_u).sum() > threshold:
            return False, u
        new = np.clip(y - 2.0 * (gram_y - cross) / lipschitz, -bound, bound)
        gram_new = gram @ new
        next_momentum = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * momentum ** 2))
        restart = (new - u) @ (y - new) > 0
        if restart:
            y, gram_y, momentum = new, gram_new, 1.0
        else:
            beta = (momentum - 1.0) / next_momentum
            y, gram_y = new + beta * (new - u), gram_new + beta * (gram_new - gram_u)
            momentum = next_momentum
        u, gram_u = new, gram_new
    return None, u


def minimal_max_head(gram, cross, second: float, threshold: float, *,
                     relative_tolerance: float = 1e-2, iterations: int = 5000,
                     spectrum: tuple | None = None) -> MinimalHead:
    """Certified bracket of t* = min ‖u‖_∞ s.t. s − 2uᵀV + uᵀUu ≤ τ (module docstring).

    Args: gram U (r, r) PSD; cross V (r,); second s; threshold τ > 0; relative_tolerance of the
    bracket; iterations per box (an undecided box leaves the bracket where it is and stops);
    spectrum: ``np.linalg.eigh(U)`` if already computed (the caller of both functions computes
    it once: it is the larger part of :func:`ridge_path_head_bounds`' cost).
    Returns: :class:`MinimalHead` (lower, upper, a head with ‖u‖_∞ ≤ upper and R ≤ τ).
    Raises: ValueError when no head reaches τ (τ below the minimal risk of the features).
    """
    u_mat, v, s, tau = _problem(gram, cross, second, threshold)
    if s <= tau:
        return MinimalHead(0.0, 0.0, np.zeros(v.size), s)
    eig, vec = _spectrum(u_mat, spectrum)
    keep = eig > 1e-13 * max(float(eig.max()), 1e-300)
    best = vec[:, keep] @ ((vec[:, keep].T @ v) / eig[keep])
    if _risk(u_mat, v, s, best) > tau:
        raise ValueError(f"threshold {tau!r} is below the minimal risk "
                         f"{_risk(u_mat, v, s, best)!r} of these features")
    lipschitz = 2.0 * float(eig.max())
    low, high, head = 0.0, float(np.abs(best).max()), best
    start = best
    while high - low > relative_tolerance * high:
        middle = 0.5 * (low + high)
        verdict, candidate = _box_decision(u_mat, v, s, tau, middle, start, iterations, lipschitz)
        if verdict is None:
            break
        if verdict:
            high, head = middle, candidate
        else:
            low = middle
        start = candidate
    return MinimalHead(low, high, head, float(_risk(u_mat, v, s, head)))


def ridge_path_head_bounds(gram, cross, second: float, threshold: float, *,
                           spectrum: tuple | None = None) -> tuple[float, float]:
    """(‖u_λ‖₂/√r, ‖u_λ‖_∞) at the largest ridge λ with R(u_λ) ≤ τ: a bracket of t*.

    u_λ = (U + λI)⁻¹V in U's eigenbasis (``spectrum``: ``np.linalg.eigh(U)`` if already
    computed); R(u_λ) increases with λ, found by bisection on log λ.
    Raises ValueError when even λ → 0 (the minimum-norm least-squares head) misses τ.
    """
    u_mat, v, s, tau = _problem(gram, cross, second, threshold)
    if s <= tau:
        return 0.0, 0.0
    eig, vec = _spectrum(u_mat, spectrum)
    eig = np.clip(eig, 0.0, None)
    projected = vec.T @ v
    live = eig > 1e-13 * max(float(eig.max()), 1e-300)

    def coefficients(ridge):
        return np.where(live, projected / np.where(live, eig + ridge, 1.0), 0.0)

    def risk(ridge):
        c = coefficients(ridge)
        return s - 2.0 * c @ projected + c @ (eig * c)
    if risk(0.0) > tau:
        raise ValueError(f"threshold {tau!r} is below the minimal risk {risk(0.0)!r}")
    low, high = 1e-16 * float(eig.max()), float(eig.max()) * 1e6
    if risk(low) > tau:
        low = 0.0
    else:
        for _ in range(200):
            middle = math.sqrt(low * high)
            low, high = (middle, high) if risk(middle) <= tau else (low, middle)
            if high <= low * (1 + 1e-9):
                break
    head = vec @ coefficients(low)
    return float(np.linalg.norm(head) / math.sqrt(head.size)), float(np.abs(head).max())
