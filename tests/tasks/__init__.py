"""Shared checks for the task tests.

Monte Carlo convention (DESIGN.md, testing habits): a Monte Carlo mean of m iid samples is
compared with the exact value within K = 5 estimated standard errors σ̂/√m. For a single
checked number the two-sided failure probability is P(|Z| > 5) ≈ 5.7e-7 (normal approximation,
m ≥ 10⁵); a check over k numbers fails with probability at most k·5.7e-7. Seeds are fixed, so
the tests are deterministic; the bound says how unlikely a failure of a correct formula is.
"""

from __future__ import annotations

import math

import numpy as np
import torch

K_SIGMA = 5.0
FAILURE_PER_NUMBER = math.erfc(K_SIGMA / math.sqrt(2.0))     # ≈ 5.7e-7


def assert_mc_close(exact, samples: torch.Tensor, *, k: float = K_SIGMA, label: str = "") -> None:
    """|exact − mean(samples)| ≤ k·σ̂/√m elementwise; ``samples`` has shape (m, *exact.shape)."""
    exact = torch.as_tensor(exact, dtype=torch.float64).detach()
    m = samples.shape[0]
    mean = samples.mean(0)
    error = samples.std(0) / math.sqrt(m)
    gap = (exact - mean).abs()
    bound = k * error + 1e-12 * (1 + exact.abs())
    worst = float((gap / bound).max())
    assert torch.all(gap <= bound), (
        f"{label}: exact vs Monte Carlo differs by up to {worst:.2f}×(k σ̂/√m), m = {m}; "
        f"exact {exact.flatten()[:6].tolist()}, MC {mean.flatten()[:6].tolist()}")


def random_rotation(dim: int, rng: np.random.Generator) -> torch.Tensor:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return torch.from_numpy(q * np.sign(np.diag(r)))


def feature_samples(task_data, activation, weights, biases=None) -> torch.Tensor:
    """y σ(w_i·x + b_i) per sample, shape (m, N)."""
    from lazylab.activations import get_activation
    sigma = get_activation(activation)
    pre = task_data.x @ weights.T
    if biases is not None:
        pre = pre + biases
    return task_data.y[:, None] * sigma(pre)


def tangent_samples(task_data, activation, weights) -> torch.Tensor:
    """y σ′(w_i·x) x per sample, shape (m, N, d)."""
    from lazylab.activations import get_activation
    derivative = get_activation(activation).derivative()
    return (task_data.y[:, None] * derivative(task_data.x @ weights.T))[:, :, None] \
        * task_data.x[:, None, :]


def random_units(rng: np.random.Generator, width: int, dim: int, *, scale: float = 0.8):
    """Weights (N, d) with norms around ``scale`` and biases (N,) ~ N(0, 0.5²)."""
    weights = torch.from_numpy(rng.standard_normal((width, dim))) * scale / math.sqrt(dim)
    biases = torch.from_numpy(rng.standard_normal(width)) * 0.5
    return weights, biases
