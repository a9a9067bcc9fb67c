"""Growth laws of a required size against the dimension: exponential and power-law fits.

A separation theorem states how a size (features r, samples n) must grow with the dimension d:
Yehudai & Shamir (2019) r·max|u_i| ≥ exp(c·d) (THEORY.md §2.3), Damian, Lee & Soltanolkotabi
(2022) n ≍ d²r + dr^p for one gradient step against n ≍ d^p for kernels (THEORY.md §4). These
least-squares fits turn measured sizes into the rate c or the exponent p.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exponential_fit", "log_log_slope"]


def _finite_positive(dims, values) -> tuple[np.ndarray, np.ndarray]:
    dims = np.asarray(dims, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if dims.shape != values.shape:
        raise ValueError(f"dims and values must have the same length, got {dims.size} and "
                         f"{values.size}")
    keep = np.isfinite(dims) & np.isfinite(values) & (values > 0)
    return dims[keep], values[keep]


def exponential_fit(dims, values) -> tuple[float, float] | None:
    """Least squares of log(values) = a + c·d over the finite positive values.

    Args:
        dims: d (k,); values: the sizes at those d (k,); inf/NaN/≤ 0 entries are skipped.
    Returns:
        (a, c), so values ≈ e^a·e^(c·d); None when fewer than two points remain.
    """
    dims, values = _finite_positive(dims, values)
    if dims.size < 2:
        return None
    c, a = np.polyfit(dims, np.log(values), 1)
    return float(a), float(c)


def log_log_slope(dims, values) -> float | None:
    """p of the least-squares fit log(values) = b + p·log d (values ∝ d^p); None if < 2 points.

    Args:
        dims: d > 0 (k,); values: sizes (k,); inf/NaN/≤ 0 values are skipped.
    """
    dims, values = _finite_positive(dims, values)
    keep = dims > 0
    if keep.sum() < 2:
        return None
    slope, _ = np.polyfit(np.log(dims[keep]), np.log(values[keep]), 1)
    return float(slope)
