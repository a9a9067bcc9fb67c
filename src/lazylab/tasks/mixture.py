"""Two-class Gaussian mixture (Ghorbani et al. 2019, §3, model "mg"; THEORY.md §1.1, §1.6).

y = ±1 with probability ½ each (plus noise·ξ), x | y = +1 ~ N(0, C₊), x | y = −1 ~ N(0, C₋),
C± = Σ ∓ Δ. Notation: s± = √(wᵀC±w), λ_k(σ; s, b), κ_k(s) = λ_k(σ′; s, 0) = λ_{k+1}(σ; s, 0)/s.

Moments [D]: E y = 0, E y² = 1 + noise², E[y x] = 0 (both classes are centered);
* E[y σ(w·x + b)] = ½[λ_0(σ; s₊, b) − λ_0(σ; s₋, b)]  (w·x | y ~ N(0, s_y²));
* E[y σ′(w·x) x] = ½[C₊w κ_1(s₊)/s₊ − C₋w κ_1(s₋)/s₋]  (Stein under N(0, C): E[f(w·x) x] =
  Cw E[f′(w·x)] = Cw λ_1(f; s)/s).

Bayes risk [D]: E[y|x] = tanh(L(x)/2) with the log-likelihood ratio
L(x) = ½ log(det C₋/det C₊) − ½ xᵀQx, Q = C₊⁻¹ − C₋⁻¹, so
MMSE = E[(y − E[y|x])²] = 1 − E tanh²(L/2) = E sech²(L/2) (+ noise²).
Under class y, xᵀQx = Σ_i μ_i χ²₁ (μ = eigenvalues of C_y^{1/2} Q C_y^{1/2}), with characteristic
function Π(1 − 2iμ_i t)^{−1/2}. Parseval with the Fourier transform
∫ sech²(L/2) e^{−iωL} dL = 4πω/sinh(πω) gives

    E_y sech²(L/2) = (1/2π) ∫ 4πω/sinh(πω) · e^{iωa} Π_i (1 + iμ_i ω)^{−1/2} dω,
    a = ½ log(det C₋/det C₊).

The integrand is analytic in the strip |Im ω| < a* = min(1, 1/max|μ|) (poles of 1/sinh at ±i,
branch points at i/μ_i) and decays like e^{−π|ω|}, so the trapezoid rule with step h on
[−T, T] has error O(e^{−2π(a*/2)/h}) + O(T e^{−πT}): with h = a*/16 and T = 16 both are
below 1e-20, and the result is exact to float64 round-off (~1e-14), which the tests confirm
against 1-D quadrature (d = 1), step halving and Monte Carlo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lazylab.quadrature import gaussian_nodes
from lazylab.tasks.base import (DTYPE, Dataset, as_biases, as_matrix, as_weights, check_dim,
                                check_noise, check_rng, check_samples, is_diagonal,
                                resolve_activation, tangent_activation, unit_directions)

__all__ = ["GaussianMixture", "gaussian_mixture", "MIXTURE_DELTAS", "mixture_mmse",
           "mixture_mmse_limit"]


def _positive_definite(matrix: torch.Tensor, name: str) -> torch.Tensor:
    """Cholesky factor of ``matrix``, or ValueError with its smallest eigenvalue."""
    if is_diagonal(matrix):
        smallest = float(torch.diagonal(matrix).min())
    else:
        factor, info = torch.linalg.cholesky_ex(matrix)
        if int(info) == 0:
            return factor
        smallest = float(torch.linalg.eigvalsh(matrix)[0])
    if not smallest > 0:
        raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is "
                         f"{smallest:.4g} (shrink delta or enlarge covariance)")
    return torch.sqrt(torch.diagonal(matrix))          # a diagonal factor, stored as a vector


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """x | y = ±1 ~ N(0, Σ ∓ Δ), y = ±1 equiprobable, plus label noise.

    Args:
        delta: Δ, symmetric (d, d).
        covariance: Σ, symmetric (d, d); None means I_d.
        noise: label noise standard deviation.
    Raises:
        ValueError: shapes, asymmetry, or Σ − Δ / Σ + Δ not positive definite.
    """

    delta: torch.Tensor
    covariance: torch.Tensor | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        delta = as_matrix(self.delta, "delta", (None, None))
        d = delta.shape[0]
        if delta.shape != (d, d) or d == 0:
            raise ValueError(f"delta must be square (d, d), got {tuple(delta.shape)}")
        sigma = (torch.eye(d, dtype=DTYPE) if self.covariance is None
                 else as_matrix(self.covariance, "covariance", (d, d)))
        for name, m in (("delta", delta), ("covariance", sigma)):
            gap = float((m - m.T).abs().max())
            if gap > 1e-12 * max(1.0, float(m.abs().max())):
                raise ValueError(f"{name} must be symmetric; max |M − Mᵀ| = {gap:.3g}")
        delta, sigma = 0.5 * (delta + delta.T), 0.5 * (sigma + sigma.T)
        plus, minus = sigma - delta, sigma + delta
        chol_plus = _positive_definite(plus, "covariance − delta (the class y = +1)")
        chol_minus = _positive_definite(minus, "covariance + delta (the class y = −1)")
        object.__setattr__(self, "delta", delta)
        object.__setattr__(self, "covariance", None if self.covariance is None else sigma)
        object.__setattr__(self, "noise", check_noise(self.noise))
        object.__setattr__(self, "_plus", plus)
        object.__setattr__(self, "_minus", minus)
        object.__setattr__(self, "_cholesky", (chol_plus, chol_minus))
        object.__setattr__(self, "_diagonals", tuple(torch.diagonal(c).clone() if is_diagonal(c)
                                                     else None for c in (plus, minus)))

    has_moments = True

    @property
    def dim(self) -> int:
        return int(self.delta.shape[0])

    @property
    def components(self):
        return ((0.5, self._plus), (0.5, self._minus))

    def sample(self, n: int, *, rng: np.random.Generator) -> Dataset:
        """n iid pairs: y = ±1 with probability ½, x = L_y z (C_y = L_y L_yᵀ), y += noise·ξ."""
        n = check_samples(n)
        x, y = self._draw(n, check_rng(rng))
        return Dataset(x, y)

    def batch_sampler(self, *, rng: np.random.Generator, dtype: torch.dtype = DTYPE,
                      device=None):
        """n ↦ (x, y), the numbers of :meth:`sample` (numpy's stream from ``rng``) without the
        per-batch :class:`Dataset` checks, for online SGD; float64 only (None for float32:
        the caller then converts these float64 draws, as before), on the CPU whatever
        ``device`` (the caller moves them)."""
        rng = check_rng(rng)
        if dtype not in (torch.float32, DTYPE):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        return (lambda n: self._draw(n, rng)) if dtype == DTYPE else None

    def _draw(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(np.where(rng.random(n) < 0.5, 1.0, -1.0))
        z = torch.from_numpy(rng.standard_normal((n, self.dim)))
        plus, minus = self._cholesky
        if plus.ndim == 1 and minus.ndim == 1:
            x = z * torch.where(labels[:, None] > 0, plus, minus)
        else:
            x = torch.empty_like(z)
            for factor, rows in zip(self._cholesky, (labels > 0, labels < 0)):
                index = torch.nonzero(rows).flatten()
                block = z.index_select(0, index)
                block = block * factor if factor.ndim == 1 else block @ factor.T
                x.index_copy_(0, index, block)
        noise = torch.from_numpy(rng.standard_normal(n)) if self.noise > 0 else None
        return x, (labels if noise is None else labels + self.noise * noise)

    def target_mean(self) -> float:
        return 0.0

    def target_second_moment(self) -> float:
        return 1.0 + self.noise ** 2

    @property
    def null_risk(self) -> float:
        return self.target_second_moment()

    @property
    def bayes_risk(self) -> float:
        """MMSE = E[(y − E[y|x])²] (+ noise²), by :func:`mixture_mmse`."""
        return mixture_mmse(self.whitened_spectrum()) + self.noise ** 2

    def whitened_spectrum(self) -> np.ndarray:
        """Eigenvalues of Δ̃ = Σ^{-1/2}ΔΣ^{-1/2} (the diagonal when Σ = I and Δ is diagonal)."""
        whitened = self.delta if self.covariance is None else _whiten(self.delta, self.covariance)
        if is_diagonal(whitened):
            return np.diag(whitened.numpy()).copy()
        return torch.linalg.eigvalsh(whitened).numpy()

    def bayes_risk_limit(self) -> float:
        """Large-d limit 1 − E tanh(s + √s Z), s = ‖Σ^{-1/2}ΔΣ^{-1/2}‖_F²/2 (+ noise²)."""
        snr = 0.5 * float((self.whitened_spectrum() ** 2).sum())
        return mixture_mmse_limit(snr) + self.noise ** 2

    def linear_moment(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=DTYPE)

    def _class_products(self, weights):
        """[(C₊w_i rows, s₊), (C₋w_i rows, s₋)]; O(Nd) when C± are diagonal (Σ = I, diagonal Δ)."""
        out = []
        for cov, diagonal in zip((self._plus, self._minus), self._diagonals):
            product = weights * diagonal if diagonal is not None else weights @ cov
            out.append((product, torch.sqrt((product * weights).sum(-1))))
        return out

    def feature_moment(self, activation, weights, biases=None) -> torch.Tensor:
        """½[λ_0(σ; s₊, b) − λ_0(σ; s₋, b)], shape (N,)."""
        sigma = resolve_activation(activation)
        weights = as_weights(weights, self.dim)
        biases = as_biases(biases, weights.shape[0])
        (_, plus), (_, minus) = self._class_products(weights)
        bias = torch.zeros_like(plus) if biases is None else biases
        return 0.5 * (sigma.hermite_coefficients(0, plus, bias)[:, 0]
                      - sigma.hermite_coefficients(0, minus, bias)[:, 0])

    def tangent_moment(self, activation, weights) -> torch.Tensor:
        """½[C₊w κ_1(s₊)/s₊ − C₋w κ_1(s₋)/s₋] with κ_1(s)/s = λ_2(σ; s, 0)/s², shape (N, d)."""
        sigma = tangent_activation(activation)
        weights = as_weights(weights, self.dim)
        unit_directions(weights, allow_zero=False)
        total = 0.0
        for sign, (product, scale) in zip((0.5, -0.5), self._class_products(weights)):
            lam2 = sigma.hermite_coefficients(2, scale, torch.zeros_like(scale))[:, 2]
            total = total + sign * (lam2 / scale ** 2)[:, None] * product
        return total


def _whiten(delta: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(sigma)
    root_inv = vectors @ torch.diag(values ** -0.5) @ vectors.T
    return root_inv @ delta @ root_inv


def mixture_mmse(spectrum) -> float:
    """Bayes MMSE of the equiprobable ±1 mixture N(0, I − Δ̃) vs N(0, I + Δ̃), Δ̃ = diag(δ).

    The MMSE is invariant under x ↦ Σ^{-1/2}x followed by a rotation, so it depends only on the
    eigenvalues δ_i ∈ (−1, 1) of Δ̃ = Σ^{-1/2}ΔΣ^{-1/2} (``spectrum``). In that basis
    a = ½ Σ log((1 + δ_i)/(1 − δ_i)), and xᵀQx has weights μ_i = 2δ_i/(1 + δ_i) under y = +1
    and 2δ_i/(1 − δ_i) under y = −1. See the module docstring (accuracy ~1e-14).
    """
    delta = np.asarray(spectrum, dtype=np.float64).ravel()
    if delta.size and not np.all(np.abs(delta) < 1):
        raise ValueError("spectrum: the whitened Δ must have eigenvalues in (−1, 1)")
    a = 0.5 * float(np.sum(np.log1p(delta) - np.log1p(-delta)))
    return 0.5 * (_sech2_expectation(a, 2 * delta / (1 + delta))
                  + _sech2_expectation(a, 2 * delta / (1 - delta)))


def _sech2_expectation(a: float, mu: np.ndarray) -> float:
    """E sech²((a − ½ Σ μ_i χ²_{1,i})/2) by the trapezoid rule on the Fourier integral."""
    strip = min(1.0, 1.0 / max(float(np.abs(mu).max(initial=0.0)), 1e-300))
    step = strip / 16.0
    omega = np.arange(1, int(np.ceil(_HALF_WIDTH / step)) + 1) * step
    positive = 0.0
    for start in range(0, omega.size, _CHUNK):
        w = omega[start:start + _CHUNK]
        log_cf = -0.5 * np.log1p(1j * np.outer(w, mu)).sum(axis=1)
        kernel = 2.0 * w / np.sinh(np.pi * w)                  # (1/2π)·4πω/sinh(πω)
        positive += np.real(kernel * np.exp(1j * w * a + log_cf)).sum()
    return float(step * (2.0 / np.pi + 2.0 * positive))       # ω = 0 term 2/π; f(−ω) = conj f(ω)


_HALF_WIDTH = 16.0   # |integrand| ≤ 2ω e^{−πω}·(2) < 1e-20 beyond
_CHUNK = 2048


def mixture_mmse_limit(snr: float) -> float:
    """1 − E tanh(s + √s Z), Z ~ N(0, 1): binary ±1 signalling at SNR s (THEORY.md §1.6)."""
    z, w = gaussian_nodes(None, order=64)
    return float(1.0 - (w * torch.tanh(snr + math.sqrt(snr) * z)).sum())


# ----------------------------------------------------------------------------- presets

def _paper(dim, rng):
    """Diagonal Δ with entries uniform on {2, 1.5, 1}/√d (Ghorbani et al. §4, Fig. 2)."""
    return torch.diag(torch.from_numpy(rng.choice([2.0, 1.5, 1.0], size=dim))) / math.sqrt(dim)


def _paper_rotated(dim, rng):
    """The paper's spectrum in a uniformly random orthonormal basis (non-diagonal Δ)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = torch.from_numpy(q * np.sign(np.diag(r)))
    return q @ _paper(dim, rng) @ q.T


MIXTURE_DELTAS = {"paper": _paper, "paper-rotated": _paper_rotated}

DeltaName = Literal["paper", "paper-rotated"]


def gaussian_mixture(*, rng: np.random.Generator, dim: int = 450, delta: DeltaName = "paper",
                     noise: float = 0.0) -> GaussianMixture:
    """Build the mixture with Σ = I and Δ from a preset (``MIXTURE_DELTAS``; d ≥ 5 keeps
    I ± Δ positive definite for the paper's spectrum, whose largest entry is 2/√d)."""
    dim = check_dim(dim)
    if delta not in MIXTURE_DELTAS:
        raise ValueError(f"delta must be one of {', '.join(MIXTURE_DELTAS)}; got {delta!r}")
    return GaussianMixture(delta=MIXTURE_DELTAS[delta](dim, rng), noise=noise)
