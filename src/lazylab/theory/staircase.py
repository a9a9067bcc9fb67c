"""Kernel ridge regression in high dimension: the "staircase" of polynomial regimes.

Setting (not in THEORY.md; standard results, cited from memory [M], checked here numerically
against exact kernel ridge on samples, tests/theory/test_staircase.py): inputs x uniform on the
sphere √d·S^{d−1}; a rotation-invariant (inner-product) kernel K(x, y) = h(⟨x, y⟩/d); target
f* with spherical-harmonic energies e_k = ‖P_k f*‖²_{L²} (k = 0, 1, …); labels y = f*(x) + ε,
Var ε = noise_variance; kernel ridge f̂ = argmin (1/n)Σ(yᵢ − f(xᵢ))² + ridge·‖f‖²_H.

Spectrum [D, Funk–Hecke]: with α = (d−2)/2, Q_k = C_k^α/C_k^α(1) (Gegenbauer), t = ⟨x, y⟩/d of
density ∝ (1 − t²)^{(d−3)/2}, and N_k = C(d+k−1, k) − C(d+k−3, k−2) harmonics of degree k,
h(t) = Σ_k μ_k N_k Q_k(t) with μ_k = E_t[h(t) Q_k(t)], the eigenvalue of every degree-k harmonic.

Staircase [M: Ghorbani, Mei, Misiakiewicz, Montanari, Ann. Statist. 2021, "Linearized two-layers
neural networks in high dimension", Thm. 4; Mei, Misiakiewicz, Montanari 2022]: for
d^{ℓ+δ} ≤ n ≤ d^{ℓ+1−δ}, KRR learns P_{≤ℓ}f* and nothing above: excess risk → ‖P_{>ℓ}f*‖².

Refined prediction at n = Θ(d^ℓ) [M: deterministic equivalent / "eigenlearning", Bordelon,
Canatar & Pehlevan 2020, Simon et al. 2021; proved in the polynomial regime by Misiakiewicz 2022
and Hu & Lu 2022]: κ > 0 solves n = Σ_k N_k μ_k/(μ_k + κ) + n·ridge/κ; L_k = μ_k/(μ_k + κ);
E₀ = n/(n − Σ_k N_k L_k²); excess risk E(f̂ − f*)² ≈ E₀(Σ_k (1 − L_k)² e_k + σ²) − σ².
Degrees above ``max_degree`` enter through the exact trace identity Σ_k N_k μ_k = h(1): their
mass T acts as T/κ in the κ equation (valid when their μ_k ≪ κ). Its limit for d^ℓ ≪ n ≪ d^{ℓ+1}
is the staircase (L_k → 1 for k ≤ ℓ, → 0 above, E₀ → 1).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import special

from lazylab import _checks as checks

__all__ = ["harmonic_dimension", "kernel_degree_eigenvalues", "staircase_degree",
           "staircase_risk", "kernel_ridge_risk"]


MAX_DIM = 2000
"""Largest d for which scipy's Gauss–Jacobi nodes (parameter (d−3)/2) are finite."""


def _check_dim(dim) -> int:
    return checks.integer(dim, "dim", minimum=3)


def harmonic_dimension(dim: int, degree: int) -> int:
    """N_k = C(d+k−1, k) − C(d+k−3, k−2): the number of degree-k spherical harmonics in R^d."""
    d = _check_dim(dim)
    if int(degree) != degree or degree < 0:
        raise ValueError(f"degree must be an integer >= 0, got {degree!r}")
    k = int(degree)
    return math.comb(d + k - 1, k) - (math.comb(d + k - 3, k - 2) if k >= 2 else 0)


def kernel_degree_eigenvalues(profile: Callable[[np.ndarray], np.ndarray], dim: int,
                              max_degree: int, *, nodes: int = 200) -> np.ndarray:
    """μ_0..μ_K of K(x, y) = h(⟨x, y⟩/d) on √d·S^{d−1} (Funk–Hecke; Gauss–Jacobi quadrature).

    Args: profile h, vectorized on [−1, 1]; dim d ≥ 3; max_degree K; nodes of the quadrature
    (exact for polynomial h of degree < 2·nodes − K). Returns float64 (K+1,).
    """
    d = _check_dim(dim)
    if d > MAX_DIM:
        raise ValueError(f"dim must be <= {MAX_DIM} for the Gauss-Jacobi quadrature, got {d}")
    a = (d - 3) / 2.0
    t, w = special.roots_jacobi(int(nodes), a, a)
    w = w / w.sum()
    alpha = (d - 2) / 2.0
    values = np.asarray(profile(t), dtype=np.float64)
    if values.shape != t.shape or not np.all(np.isfinite(values)):
        raise ValueError("profile must map an array of t in [-1, 1] to finite values of the "
                         "same shape")
    return np.array([values @ (w * special.eval_gegenbauer(k, alpha, t)
                               / special.eval_gegenbauer(k, alpha, 1.0))
                     for k in range(int(max_degree) + 1)])


def staircase_degree(n_train, dim: int) -> np.ndarray:
    """ℓ with d^ℓ ≤ n < d^{ℓ+1} (the polynomial regime n_train falls in)."""
    d = _check_dim(dim)
    n = np.asarray(n_train, dtype=np.float64)
    if n.size == 0 or np.any(~np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"n_train must be >= 1, got {n_train!r}")
    return np.floor(np.log(n) / np.log(d) + 1e-12).astype(np.int64)


def staircase_risk(n_train, dim: int, target_energies) -> np.ndarray:
    """Staircase limit: excess risk ‖P_{>ℓ}f*‖² = Σ_{k>ℓ} e_k with ℓ = staircase_degree(n, d).

    The limit of d^ℓ ≪ n ≪ d^{ℓ+1}; at n = Θ(d^ℓ) use :func:`kernel_ridge_risk`.
    """
    e = _energies(target_energies)
    ell = staircase_degree(n_train, dim)
    tails = np.concatenate([np.cumsum(e[::-1])[::-1], [0.0]])
    return tails[np.minimum(ell + 1, e.size)]


def _energies(target_energies) -> np.ndarray:
    e = np.asarray(target_energies, dtype=np.float64).ravel()
    if e.size == 0 or np.any(~np.isfinite(e)) or np.any(e < 0):
        raise ValueError("target_energies must be a non-empty array of finite values >= 0")
    return e


def kernel_ridge_risk(n_train: int, dim: int, profile, target_energies, *, ridge: float,
                      noise_variance: float = 0.0, max_degree: int | None = None) -> float:
    """Deterministic-equivalent excess risk E(f̂ − f*)² of kernel ridge (module docstring).

    Args:
        n_train: n ≥ 1; dim: d ≥ 3; profile: h with K(x, y) = h(⟨x, y⟩/d), positive definite.
        target_energies: e_k = ‖P_k f*‖², k = 0..len−1 (degrees beyond are zero).
        ridge: λ ≥ 0 on the (1/n)Σ loss scale; noise_variance: σ² ≥ 0.
        max_degree: degrees treated individually (default len(target_energies) + 2).
    """
    d = _check_dim(dim)
    if int(n_train) != n_train or n_train < 1:
        raise ValueError(f"n_train must be an integer >= 1, got {n_train!r}")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if not (np.isfinite(noise_variance) and noise_variance >= 0):
        raise ValueError(f"noise_variance must be >= 0, got {noise_variance!r}")
    e = _energies(target_energies)
    k_max = e.size + 2 if max_degree is None else int(max_degree)
    mu = kernel_degree_eigenvalues(profile, d, max(k_max, e.size - 1))
    if np.any(mu < -1e-12 * abs(mu).max()):
        raise ValueError("profile is not a positive definite kernel on the sphere (negative μ_k)")
    mu = mu.clip(min=0.0)
    mult = np.array([harmonic_dimension(d, k) for k in range(mu.size)], dtype=np.float64)
    tail = max(float(np.asarray(profile(np.array([1.0])))[0]) - float(mult @ mu), 0.0)
    kappa = _effective_ridge(float(n_train), mu, mult, tail, ridge)
    learn = mu / (mu + kappa)
    e0 = n_train / (n_train - float(mult @ learn**2))
    padded = np.zeros(mu.size)
    padded[: e.size] = e
    return e0 * (float(((1 - learn) ** 2) @ padded) + noise_variance) - noise_variance


def _effective_ridge(n, mu, mult, tail, ridge):
    """κ solving n = Σ N_k μ_k/(μ_k + κ) + (tail + nλ)/κ; the right side decreases in κ."""
    def excess(kappa):
        return float(mult @ (mu / (mu + kappa))) + (tail + n * ridge) / kappa - n
    if tail + n * ridge == 0 and mult[mu > 0].sum() <= n:
        raise ValueError("ridgeless interpolation needs more kernel eigenfunctions than samples; "
                         "raise max_degree or use ridge > 0")
    low, high = 1e-300, max(float(mu.max()), 1.0)
    while excess(high) > 0:
        high *= 2.0
    for _ in range(2000):
        mid = math.sqrt(low * high) if high / low > 4 else 0.5 * (low + high)
        if excess(mid) > 0:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * high:
            break
    return 0.5 * (low + high)
