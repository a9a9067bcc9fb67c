"""Kernel Gram spectra and the power-law decay of their eigenvalues.

Notation: K (n × n) a kernel Gram matrix k(x_i, x_j) on n inputs; γ_1 ≥ γ_2 ≥ … the
eigenvalues of K/n, which estimate the eigenvalues of the kernel's integral operator on the
input law (Koltchinskii & Giné 2000). Xie, Liang & Song (2017) bound the number of semi-random
units needed by N ≳ 1/γ_m (THEORY.md §3); a decay γ_m ∝ m^(−α) is summarized by α.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gram_spectrum", "power_law_exponent"]


def gram_spectrum(gram) -> np.ndarray:
    """Eigenvalues γ_1 ≥ γ_2 ≥ … ≥ 0 of K/n for a symmetric positive semi-definite Gram matrix.

    Args:
        gram: K, array-like (n, n), float64 (numpy or torch); symmetrized as (K + Kᵀ)/2.
    Returns:
        (n,) float64, descending; the tiny negative eigenvalues of round-off are clipped to 0.
    """
    matrix = np.asarray(gram, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"gram must be a square (n, n) matrix with n >= 1, got shape "
                         f"{matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("gram must be finite, got a NaN or infinite entry")
    values = np.linalg.eigvalsh(0.5 * (matrix + matrix.T))[::-1] / matrix.shape[0]
    return np.clip(values, 0.0, None)


def power_law_exponent(values, low: int = 5, high: int | None = None) -> float:
    """α of the least-squares fit log γ_m = c − α log m over ranks ``low`` … ``high``.

    Args:
        values: γ_1, γ_2, … (m = 1, 2, …), array-like (n,); non-positive entries are skipped.
        low: first rank of the fit (≥ 1); high: last rank (default max(low + 2, n/5)).
    Returns:
        α (exact for γ_m = C·m^(−α)).
    Raises:
        ValueError: fewer than two positive eigenvalues in the window.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if int(low) != low or low < 1:
        raise ValueError(f"low must be an integer >= 1, got {low!r}")
    high = high or max(low + 2, len(values) // 5)
    ranks = np.arange(1, len(values) + 1)
    keep = (ranks >= low) & (ranks <= high) & (values > 0) & np.isfinite(values)
    if keep.sum() < 2:
        raise ValueError(f"power_law_exponent needs two positive values at ranks {low} … "
                         f"{high}, got {int(keep.sum())}")
    slope, _ = np.polyfit(np.log(ranks[keep]), np.log(values[keep]), 1)
    return float(-slope)
