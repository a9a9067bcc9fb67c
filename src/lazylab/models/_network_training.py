"""The training modes of :class:`lazylab.models.network.Network`: how each kind of input is fitted.

A table, not a branch on names: "population" (a task; gradient descent on the exact risk,
:func:`lazylab.solvers.training.population_descent`; for Theorem 3's model with N > d in the
d × d coordinates of :mod:`lazylab.models._quadratic_descent`, the same run at O(d³) per step),
"online" (a task; SGD/Adam on fresh samples,
:func:`~lazylab.solvers.training.fresh_batches`, samples seen = steps × batch) and "minibatch"
(a Dataset; reshuffled every epoch, :func:`~lazylab.solvers.training.minibatches`). Each mode
checks its input, trains the network's parameter groups and reports its own diagnostics (the
``fit`` docstring of Network lists them).

Population descent of the quadratic activation σ(u) = u² without biases on the quadratic or
mixture task uses the closed-form risk :func:`lazylab.risk.quadratic_network_risk` (O(N d²) per
step, a matrix polynomial in M = Wᵀdiag(a)W) instead of the general engine's N × N dual
matrices; both are the same exact risk (checked to 1e-10), every other case uses the engine.
When moreover the head is a fixed constant (``train="first"``), the optimizer plain SGD (with
or without momentum), there is no laziness and N > d, every step is a right multiplication of
U, and the same descent runs on P = Q₀ᵀU (d, d) at O(d³) per step
(:mod:`lazylab.models._quadratic_descent`; U = Q₀P is written back at the end).

Population descent with ``track_every`` set feeds a :class:`LearningMonitor` through the loop's
progress hook (every ``track_every`` steps, O(N d K)); its ``learned_step_k`` ride on the result
(:class:`MonitoredResult`) into the diagnostics.

Every mode's result carries the convergence certificate of
:mod:`lazylab.solvers.convergence`, reported as numbers (:func:`certificate`); ``stop_reason``
is coded by ``STOP_REASON_CODES``: 0 tolerance met, 1 step budget used up, 2 diverged,
3 batches exhausted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional

from lazylab.activations import get_activation
from lazylab.gaussian import feature_mean
from lazylab.models._common import resolve_input
from lazylab.models._network_checkpoints import checkpoint_risks, checkpointed, with_checkpoints
from lazylab.models._network_diagnostics import LearningMonitor, learning_monitor
from lazylab.models._quadratic_descent import applies, column_space
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.risk.quadratic import QUADRATIC_RISKS, quadratic_network_risk
from lazylab.solvers.convergence import STOP_REASONS
from lazylab.solvers.training import (DTYPES, TrainingResult, fresh_batches, minibatches,
                                      population_descent, resolve_device, train)
from lazylab.tasks import Dataset

__all__ = ["Scales", "Parameters", "NetworkState", "TrainingMode", "MODES", "STOP_REASON_CODES", "certificate", "exact_risk",
           "output_mean"]

STOP_REASON_CODES: dict[str, int] = {reason: code for code, reason in enumerate(STOP_REASONS)}
"""stop reason → numeric code stored in diagnostics: tolerance 0, budget 1, diverged 2,
exhausted 3."""

_EVAL_ROWS = 8192
_BLOCK_ROWS = 10_000


@dataclass(frozen=True)
class Scales:
    """One row of the module table at (d, N): s_in = ``input``, s_out = ``output``; u_i starts
    at s_w·``u_std``·N(0, I/d), v_i at s_a·``v_std``·N(0, 1); ``gradient`` multiplies the
    gradients of U, v and b (not c)."""

    input: float
    output: float
    u_std: float
    v_std: float
    gradient: float


@dataclass(frozen=True)
class Parameters:
    """Raw parameters θ: U (N, d), v (N,), b (N,) or None, c (scalar) or None."""

    u: torch.Tensor
    v: torch.Tensor
    b: torch.Tensor | None
    c: torch.Tensor | None

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Parameters:
        """The record with ``function`` applied to every present tensor."""
        return Parameters(*(None if t is None else function(t)
                            for t in (self.u, self.v, self.b, self.c)))


@dataclass(frozen=True)
class NetworkState:
    """The raw parameters (trained in place), their scales and the initial parameters (a
    detached copy, set once training starts). ``state["raw"]`` reads a field by name."""

    raw: Parameters
    scales: Scales
    initial: Parameters | None = None

    def __getitem__(self, name: str):
        return getattr(self, name)


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
    if net.checkpoints and not getattr(task, "has_moments", False):
        raise ValueError("checkpoints need the exact population risk: a task with population "
                         f"moments, got {type(task).__name__}")


def _check_minibatch(net, data: Dataset) -> None:
    if net.checkpoints:
        raise ValueError("checkpoints apply to online training on a task, not to a Dataset")
    if net.batch_size > data.n_samples:
        raise ValueError(f"batch_size={net.batch_size} exceeds the number of training "
                         f"samples n={data.n_samples}")


def _closed_form(model: TwoLayer, task) -> bool:
    """Whether :func:`quadratic_network_risk` applies: σ(u) = u², no biases, no linear part,
    a quadratic or mixture task."""
    return (getattr(model.activation, "name", None) == "quadratic" and model.biases is None
            and model.linear is None and type(task) in QUADRATIC_RISKS)


def exact_risk(model: TwoLayer, task) -> torch.Tensor:
    """E(y − f(x))², by the closed form when it applies, else by the general engine."""
    if _closed_form(model, task):
        return quadratic_network_risk(task, model.weights, model.head, model.offset)
    return population_risk(model, task)


@dataclass(frozen=True)
class MonitoredResult(TrainingResult):
    """A population run's result with the learning monitor's ``learned_step_k`` (name, value)."""

    milestones: tuple[tuple[str, float], ...] = ()


def _monitored(net, state, monitor: LearningMonitor, options: dict,
               sync: Callable[[], None] | None = None) -> dict:
    """``options`` with a progress hook that also feeds ``monitor`` every ``track_every`` steps
    (the loop calls it after step ``done``, at θ_done; ``sync()`` first brings the raw weights
    up to date) and still forwards the caller's progress at its own stride."""
    every, caller, stride = net.track_every, options["progress"], options["progress_every"]
    budget = net.budget

    def observe(done: int) -> None:
        if sync is not None:
            sync()
        model = net._predictor(state)
        monitor.observe(done, model.weights, model.head)

    def tick(done: int, last: float) -> None:
        if done % every == 0:
            observe(done)
        if caller is not None and (done % stride == 0 or done == budget):
            caller(done, last)

    observe(0)
    return dict(options, progress=tick,
                progress_every=every if caller is None else math.gcd(every, stride))


def _direct_risk(net, state, task) -> Callable[[], torch.Tensor]:
    """() ↦ the (lazy-scaled) exact risk of the network at its current raw parameters."""
    scale = net._loss_scale()
    return lambda: scale * exact_risk(net._predictor(state), task)


def _run_population(net, state, groups, task, rng, options) -> TrainingResult:
    """Population descent on (U, c), or on (P, c) with U = Q₀P when the d × d form applies
    (:mod:`lazylab.models._quadratic_descent`; U is written back at the end)."""
    halvings = options.pop("max_halvings")
    space = column_space(state) if applies(net, state, groups, task) else None
    if space is None:
        risk = _direct_risk(net, state, task)
    else:
        groups, risk = space.groups(groups), space.risk(state, task)
    monitor = learning_monitor(net, task)
    if monitor is not None:
        options = _monitored(net, state, monitor, options,
                             None if space is None else lambda: space.expand(state.raw.u))
    try:
        result = population_descent(groups, risk, backtracking=halvings > 0,
                                    max_halvings=max(halvings, 1), **options)
    finally:
        if space is not None:
            space.expand(state.raw.u)
    if monitor is None:
        return result
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(TrainingResult)}
    return MonitoredResult(**fields, milestones=tuple(monitor.diagnostics().items()))


def _run_samples(batches: Callable[..., object]) -> Callable[..., TrainingResult]:
    """Training on the batches ``batches(network, source, rng, device, dtype)`` yields."""
    def run(net, state, groups, source, rng, options) -> TrainingResult:
        device, dtype = resolve_device(net.device), DTYPES[net.dtype]
        options = {k: v for k, v in options.items() if k != "max_halvings"}
        options, snapshots = with_checkpoints(net, state, options)
        return checkpointed(train(groups, _sample_loss(net, state),
                                  batches(net, source, rng, device, dtype), **options), snapshots)

    return run


def _sample_loss(net, state: NetworkState) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(x, y) ↦ mean((y − f(x))²) of the plain network, f(x) = c + σ(x wᵀ + b)·a with
    (w, a, b, c) = ``net._effective`` — the ops of ``TwoLayer.predict`` without building a
    TwoLayer (and checking it) at every step, which is a tenth of a step at small N;
    the loss by ``mse_loss`` (the same numbers and gradients as mean(r·r), in one op and one
    backward node); the lazy network (``laziness``) keeps ``net._loss_fn``."""
    if net.laziness is not None:
        return net._loss_fn(state)
    sigma = get_activation(net.activation).function

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w, a, b, c = net._effective(state.raw, state.scales)
        pre = x @ w.T
        out = sigma(pre if b is None else pre + b) @ a
        return functional.mse_loss(out if c is None else out + c, y)  # one op, same bits

    return loss


def _fresh(net, task, rng, device, dtype):
    return fresh_batches(task, net.batch_size, rng=rng, device=device, dtype=dtype,
                         block_size=min(_BLOCK_ROWS, net.budget * net.batch_size))


def _reshuffled(net, data, rng, device, dtype):
    return minibatches(data, net.batch_size, rng=rng, device=device, dtype=dtype)


def _report_population(net, model, result, task) -> dict:
    risk = float(exact_risk(model, task))
    return {"population_risk": risk, "final_train_loss": risk,
            **dict(getattr(result, "milestones", ()))}


def _report_online(net, model, result, task) -> dict:
    return {"final_train_loss": net._loss_scale(inverse=True) * result.recent_loss,
            "samples_seen": result.steps * net.batch_size,
            **checkpoint_risks(net, model, result, task, exact_risk)}


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


def certificate(result: TrainingResult, learning_rate: float) -> dict[str, float]:
    """The convergence certificate as numbers: converged (0/1), steps, criterion (dropped by
    ``numeric`` while ∞, i.e. before the criterion's first window), tolerance, stop_reason
    (``STOP_REASON_CODES``), halvings and the final learning rate (after the halvings)."""
    return {"converged": float(result.converged), "steps": result.steps,
            "criterion": result.criterion, "tolerance": result.tolerance,
            "stop_reason": STOP_REASON_CODES[result.stop_reason],
            "halvings": result.halvings, "learning_rate": learning_rate}


def output_mean(model: TwoLayer, source) -> float | None:
    """E_x[f(x) − c]: exact over a task's Gaussian components (Σ_k p_k Σ_i a_i E σ(w_i·x + b_i),
    x ~ N(0, C_k), :func:`lazylab.gaussian.feature_mean`), the mean over a Dataset's inputs, or
    None for a task without population moments."""
    with torch.no_grad():
        if isinstance(source, Dataset):
            total = 0.0
            for start in range(0, source.n_samples, _EVAL_ROWS):
                x = source.x[start:start + _EVAL_ROWS].to(model.weights)
                total += float(torch.sum(model.features(x) @ model.head))
            return total / source.n_samples
        if not getattr(source, "has_moments", False):
            return None
        weights = model.weights.detach().cpu().double()
        biases = None if model.biases is None else model.biases.detach().cpu().double()
        head = model.head.detach().cpu().double()
        return sum(p * float(head @ feature_mean(model.activation, weights, biases, c))
                   for p, c in source.components)
