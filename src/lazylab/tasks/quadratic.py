"""Quadratic target y = b0 + xᵀBx + noise·ξ, x ~ N(0, I_d) (Ghorbani et al. 2019, eq. 8).

Notation: B symmetric (d, d), b0 the offset (default −Tr B, a centered target), s = ‖w‖,
ŵ = w/s, β = ŵᵀBŵ, λ_k = λ_k(σ; s, b), κ_k = λ_k(σ′; s, 0) = λ_{k+1}(σ; s, 0)/s.

Moments [D; THEORY.md §1.1, §5.3]:
* E y = b0 + Tr B;  E y² = (b0 + Tr B)² + 2‖B‖_F² + noise²;  E[y x] = 0 (odd in x).
* E[y σ(w·x + b)] = β λ_2 + (Tr B + b0) λ_0. Proof: x = gŵ + x⊥ with g ~ N(0, 1) independent
  of x⊥ ~ N(0, I − ŵŵᵀ); xᵀBx = βg² + 2g ŵᵀBx⊥ + x⊥ᵀBx⊥, so E[xᵀBx + b0 | g] =
  β(g² − 1) + Tr B + b0, and E[σ(sg + b)(g² − 1)] = λ_2, E[σ(sg + b)] = λ_0.
* Tangent, by Stein (E[h x] = E[∇h]) with h = (xᵀBx + b0)σ′(w·x):
      E[y σ′(w·x) x] = 2B E[x σ′(w·x)] + w E[(xᵀBx + b0) σ″(w·x)]
                     = 2κ_1 Bŵ + (β κ_3 + (Tr B + b0) κ_1) ŵ,
  using E[x f(w·x)] = ŵ λ_1(f; s) and λ_k(σ″; s) = λ_{k+2}(σ; s)/s² (integration by parts,
  E[f(sG) He_{k+1}(G)] = s E[f′(sG) He_k(G)], valid for relu, whose σ″ is a Dirac mass).
  This equals the brief's (β(κ_3 + 3κ_1) + (Tr B − β + b0)κ_1)ŵ + 2κ_1(Bŵ − βŵ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lazylab.tasks.base import (DTYPE, GaussianTask, as_biases, as_matrix, as_weights,
                                check_dim, check_noise, resolve_activation, tangent_activation,
                                unit_directions)

__all__ = ["Quadratic", "quadratic", "QUADRATIC_MATRICES"]

_SYMMETRY_TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class Quadratic(GaussianTask):
    """y = b0 + xᵀBx + noise·ξ.

    Args:
        matrix: B, symmetric (d, d).
        offset: b0; None (default) centers the target, b0 = −Tr B.
        noise: label noise standard deviation.
    """

    matrix: torch.Tensor
    offset: float | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        matrix = as_matrix(self.matrix, "matrix", (None, None))
        if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(f"matrix must be square (d, d), got {tuple(matrix.shape)}")
        asymmetry = float((matrix - matrix.T).abs().max())
        if asymmetry > _SYMMETRY_TOLERANCE * max(1.0, float(matrix.abs().max())):
            raise ValueError(f"matrix must be symmetric; max |B − Bᵀ| = {asymmetry:.3g}")
        offset = -float(torch.trace(matrix)) if self.offset is None else float(self.offset)
        if not math.isfinite(offset):
            raise ValueError(f"offset must be finite, got {self.offset!r}")
        matrix = 0.5 * (matrix + matrix.T)
        diagonal = torch.diagonal(matrix)
        is_diagonal = bool(torch.count_nonzero(matrix - torch.diag(diagonal)) == 0)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "_diagonal", diagonal.clone() if is_diagonal else None)
        object.__setattr__(self, "noise", check_noise(self.noise))

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def _mean(self) -> float:
        return float(torch.trace(self.matrix)) + self.offset

    def _apply(self, vectors: torch.Tensor) -> torch.Tensor:
        """Rows v ↦ Bv (an O(Nd) product when B is diagonal, e.g. the paper's preset), in the
        dtype and on the device of ``vectors`` (float32 online SGD draws stay float32)."""
        if self._diagonal is not None:
            return vectors * self._diagonal.to(vectors)
        return vectors @ self.matrix.to(vectors)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x).mul_(x).sum(-1) + self.offset  # in place: Bx is a new tensor

    def target_function(self, dtype: torch.dtype, device=None):
        """x ↦ xᵀBx + b0 with B cast to ``dtype`` once, on ``device`` (default the CPU).
        float64: :meth:`target` (the numbers of :meth:`sample`; B moves to x's device). float32
        with B diagonal (the paper's presets): (x∘x)·diag B + b0, one elementwise square and one
        matrix-vector product, as a plain torch loop writes it."""
        if dtype == DTYPE:
            return self.target
        offset = self.offset
        if self._diagonal is None:
            matrix = self.matrix.to(dtype=dtype, device=device)
            return lambda x: (x @ matrix).mul_(x).sum(-1).add_(offset)
        diagonal = self._diagonal.to(dtype=dtype, device=device)
        return lambda x: (x * x).mv(diagonal).add_(offset)

    def target_mean(self) -> float:
        return self._mean

    def signal_second_moment(self) -> float:
        return self._mean ** 2 + 2.0 * float((self.matrix ** 2).sum())

    def linear_moment(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=DTYPE)

    def feature_moment(self, activation, weights, biases=None) -> torch.Tensor:
        """E[y σ(w·x + b)] = (ŵᵀBŵ) λ_2(σ; s, b) + (Tr B + b0) λ_0(σ; s, b), shape (N,)."""
        sigma = resolve_activation(activation)
        weights = as_weights(weights, self.dim)
        biases = as_biases(biases, weights.shape[0])
        scales, unit = unit_directions(weights)
        beta = (self._apply(unit) * unit).sum(-1)
        bias = torch.zeros_like(scales) if biases is None else biases
        lam = sigma.hermite_coefficients(2, scales, bias)
        return beta * lam[:, 2] + self._mean * lam[:, 0]

    def tangent_moment(self, activation, weights) -> torch.Tensor:
        """E[y σ′(w·x) x] = 2κ_1 Bŵ + (β κ_3 + (Tr B + b0) κ_1) ŵ, shape (N, d)."""
        sigma = tangent_activation(activation)
        weights = as_weights(weights, self.dim)
        scales, unit = unit_directions(weights, allow_zero=False)
        projected = self._apply(unit)
        beta = (projected * unit).sum(-1)
        lam = sigma.hermite_coefficients(4, scales, torch.zeros_like(scales))
        kappa1, kappa3 = lam[:, 2] / scales, lam[:, 4] / scales
        along = beta * kappa3 + self._mean * kappa1
        return 2.0 * kappa1[:, None] * projected + along[:, None] * unit


# ----------------------------------------------------------------------------- presets

def _exp_diagonal(dim, rank, rng):
    """diag(γ)/√d, γ_i iid Exp(1) (Ghorbani et al.'s code, THEORY §1.7); ‖f*‖² ≈ 4."""
    return torch.diag(torch.from_numpy(rng.exponential(1.0, dim))) / math.sqrt(dim)


def _identity(dim, rank, rng):
    """I/√d: ‖B‖_F² = 1, ‖f*‖² = 2 (Tr B = √d, so RF with isotropic weights does best)."""
    return torch.eye(dim, dtype=DTYPE) / math.sqrt(dim)


def _random_psd(dim, rank, rng):
    """GGᵀ/d^{3/2}, G (d, d) iid N(0, 1): Wishart (Marchenko–Pastur) spectrum, ‖B‖_F² ≈ 2."""
    g = torch.from_numpy(rng.standard_normal((dim, dim)))
    return g @ g.T / dim ** 1.5


def _low_rank(dim, rank, rng):
    """Σ_{k≤r} v_k v_kᵀ/√r, v_k orthonormal (QR of a Gaussian (d, r)): ‖B‖_F² = 1, Tr B = √r."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    v = torch.from_numpy(q)
    return v @ v.T / math.sqrt(rank)


def _geometric(dim, rank, rng):
    """diag(1, 1/2, …, 2^{1−r}, 0, …): well separated eigenvalues (incremental learning);
    ‖B‖_F² = (4/3)(1 − 4^{−r}), Tr B = 2(1 − 2^{−r})."""
    return torch.diag(torch.tensor([2.0 ** -k if k < rank else 0.0 for k in range(dim)],
                                   dtype=DTYPE))


QUADRATIC_MATRICES = {"exp-diagonal": _exp_diagonal, "identity": _identity,
                      "random-psd": _random_psd, "low-rank": _low_rank, "geometric": _geometric}
"""Preset matrices B, each normalized so that ‖f*‖² = 2‖B‖_F² = O(1) as d grows."""

def _explicit_matrix(matrix) -> torch.Tensor:
    try:
        return torch.as_tensor(np.asarray(matrix, dtype=np.float64) if not isinstance(
            matrix, torch.Tensor) else matrix, dtype=DTYPE)
    except (TypeError, ValueError) as error:
        raise ValueError(f"matrix must be one of {', '.join(QUADRATIC_MATRICES)} or a "
                         f"symmetric (d, d) array of numbers; got {type(matrix).__name__} "
                         f"({error})") from None


MatrixName = Literal["exp-diagonal", "identity", "random-psd", "low-rank", "geometric"]


def quadratic(*, rng: np.random.Generator, dim: int = 450, matrix: MatrixName = "exp-diagonal",
              rank: int = 1, centered: bool = True, noise: float = 0.0) -> Quadratic:
    """Build y = b0 + xᵀBx + noise·ξ with B from a preset (``QUADRATIC_MATRICES``).

    Args:
        dim: d (for a preset; an explicit matrix brings its own d).
        matrix: preset name (random presets draw from ``rng``), or, from Python, an explicit
            symmetric (d, d) array (numpy or torch).
        rank: r for "low-rank" and "geometric" (1 ≤ r ≤ d); ignored by the other presets.
        centered: b0 = −Tr B (E y = 0, the setting of Theorems 1–2) when True, else b0 = 0.
        noise: label noise standard deviation.
    """
    if not isinstance(matrix, str):
        return Quadratic(matrix=_explicit_matrix(matrix), offset=None if centered else 0.0,
                         noise=noise)
    dim = check_dim(dim)
    if matrix not in QUADRATIC_MATRICES:
        raise ValueError(f"matrix must be one of {', '.join(QUADRATIC_MATRICES)}; got {matrix!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= dim:
        raise ValueError(f"rank must be an integer in [1, dim={dim}], got {rank!r}")
    b = QUADRATIC_MATRICES[matrix](dim, int(rank), rng)
    return Quadratic(matrix=b, offset=None if centered else 0.0, noise=noise)
