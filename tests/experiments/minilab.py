"""A small but real lab that follows docs/CONTRACTS.md, for testing the experiment machinery.

Task ``linear``: x ~ N(0, I_d), y = β·x + noise·ε with β ~ N(0, I/d) drawn from the task stream.
Its population risk for any predictor is E(f(x) − y)², estimated on a fixed sample of 4000 points
(deterministic), and exactly |w − β|² + noise² for a linear predictor. ``null_risk`` is
E y² = |β|² + noise² (E y = 0).

Regimes (frozen keyword-only dataclasses validating their fields):
* ``ridge_features``: random ReLU-type features W ~ N(0, I/d) (width × d) from the fit stream,
  head by ridge regression (population fit: the task's fixed 4000-point sample);
* ``gradient_descent``: full-batch GD on a linear model; raises DivergenceError when the loss
  exceeds 1e8 (large learning rates), reporting the step;
* ``flaky``: fails (RuntimeError) the first time it sees each marker file, then fits a constant;
* ``doomed``: kills its own process (SIGKILL) the first time it sees its marker file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lazylab.activations import get_activation
from lazylab.errors import DivergenceError
from lazylab.experiments.catalog import Catalog

import torch


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class LinearTask:
    beta: np.ndarray
    noise: float
    has_moments: bool

    @property
    def dim(self) -> int:
        return self.beta.shape[0]

    @property
    def null_risk(self) -> float:
        return float(self.beta @ self.beta + self.noise ** 2)

    def sample(self, n: int, *, rng: np.random.Generator) -> Dataset:
        x = rng.standard_normal((n, self.dim))
        return Dataset(x, x @ self.beta + self.noise * rng.standard_normal(n))

    def reference_sample(self) -> Dataset:
        return self.sample(4000, rng=np.random.default_rng(12345))


def linear(*, rng: np.random.Generator, dim: int = 4, noise: float = 0.1,
           moments: bool = True) -> LinearTask:
    """Build the linear task (dim ≥ 1, noise ≥ 0)."""
    if dim < 1:
        raise ValueError(f"dim={dim} must be a positive integer")
    if noise < 0:
        raise ValueError(f"noise={noise} must be non-negative")
    return LinearTask(rng.standard_normal(dim) / math.sqrt(dim), float(noise), moments)


@dataclass(frozen=True)
class Predictor:
    weights: np.ndarray | None
    head: np.ndarray
    activation: object | None
    diagnostics: dict

    def features(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            return x
        return self.activation(torch.from_numpy(x @ self.weights.T)).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.features(x) @ self.head


def _training_data(data_or_task) -> Dataset:
    return data_or_task.reference_sample() if isinstance(data_or_task, LinearTask) else data_or_task


@dataclass(frozen=True, kw_only=True)
class RidgeFeatures:
    width: int = 8
    activation: str = "relu"
    ridge: float = 1e-3

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width={self.width} must be a positive integer")
        if self.ridge < 0:
            raise ValueError(f"ridge={self.ridge} must be non-negative")
        get_activation(self.activation)

    def fit(self, data_or_task, *, rng: np.random.Generator) -> Predictor:
        data = _training_data(data_or_task)
        dim = data.x.shape[1]
        weights = rng.standard_normal((self.width, dim)) / math.sqrt(dim)
        model = Predictor(weights, np.zeros(self.width), get_activation(self.activation), {})
        features = model.features(data.x)
        gram = features.T @ features + self.ridge * data.n_samples * np.eye(self.width)
        head = np.linalg.solve(gram, features.T @ data.y)
        return dataclasses.replace(model, head=head,
                                   diagnostics={"head_norm": float(np.linalg.norm(head))})


@dataclass(frozen=True, kw_only=True)
class GradientDescent:
    learning_rate: float = 0.1
    steps: int = 50

    def fit(self, data_or_task, *, rng: np.random.Generator, progress=None) -> Predictor:
        data = _training_data(data_or_task)
        head = 0.01 * rng.standard_normal(data.x.shape[1])
        for step in range(self.steps):
            residual = data.x @ head - data.y
            loss = float(residual @ residual) / data.n_samples
            if not loss < 1e8:
                raise DivergenceError(f"loss {loss:.3g} at step {step}", step=step)
            head = head - self.learning_rate * 2 * data.x.T @ residual / data.n_samples
            if progress is not None:
                progress(step + 1, self.steps)
        return Predictor(None, head, None, {"steps": float(self.steps)})


@dataclass(frozen=True, kw_only=True)
class Flaky:
    marker: str

    def fit(self, data_or_task, *, rng: np.random.Generator) -> Predictor:
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text("seen")
            raise RuntimeError(f"first attempt fails ({marker.name})")
        data = _training_data(data_or_task)
        return Predictor(None, np.zeros(data.x.shape[1]), None, {})


@dataclass(frozen=True, kw_only=True)
class Doomed:
    """Kills its own process with SIGKILL the first time it sees its marker file, then fits 0."""

    marker: str

    def fit(self, data_or_task, *, rng: np.random.Generator) -> Predictor:
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        data = _training_data(data_or_task)
        return Predictor(None, np.zeros(data.x.shape[1]), None, {})


def empirical_risk(predictor: Predictor, data: Dataset) -> float:
    residual = predictor.predict(data.x) - data.y
    return float(residual @ residual) / data.n_samples


def population_risk(predictor: Predictor, task: LinearTask) -> float:
    if predictor.weights is None:
        gap = predictor.head - task.beta
        return float(gap @ gap + task.noise ** 2)
    return empirical_risk(predictor, task.reference_sample())


CATALOG = Catalog(tasks={"linear": linear},
                  regimes={"ridge_features": RidgeFeatures, "gradient_descent": GradientDescent,
                           "flaky": Flaky, "doomed": Doomed},
                  empirical_risk=empirical_risk, population_risk=population_risk,
                  theory_package="experiments.minitheory")
