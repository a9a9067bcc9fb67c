"""Theory curves a spec's ``[plot] theory`` can draw: Ghorbani et al.'s quadratic-target risks
as functions of the width, on the task instance the runs used.

The functions of :mod:`lazylab.theory.ghorbani_quadratic` take the matrix B and the ratio
ρ = N/d; a spec names a preset (``matrix = "exp-diagonal"``), not a matrix, so they cannot be
drawn from a spec as they are. These wrappers follow the plot protocol instead
(:func:`lazylab.experiments.catalog.resolve_theory`): ``f(width, *, task)``, with ``task`` the
instance built from the sweep's first seed — the same B, drawn from the same task stream, as the
runs of that seed. Use them with ``x = "width"`` and ``y = "risk_normalized"``::

    [plot]
    x = "width"
    y = "risk_normalized"
    theory = ["curves.random_features_quadratic", "curves.neural_tangent_quadratic",
              "curves.network_quadratic"]

Why the instance's B and not the large-d limit: a preset such as ``exp-diagonal`` draws B anew
for each seed, and the formulas depend on B through T = Tr(B)²/(d‖B‖_F²) (RF, NT) and its
spectrum (NN), which fluctuate by O(d^{-1/2}) from seed to seed — no more than the theorems'
own o(1) error, and the same for every preset or explicit matrix; the large-d closed forms
(:func:`~lazylab.theory.ghorbani_quadratic.figure1_large_dim_risks`) exist for one preset only.
The line is exact in B for the first seed, and the dots average the seeds.

Normalization: the runs record ``risk_normalized`` = R/R₀ with R₀ = Var y = 2‖B‖_F² + noise²
(the best constant), the theorems R_signal/‖f*‖² with ‖f*‖² = 2‖B‖_F²; with label noise the
population risk is R_signal + noise², so each curve returns
``(r · 2‖B‖_F² + noise²) / (2‖B‖_F² + noise²)`` for the theorem's normalized r (r itself when
noise = 0). The target must be centered (offset −Tr B, the task's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lazylab.theory.ghorbani_quadratic import (network_risk, neural_tangent_expected_risk,
                                               random_features_risk_quadratic_activation)

__all__ = ["random_features_quadratic", "neural_tangent_quadratic", "network_quadratic"]


def _target_matrix(task: Any) -> np.ndarray:
    """B of a quadratic task instance as a float64 (d, d) array.

    Raises:
        TypeError: when ``task`` has no matrix B (not a quadratic task).
        ValueError: when its target is not centered (offset ≠ −Tr B).
    """
    matrix = getattr(task, "matrix", None)
    if matrix is None:
        raise TypeError(f"task must be a quadratic task (with a matrix B), got "
                        f"{type(task).__name__}")
    b = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix,
                   dtype=np.float64)
    offset = float(getattr(task, "offset", -np.trace(b)))
    if abs(offset + np.trace(b)) > 1e-9 * max(1.0, abs(np.trace(b))):
        raise ValueError(f"the theorems need a centered target (offset = -Tr B = "
                         f"{-np.trace(b):.6g}), got offset={offset:.6g}")
    return b


def _with_noise(normalized: np.ndarray, b: np.ndarray, task: Any) -> np.ndarray:
    """(r · 2‖B‖_F² + noise²) / (2‖B‖_F² + noise²): the recorded R/R₀ from the theorem's r."""
    signal = 2.0 * float(np.sum(b * b))
    noise2 = float(getattr(task, "noise", 0.0)) ** 2
    return (np.asarray(normalized, dtype=np.float64) * signal + noise2) / (signal + noise2)


def _widths(width: Any) -> np.ndarray:
    widths = np.asarray(width, dtype=np.float64)
    if not np.all(np.isfinite(widths)) or np.any(widths <= 0):
        raise ValueError("width must hold positive finite numbers")
    return widths


def random_features_quadratic(width: Any, *, task: Any) -> np.ndarray:
    """RF with σ = u² − 1 (activation ``hermite2``), Γ = I/d, at n = ∞: Corollary 1, eq. (12),
    Ghorbani et al. 2019: r = 1 − ρT/(1 + ρ), ρ = N/d (asymptotic, error O(d^{-1/2})).

    Args:
        width: N, any shape (real values allowed: a smooth line).
        task: the quadratic task instance.
    Returns: R/R₀, float64, the shape of ``width``.
    """
    b = _target_matrix(task)
    ratio = _widths(width) / b.shape[0]
    return _with_noise(random_features_risk_quadratic_activation(ratio, b), b, task)


def neural_tangent_quadratic(width: Any, *, task: Any) -> np.ndarray:
    """NT with σ = x² (activation ``quadratic``), w_i ~ N(0, I/d), at n = ∞: the exact finite-d
    expectation over W (Theorem 2's finite-d form, THEORY §1.4, Weingarten calculus),
    evaluated at the integer width ⌊N⌋.

    Args and returns as :func:`random_features_quadratic`.
    """
    b = _target_matrix(task)
    widths = np.floor(_widths(width)).astype(np.int64)
    return _with_noise(neural_tangent_expected_risk(widths, b), b, task)


def network_quadratic(width: Any, *, task: Any) -> np.ndarray:
    """The best two-layer network with σ = x² and N units at n = ∞: Theorem 3,
    inf R/‖f*‖² = Σ_{i>N} λ_i(B)²/‖B‖_F² (eigenvalues decreasing; B ⪰ 0) — what feature
    learning can reach, the reference for the lazy regimes.

    Args and returns as :func:`random_features_quadratic`.
    """
    b = _target_matrix(task)
    ratio = np.floor(_widths(width)) / b.shape[0]
    return _with_noise(network_risk(ratio, b), b, task)
