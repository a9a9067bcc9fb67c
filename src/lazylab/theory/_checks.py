"""Input validation shared by the theory modules (ValueError naming parameter, value, allowed)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_width_ratio", "as_symmetric_matrix", "require_psd", "as_positive_int_array"]


def as_width_ratio(width_ratio, name: str = "width_ratio") -> np.ndarray:
    """ρ = N/d as a float64 array; every entry must be finite and > 0."""
    rho = np.asarray(width_ratio, dtype=np.float64)
    if rho.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = ~np.isfinite(rho) | (rho <= 0)
    if np.any(bad):
        first = float(rho[bad].ravel()[0])
        raise ValueError(f"{name} must be finite and > 0 (rho = N/d), got {first!r}")
    return rho


def as_positive_int_array(values, name: str, *, allow_zero: bool = True) -> np.ndarray:
    """Integer counts (widths, sample sizes) as an int64 array."""
    arr = np.asarray(values)
    floats = arr.astype(np.float64)
    low = 0 if allow_zero else 1
    if arr.size == 0 or np.any(~np.isfinite(floats)) or np.any(floats != np.round(floats)) \
            or np.any(floats < low):
        raise ValueError(f"{name} must hold integers >= {low}, got {values!r}")
    return floats.astype(np.int64)


def as_symmetric_matrix(matrix, name: str) -> np.ndarray:
    """A square, finite, symmetric float64 matrix (relative asymmetry <= 1e-10)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite")
    scale = max(float(np.abs(m).max()), 1e-300)
    if float(np.abs(m - m.T).max()) > 1e-10 * scale:
        gap = float(np.abs(m - m.T).max())
        raise ValueError(f"{name} must be symmetric, got max |M - M^T| = {gap:.3g}")
    return 0.5 * (m + m.T)


def require_psd(matrix: np.ndarray, name: str, eigenvalues: np.ndarray | None = None) -> np.ndarray:
    """Return the eigenvalues of ``matrix`` after checking λ_min >= -1e-10·‖M‖_op."""
    eig = np.linalg.eigvalsh(matrix) if eigenvalues is None else eigenvalues
    tol = 1e-10 * max(float(np.abs(eig).max()), 1e-300)
    if eig.min() < -tol:
        raise ValueError(f"{name} must be positive semidefinite, got smallest eigenvalue "
                         f"{eig.min():.6g}")
    return eig
