"""Small helpers on sampled risk curves, shared by the studies."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["threshold_crossing"]


def threshold_crossing(x_values, risks, threshold: float) -> float:
    """First x at which a risk curve reaches ``threshold``.

    Args:
        x_values: grid (any order), e.g. widths or sample sizes; risks: the curve on it.
    Returns:
        The crossing by log–log interpolation between the two bracketing grid points, the first
        grid point if it is already below, or ``inf`` when the grid never reaches the threshold.
    """
    x_values, risks = np.asarray(x_values, float), np.asarray(risks, float)
    order = np.argsort(x_values)
    x_values, risks = x_values[order], np.maximum(risks[order], 1e-300)
    below = np.nonzero(risks <= threshold)[0]
    if below.size == 0:
        return math.inf
    k = int(below[0])
    if k == 0:
        return float(x_values[0])
    x0, x1 = np.log(x_values[k - 1]), np.log(x_values[k])
    y0, y1 = np.log(risks[k - 1]), np.log(risks[k])
    t = (np.log(threshold) - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(np.exp(x0 + t * (x1 - x0)))
