"""Shared helpers of the exact-risk tests: a seeded task and the Monte Carlo risk of a predictor."""

from __future__ import annotations

import math

import numpy as np
import torch

from lazylab.tasks import TASKS


def build(name, seed=0, **params):
    """TASKS[name] drawn with a fixed seed."""
    return TASKS[name](rng=np.random.default_rng(seed), **params)


def monte_carlo_risk(predictor, task, n, seed):
    """Mean and standard error of (y − f(x))² over n fresh samples."""
    data = task.sample(n, rng=np.random.default_rng(seed))
    with torch.no_grad():
        squares = (data.y - predictor.predict(data.x)) ** 2
    return float(squares.mean()), float(squares.std()) / math.sqrt(n)
