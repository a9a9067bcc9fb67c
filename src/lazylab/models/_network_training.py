"""The training modes of :class:`lazylab.models.network.Network`: how each kind of input is fitted.

A table, not a branch on names: "population" (a task; gradient descent on the exact risk,
:func:`lazylab.solvers.training.population_descent`), "online" (a task; SGD/Adam on fresh samples,
:func:`~lazylab.solvers.training.fresh_batches`, samples seen = steps × batch) and "minibatch"
(a Dataset; reshuffled every epoch, :func:`~lazylab.solvers.training.minibatches`). Each mode
checks its input, trains the network's parameter groups and reports its own diagnostics (the
``fit`` docstring of Network lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from lazylab.models._common import resolve_input
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.solvers.training import (DTYPES, TrainingResult, fresh_batches, minibatches,
                                      population_descent, resolve_device, train)
from lazylab.tasks import Dataset

__all__ = ["TrainingMode", "MODES"]

_EVAL_ROWS = 8192
_BLOCK_ROWS = 10_000


@dataclass(frozen=True)
class TrainingMode:
    """How one kind of input is trained: ``check(network, source)`` raises on a bad input,
    ``run(network, state, groups, source, rng, options)`` trains, ``report(network, model,
    result, source)`` gives the mode's diagnostics."""

    check: Callable[..., None]
    run: Callable[..., TrainingResult]
    report: Callable[..., dict]


def _check_population(net, task) -> None:
    resolve_input(task)
    if net.dtype != "float64" or torch.device(net.device).type != "cpu":
        raise ValueError("training='population' runs on the exact engine (float64, CPU); "
                         f"got dtype={net.dtype!r}, device={net.device!r}")


def _check_online(net, task) -> None:
    if not hasattr(task, "sample"):
        raise TypeError("training='online' needs a task with sample(n, rng=...), got "
                        f"{type(task).__name__}")


def _check_minibatch(net, data: Dataset) -> None:
    if net.batch_size > data.n_samples:
        raise ValueError(f"batch_size={net.batch_size} exceeds the number of training "
                         f"samples n={data.n_samples}")


def _run_population(net, state, groups, task, rng, options) -> TrainingResult:
    scale = net._loss_scale()
    return population_descent(
        groups, lambda: scale * population_risk(net._predictor(state), task), **options)


def _run_samples(batches: Callable[..., object]) -> Callable[..., TrainingResult]:
    """Training on the batches ``batches(network, source, rng, device, dtype)`` yields."""
    def run(net, state, groups, source, rng, options) -> TrainingResult:
        device, dtype = resolve_device(net.device), DTYPES[net.dtype]
        return train(groups, net._loss_fn(state), batches(net, source, rng, device, dtype),
                     **options)

    return run


def _fresh(net, task, rng, device, dtype):
    return fresh_batches(task, net.batch_size, rng=rng, device=device, dtype=dtype,
                         block_size=min(_BLOCK_ROWS, net.steps * net.batch_size))


def _reshuffled(net, data, rng, device, dtype):
    return minibatches(data, net.batch_size, rng=rng, device=device, dtype=dtype)


def _report_population(net, model, result, task) -> dict:
    risk = float(population_risk(model, task))
    return {"population_risk": risk, "final_train_loss": risk}


def _report_online(net, model, result, task) -> dict:
    return {"final_train_loss": net._loss_scale(inverse=True) * result.recent_loss,
            "samples_seen": result.steps * net.batch_size}


def _report_minibatch(net, model, result, data) -> dict:
    per_epoch = math.ceil(data.n_samples / net.batch_size)
    epochs, rest = divmod(result.steps, per_epoch)
    return {"final_train_loss": _data_loss(model, data),
            "samples_seen": epochs * data.n_samples + rest * net.batch_size}


MODES: dict[str, TrainingMode] = {
    "population": TrainingMode(_check_population, _run_population, _report_population),
    "online": TrainingMode(_check_online, _run_samples(_fresh), _report_online),
    "minibatch": TrainingMode(_check_minibatch, _run_samples(_reshuffled), _report_minibatch),
}
"""Input kind → its training mode: a task by ``training``, a Dataset always "minibatch"."""


def _data_loss(model: TwoLayer, data: Dataset) -> float:
    """(1/n) Σ (y − f(x))² in blocks (float64)."""
    total = 0.0
    for start in range(0, data.n_samples, _EVAL_ROWS):
        residual = data.y[start:start + _EVAL_ROWS] - model.predict(data.x[start:start + _EVAL_ROWS])
        total += float(torch.sum(residual * residual))
    return total / data.n_samples
