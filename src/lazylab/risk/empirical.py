"""Empirical risk on a data set."""

from __future__ import annotations

import torch

__all__ = ["empirical_risk"]


def empirical_risk(predictor, data, *, block_size: int = 65536) -> float:
    """Mean squared error (1/n) Σ (y_i − f(x_i))² over ``data`` (a Dataset with x (n, d), y (n,)).

    Evaluated in blocks of ``block_size`` rows so that wide predictors on large test sets stay
    within memory.
    """
    x, y = data.x, data.y
    if x.shape[0] == 0:
        raise ValueError("data must contain at least one sample")
    total = 0.0
    with torch.no_grad():
        for start in range(0, x.shape[0], block_size):
            residual = y[start:start + block_size] - predictor.predict(x[start:start + block_size])
            total += float(torch.sum(residual * residual))
    return total / x.shape[0]
