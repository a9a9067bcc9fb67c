"""Predictions for the linear test task."""

import numpy as np


def noise_floor(x_values, *, noise=0.1):
    """Bayes risk noise² of the linear task, constant in x."""
    return np.full(np.shape(x_values), float(noise) ** 2)


def least_squares_risk(x_values, *, dim=4, noise=0.1):
    """E R of least squares with n samples: noise²·n/(n − d − 1) for n > d + 1, else inf."""
    n = np.asarray(x_values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > dim + 1, noise ** 2 * n / (n - dim - 1), np.inf)


def signal_fraction(x_values, *, task):
    """|β|² / R₀ of the simulated task instance, constant in x (uses the task itself)."""
    beta = task.beta
    return np.full(np.shape(x_values), float(beta @ beta) / task.null_risk)


def needs_matrix(x_values, target_matrix):
    """A curve that cannot be called with task parameters alone (for the validation test)."""
    return np.asarray(x_values) * 0 + np.trace(target_matrix)
