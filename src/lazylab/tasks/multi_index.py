"""Multi-index polynomial target y = g(Ux) + noise·ξ (Damian, Lee, Soltanolkotabi 2022; THEORY §4).

Notation: U (r, d) with orthonormal rows u_j, z = Ux ~ N(0, I_r); g(z) = Σ_α c_α He_α(z) with
He_α(z) = Π_j He_{α_j}(z_j) (product Hermite basis, α a multi-index of length r), |α| = Σ α_j,
α! = Π α_j!; for a unit, s = ‖w‖, ŵ = w/s, γ = Uŵ ∈ ℝ^r, γ^α = Π_j γ_j^{α_j};
λ_k = λ_k(σ; s, b).

Moments [D]:
* E y = c_0;  E y² = Σ_α c_α² α! + noise² (orthogonality E[He_α He_β] = α! δ_αβ);
  E[y x] = Σ_j c_{e_j} u_j.
* Projection on a ridge function: E[He_α(Ux) f(w·x + b)] = γ^α λ_{|α|}(f; s, b).
  Proof: f(s t + b) = Σ_k λ_k He_k(t)/k! with t = ŵ·x = γ·z + ‖ŵ − Uᵀγ‖ z⊥, and the Hermite
  addition formula He_k(Σ a_i z_i) = Σ_{|β|=k} k!/β! a^β He_β(z) for Σ a_i² = 1 gives
  E[He_α He_k(t)] = 1{|α| = k} k! γ^α.
* Tangent, by Stein with h = g(Ux) σ′(w·x) and He_k′ = k He_{k−1}:
      E[y σ′(w·x) x] = Σ_α c_α [Σ_j α_j γ^{α−e_j} u_j λ_{|α|}/s + γ^α (λ_{|α|+2}/s) ŵ],
  from the projection identity with λ_k(σ′; s) = λ_{k+1}(σ; s)/s and λ_k(σ″; s) =
  λ_{k+2}(σ; s)/s² (integration by parts; for relu σ″ = δ and λ_k(δ; s) = He_k(0)/(√(2π)s)).
* E[∇²f*] = Uᵀ H U with H_ij = c_{e_i+e_j} (i ≠ j), H_ii = 2c_{2e_i} (Assumption 2 of the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lazylab.activations import hermite_polynomials
from lazylab.tasks.base import (DTYPE, GaussianTask, as_biases, as_matrix, as_weights, check_dim,
                                check_noise, resolve_activation, tangent_activation,
                                unit_directions)

__all__ = ["MultiIndex", "multi_index", "MULTI_INDEX_PRESETS"]

_ORTHONORMAL_TOLERANCE = 1e-10


def _check_coefficients(coefficients, rank: int) -> tuple[tuple[tuple[int, ...], float], ...]:
    items = coefficients.items() if hasattr(coefficients, "items") else coefficients
    merged: dict[tuple[int, ...], float] = {}
    for alpha, value in items:
        alpha = tuple(alpha) if isinstance(alpha, (tuple, list)) else (alpha,)
        if len(alpha) != rank:
            raise ValueError(f"coefficients: multi-index {alpha} has length {len(alpha)}, but "
                             f"directions has r = {rank} rows")
        if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0 for a in alpha):
            raise ValueError(f"coefficients: multi-index {alpha} must hold non-negative integers")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"coefficients: c_{alpha} = {value} is not finite")
        key = tuple(int(a) for a in alpha)
        merged[key] = merged.get(key, 0.0) + value
    if not merged:
        raise ValueError("coefficients must name at least one multi-index")
    return tuple(sorted(merged.items()))


@dataclass(frozen=True, eq=False)
class MultiIndex(GaussianTask):
    """y = Σ_α c_α He_α(Ux) + noise·ξ.

    Args:
        directions: U, shape (r, d) with orthonormal rows.
        coefficients: {α: c_α} with α a tuple of r non-negative integers (or (α, c) pairs).
        noise: label noise standard deviation.
    """

    directions: torch.Tensor
    coefficients: object
    noise: float = 0.0

    def __post_init__(self) -> None:
        u = as_matrix(self.directions, "directions", (None, None))
        rank = u.shape[0]
        if rank == 0 or rank > u.shape[1]:
            raise ValueError(f"directions must have 1 ≤ r ≤ d rows, got shape {tuple(u.shape)}")
        gap = float((u @ u.T - torch.eye(rank, dtype=DTYPE)).abs().max())
        if gap > _ORTHONORMAL_TOLERANCE:
            raise ValueError(f"directions must have orthonormal rows; max |UUᵀ − I| = {gap:.3g}")
        object.__setattr__(self, "directions", u)
        object.__setattr__(self, "coefficients", _check_coefficients(self.coefficients, rank))
        object.__setattr__(self, "noise", check_noise(self.noise))

    @property
    def dim(self) -> int:
        return int(self.directions.shape[1])

    @property
    def rank(self) -> int:
        return int(self.directions.shape[0])

    @property
    def degree(self) -> int:
        return max(sum(alpha) for alpha, _ in self.coefficients)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        he = hermite_polynomials(x @ self.directions.T, self.degree)        # (n, r, p + 1)
        total = torch.zeros(x.shape[0], dtype=DTYPE)
        for alpha, c in self.coefficients:
            term = torch.ones_like(total)
            for j, a in enumerate(alpha):
                term = term * he[:, j, a]
            total = total + c * term
        return total

    def target_mean(self) -> float:
        return float(dict(self.coefficients).get((0,) * self.rank, 0.0))

    def signal_second_moment(self) -> float:
        return float(sum(c * c * math.prod(math.factorial(a) for a in alpha)
                         for alpha, c in self.coefficients))

    def linear_moment(self) -> torch.Tensor:
        """E[y x] = Σ_j c_{e_j} u_j, shape (d,)."""
        table = dict(self.coefficients)
        linear = [table.get(tuple(int(i == j) for i in range(self.rank)), 0.0)
                  for j in range(self.rank)]
        return torch.as_tensor(linear, dtype=DTYPE) @ self.directions

    def expected_hessian(self) -> torch.Tensor:
        """E[∇²f*(x)] = UᵀHU, shape (d, d) (H in the module docstring)."""
        h = torch.zeros(self.rank, self.rank, dtype=DTYPE)
        for alpha, c in self.coefficients:
            if sum(alpha) == 2:
                support = [j for j, a in enumerate(alpha) for _ in range(a)]
                i, j = support
                h[i, j] += 2 * c if i == j else c
                if i != j:
                    h[j, i] += c
        return self.directions.T @ h @ self.directions

    @staticmethod
    def _power(gamma: torch.Tensor, alpha) -> torch.Tensor:
        """γ^α over units, multiplying only positive powers (finite gradients at γ_j = 0)."""
        out = torch.ones(gamma.shape[0], dtype=gamma.dtype)
        for j, a in enumerate(alpha):
            if a > 0:
                out = out * gamma[:, j] ** a
        return out

    def feature_moment(self, activation, weights, biases=None) -> torch.Tensor:
        """E[y σ(w·x + b)] = Σ_α c_α γ^α λ_{|α|}(σ; s, b), shape (N,)."""
        sigma = resolve_activation(activation)
        weights = as_weights(weights, self.dim)
        biases = as_biases(biases, weights.shape[0])
        scales, unit = unit_directions(weights)
        gamma = unit @ self.directions.T
        bias = torch.zeros_like(scales) if biases is None else biases
        lam = sigma.hermite_coefficients(self.degree, scales, bias)
        total = torch.zeros_like(scales)
        for alpha, c in self.coefficients:
            total = total + c * self._power(gamma, alpha) * lam[:, sum(alpha)]
        return total

    def tangent_moment(self, activation, weights) -> torch.Tensor:
        """E[y σ′(w·x) x], shape (N, d) (Stein; formula in the module docstring)."""
        sigma = tangent_activation(activation)
        weights = as_weights(weights, self.dim)
        scales, unit = unit_directions(weights, allow_zero=False)
        gamma = unit @ self.directions.T
        lam = sigma.hermite_coefficients(self.degree + 2, scales, torch.zeros_like(scales))
        lam = lam / scales[:, None]
        in_span = torch.zeros_like(gamma)                       # coefficients on u_1..u_r
        along_unit = torch.zeros_like(scales)
        for alpha, c in self.coefficients:
            k = sum(alpha)
            along_unit = along_unit + c * self._power(gamma, alpha) * lam[:, k + 2]
            for j, a in enumerate(alpha):
                if a > 0:
                    lowered = alpha[:j] + (a - 1,) + alpha[j + 1:]
                    column = c * a * self._power(gamma, lowered) * lam[:, k]
                    in_span = in_span + column[:, None] * torch.nn.functional.one_hot(
                        torch.tensor(j), self.rank).to(DTYPE)
        return in_span @ self.directions + along_unit[:, None] * unit


# ----------------------------------------------------------------------------- presets

_SQRT2, _SQRT24 = math.sqrt(2.0), math.sqrt(24.0)

MULTI_INDEX_PRESETS = {
    # Damian et al.'s code (THEORY §4.7): r = 1, g = He_2(z)/√2, E g² = 1.
    "single-he2": {(2,): 1.0 / _SQRT2},
    # r = 2, degree 4, E g² = (1 + 1 + 1 + 1)/4 = 1; E∇²g = diag(√2, √2)/2 has rank 2
    # (Assumption 2), with a linear part (removed by Algorithm 1's preprocessing) and a
    # degree-4 part that only feature learning reaches at n ≍ d².
    "two-index": {(1, 0): 0.5, (2, 0): 0.5 / _SQRT2, (0, 2): 0.5 / _SQRT2,
                  (0, 4): 0.5 / _SQRT24},
}

PresetName = Literal["single-he2", "two-index"]


def multi_index(*, rng: np.random.Generator, dim: int = 100, preset: PresetName = "single-he2",
                noise: float = 0.0) -> MultiIndex:
    """Build y = g(Ux) + noise·ξ from a preset g; U (r, d) = Qᵀ with Q from the QR factorization
    of a Gaussian (d, r) matrix drawn from ``rng`` (signs fixed by diag R > 0), i.e. a uniformly
    random r-frame."""
    dim = check_dim(dim)
    if preset not in MULTI_INDEX_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(MULTI_INDEX_PRESETS)}; got {preset!r}")
    coefficients = MULTI_INDEX_PRESETS[preset]
    rank = len(next(iter(coefficients)))
    if dim < rank:
        raise ValueError(f"dim must be at least r = {rank} for preset {preset!r}, got {dim}")
    q, r = np.linalg.qr(rng.standard_normal((dim, rank)))
    directions = torch.from_numpy((q * np.sign(np.diag(r))).T.copy())
    return MultiIndex(directions=directions, coefficients=coefficients, noise=noise)
