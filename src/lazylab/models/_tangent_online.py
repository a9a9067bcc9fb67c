"""NeuralTangent's "sgd" solver: the batches, the run, and learning curves along it.

:func:`fit_online` draws the batches (:func:`batch_draw`), runs
:func:`lazylab.models._tangent_solvers.online_sgd` and builds the fitted model on the CPU. With
``checkpoints = (t₁, …, t_k)`` (online on a task with population moments) the packed
parameters and the offset are copied right after the t_j-th step (on their device, no host
synchronization), and once training is over the exact population risk of each copy is
reported as ``population_risk_at_<t>`` — the same diagnostics, and the same
:func:`lazylab.experiments.learning_curve`, as the network's checkpoints
(:mod:`lazylab.models._network_checkpoints`). The step size (calibrated on its own first draw)
and the batches (drawn per step, or in fixed blocks on a GPU) do not depend on the budget, so a
checkpoint equals a separate run of t steps fitted with the same generator, unless that run
stopped on ``sgd_tol`` first; a t after the run's own stop reports its final model.
"""

from __future__ import annotations

import numpy as np
import torch

from lazylab.models._network_checkpoints import CHECKPOINT_METRIC, step_marks
from lazylab.models._tangent_solvers import online_sgd
from lazylab.predictors import NeuralTangentModel
from lazylab.risk import population_risk
from lazylab.solvers.batches import DEVICE_BLOCK_ROWS, on_device

__all__ = ["fit_online", "batch_draw", "check_tangent_checkpoints"]


def check_tangent_checkpoints(regime) -> tuple[int, ...]:
    """``regime.checkpoints`` by :func:`~lazylab.models._network_checkpoints.step_marks` within
    ``steps``, with the "sgd" solver; ValueError otherwise."""
    marks = step_marks(regime.checkpoints, regime.steps, f"steps={regime.steps}")
    if marks and regime.solver != "sgd":
        raise ValueError(f"checkpoints apply to solver='sgd', got solver={regime.solver!r}")
    return marks


def fit_online(regime, build, features, data, task, *, rng: np.random.Generator,
               progress) -> NeuralTangentModel:
    """The "sgd" fit of ``regime`` on ``features`` (a GatedFeatures of the drawn W, on the
    regime's device): online on a task, with replacement on a Dataset. ``build(v, c, info)``
    makes the CPU model from a packed (A, h) vector v (p,), an offset c and its diagnostics
    (``neural_tangent._solved_model``); the checkpoint copies are built the same way."""
    if regime.checkpoints and (task is None or not getattr(task, "has_moments", False)):
        raise ValueError("checkpoints need online training on a task with population moments "
                         "(the exact risk of each copy)")
    device = features.weights.device
    draw = batch_draw(data, task, rng)
    if device.type != "cpu":
        draw = on_device(draw, device, DEVICE_BLOCK_ROWS)
    copies = {}
    result = online_sgd(features, draw, learning_rate=regime.learning_rate,
                        batch_size=regime.batch_size, steps=regime.steps, tol=regime.sgd_tol,
                        ridge=regime.ridge, checkpoints=regime.checkpoints,
                        on_checkpoint=lambda t, v, c: copies.__setitem__(t, (v.clone(), c)),
                        callback=None if progress is None else (lambda s, _: progress(s, None)))
    fitted = build(result.vector, result.offset, {
        "steps": result.steps, "samples_seen": result.steps * regime.batch_size,
        "calibration_samples": result.calibration_samples,
        "converged": float(result.converged), "final_train_loss": result.final_loss})
    fitted.diagnostics.update({
        CHECKPOINT_METRIC.format(t): float(population_risk(
            build(*copies[t], {}) if t in copies else fitted, task)) for t in regime.checkpoints})
    return fitted


def batch_draw(data, task, rng: np.random.Generator):
    """batch ↦ (x (batch, d), y (batch,)) float64 for NT online SGD. On a task: fresh draws by its float64 ``batch_sampler``
    (checked once, not per step) or by ``task.sample``, from a child stream — numpy's SFC64 bit
    generator seeded by one integer from ``rng`` (the same ziggurat normals as numpy's default
    PCG64, ≈ 15 % faster at d = 450, where the draw is half of the step at N = 45); on a
    Dataset, rows drawn with replacement by ``rng``."""
    if task is None:
        def resample(batch):
            index = torch.from_numpy(rng.integers(0, data.x.shape[0], size=batch))
            return data.x[index], data.y[index]
        return resample
    stream = np.random.Generator(np.random.SFC64(int(rng.integers(2 ** 63))))
    sampler = getattr(task, "batch_sampler", None)
    draw = None if sampler is None else sampler(rng=stream, dtype=torch.float64)
    if draw is not None:
        return draw

    def sample(batch):
        data = task.sample(batch, rng=stream)
        return data.x, data.y
    return sample
