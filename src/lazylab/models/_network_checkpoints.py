"""Learning curves along one online run of :class:`lazylab.models.network.Network`.

``Network(training="online", checkpoints=(t₁, …, t_k))`` copies the predictor aside right after
the t_j-th update (the loop's ``on_checkpoint`` hook: one comparison a step, a copy of the
parameters on the device at each mark, no host synchronization) and, once training is over,
evaluates the exact population risk of each copy: the diagnostics ``population_risk_at_<t>``
(metric columns of a sweep; :func:`lazylab.experiments.learning_curve` reads them back as one
row per checkpoint, with samples = t × batch). One run of T steps thus gives the whole curve
instead of k runs of t₁ + … + t_k steps.

What a checkpoint is: the state of *this* run after t steps. It equals a separate run of
``steps=t`` fitted with the same generator exactly when nothing before step t depends on the
budget (in a sweep each run has its own streams, so there they agree in distribution): the
constant schedule (the "paper" schedule drops the rate at fractions of the budget), no stop
on a tolerance before t, and the same blocks of online draws (blocks of
min(10⁴ rows, budget × batch): equal once t × batch ≥ 10⁴); tested to the bit there. A run
stopped on its tolerance before t reports its final state at t (training would not have moved
it). A divergence retried at a halved rate restarts the copies with it. Every checkpoint needs
the exact risk, hence a task with population moments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from lazylab.solvers.training import TrainingResult

__all__ = ["CheckpointedResult", "check_checkpoints", "step_marks", "with_checkpoints",
           "checkpointed", "checkpoint_risks", "CHECKPOINT_METRIC"]

CHECKPOINT_METRIC = "population_risk_at_{}"
"""The diagnostic of the checkpoint after t steps (``.format(t)``)."""


@dataclass(frozen=True)
class CheckpointedResult(TrainingResult):
    """An online run's result with its copies: ((t, predictor after t steps), …) in order."""

    snapshots: tuple[tuple[int, Any], ...] = ()


def step_marks(value, budget: int, limit: str) -> tuple[int, ...]:
    """``value`` as a tuple of strictly increasing positive step counts ≤ ``budget`` (``limit``
    names the budget in the error); ValueError naming the value as given otherwise."""
    marks = tuple(value)
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in marks) or any(
            a >= b for a, b in zip(marks, marks[1:])):
        raise ValueError(f"checkpoints must be strictly increasing positive step counts, got "
                         f"{value!r}")
    if marks and marks[-1] > budget:
        raise ValueError(f"checkpoints must not exceed {limit}, got {marks[-1]}")
    return marks


def check_checkpoints(net) -> tuple[int, ...]:
    """``net.checkpoints`` by :func:`step_marks` within the step budget, for online training."""
    marks = step_marks(net.checkpoints, net.budget, f"the step budget {net.budget}")
    if marks and net.training != "online":
        raise ValueError(f"checkpoints apply to training='online', got training={net.training!r}")
    return marks


def with_checkpoints(net, state, options: dict) -> tuple[dict, list]:
    """(``options`` with the copying hook, the list it fills with (t, predictor copy))."""
    if not net.checkpoints:
        return options, []
    snapshots: list = []

    def copy(done: int) -> None:
        with torch.no_grad():
            snapshots.append((done, _converted(net._predictor(state), torch.clone)))

    return dict(options, checkpoints=net.checkpoints, on_checkpoint=copy), snapshots


def checkpointed(result: TrainingResult, snapshots: list) -> TrainingResult:
    """``result`` carrying ``snapshots`` (itself when there are none)."""
    if not snapshots:
        return result
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(TrainingResult)}
    return CheckpointedResult(**fields, snapshots=tuple(snapshots))


def checkpoint_risks(net, model, result: TrainingResult, task, risk) -> dict[str, float]:
    """``population_risk_at_<t>`` for every checkpoint: ``risk(copy, task)`` of the predictor
    copied after t steps, or of the final ``model`` for a t the run did not reach."""
    copies = dict(getattr(result, "snapshots", ()))
    return {CHECKPOINT_METRIC.format(mark): float(risk(
        _converted(copies[mark], lambda t: t.cpu().double()) if mark in copies else model, task))
        for mark in net.checkpoints}


def _converted(model, convert):
    """The predictor with ``convert`` applied to each detached parameter tensor."""
    def apply(tensor):
        return None if tensor is None else convert(torch.as_tensor(tensor).detach())

    return type(model)(model.activation, apply(model.weights), apply(model.head),
                       biases=apply(model.biases), offset=apply(model.offset))
