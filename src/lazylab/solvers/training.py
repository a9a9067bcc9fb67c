"""First-order trainers: minibatch / online SGD and Adam, and population gradient descent.

Generic and independent of the regimes: a trainer sees parameter tensors, a loss and a source of
batches. Notation: θ the trained tensors, η the learning rate, m(t) the schedule multiplier,
g_k the gradient multiplier of parameter group k.

* :func:`train` — θ ← θ − η m(t) · opt(g_k ∇θ loss(x_t, y_t)) over batches (x_t, y_t).
* :func:`population_descent` — the same loop on an exact, differentiable risk R(θ) (no data).
* :func:`fresh_batches` — online SGD: every step a fresh sample of the task (drawn in blocks),
  so samples seen = steps × batch (Ghorbani et al. 2019, §2.3 and §4; THEORY §1.5, §1.7).
* :func:`minibatches` — a fixed data set, reshuffled every epoch.
* :func:`paper_schedule` — the learning-rate drops of Ghorbani et al.'s code (THEORY §1.7).

Gradient multipliers (param group key ``"gradient_scale"``) reproduce the per-parameter
multipliers of the authors' TensorFlow code (mean-field scaling: ∇W × N): the gradient is
multiplied before the optimizer step. For SGD this equals a per-group learning rate; Adam is
invariant to it (up to its ε), as in the original.

Convergence (:mod:`lazylab.solvers.convergence`): every run stops on a stated tolerance with its
step count as a budget, and the result carries ``converged``, ``steps``, ``criterion`` (its
final value), ``tolerance`` and ``stop_reason`` ("tolerance", "budget", "diverged",
"exhausted"). A caller that passes only ``steps`` keeps the historical fixed budget, and
``converged`` still says honestly whether the criterion met the default tolerance at the end.
Minibatches of a fixed data set are judged on the full-batch training loss (relative change,
or L / Var y for a fit reaching interpolation), not on the noisy minibatch losses.

Divergence: a non-finite loss, a loss above ``divergence_threshold`` × the initial loss, or
non-finite parameters after the last step stop training; the result says ``diverged=True`` and
the step, and never carries NaN (``final_loss`` is the last finite loss). On a stream of
batches (not judged on the full batch) the losses are read at the criterion's checks, at most
``DEFERRED_STEPS`` apart, not after every step (no host synchronization per step): a divergence
is still reported at its own step, with the history and the criterion as they stood before it,
but the parameters have taken the steps up to that check. Population descent can instead back
off (``backtracking=True``): restore, halve η, retry, record.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Sequence

import torch

from lazylab import _checks as checks
from lazylab.solvers.convergence import (DEFAULT_MAX_STEPS, DEFAULT_WINDOW, FULL_BATCH_SAMPLES,
                                         POPULATION_TOLERANCE, SAMPLE_TOLERANCE,
                                         FullBatchCriterion, PlateauDecay, PopulationCriterion,
                                         WindowedCriterion, resolve_budget)
from lazylab.solvers.loop import (BACKTRACK_FACTOR, MAX_HALVINGS, OPTIMIZERS, TrainingLoop,
                                  TrainingResult)
from lazylab.solvers.batches import (DTYPES, Minibatches, fresh_batches, minibatches,
                                     resolve_device, resolve_dtype)

__all__ = ["TrainingResult", "train", "population_descent", "fresh_batches", "minibatches",
           "Minibatches", "full_batch_loss", "retry_halving",
           "paper_schedule", "constant_schedule", "resolve_device", "resolve_dtype",
           "OPTIMIZERS", "DTYPES", "DEFAULT_MAX_STEPS", "BACKTRACK_FACTOR", "MAX_HALVINGS",
           "SCHEDULES", "PlateauDecay", "DEFERRED_STEPS"]

# ----------------------------------------------------------------------------- schedules

SCHEDULES = ("constant", "plateau")
"""Named schedules of :func:`train`: m(t) = 1, or decay on a plateau of the criterion
(:class:`~lazylab.solvers.convergence.PlateauDecay` with its defaults)."""

def constant_schedule(step: int) -> float:
    """m(t) = 1."""
    return 1.0


def paper_schedule(steps: int, *, drops: Sequence[tuple[float, float]] = ((0.15, 0.1),
                                                                          (0.075, 1 / 15))):
    """The learning-rate drops of Ghorbani et al.'s code (THEORY §1.7), as fractions of the run.

    Their NN runs use 2·10⁵ steps with η/10 for the last 30 000 to 15 000 steps and η/15 for the
    last 15 000: fractions 0.15 and 0.075 of the run. ``drops`` is a sequence of
    (fraction of the run left, multiplier); the multiplier of the smallest fraction reached wins.
    Returns a callable step → multiplier.
    """
    steps = checks.positive_int(steps, "steps")
    starts = sorted(((steps - int(round(f * steps)), m) for f, m in drops), key=lambda s: s[0])

    def schedule(step: int) -> float:
        multiplier = 1.0
        for start, value in starts:
            if step >= start:
                multiplier = value
        return multiplier

    return schedule


# ----------------------------------------------------------------------------- the loop

def _plateau(schedule) -> tuple[Callable[[int], float] | None, PlateauDecay | None]:
    """(step schedule, plateau decay) of :func:`train`'s ``schedule`` argument."""
    if isinstance(schedule, PlateauDecay):
        return None, schedule
    if isinstance(schedule, str):
        checks.choice(schedule, "schedule", SCHEDULES)
        return None, PlateauDecay() if schedule == "plateau" else None
    return schedule, None


def _decay(loop: TrainingLoop, plateau: PlateauDecay | None, loss: float) -> None:
    """One check of the monitored loss by the plateau decay (if any): the loop's multiplier."""
    if plateau is not None:
        loop.decay = plateau.observe(loss)
        loop.decays = plateau.decays


def _loop_options(learning_rate, optimizer, schedule, momentum, divergence_threshold,
                  progress, progress_every, weight_decay=0.0, checkpoints=(),
                  on_checkpoint=None) -> dict:
    """Validated keyword arguments of :class:`~lazylab.solvers.loop.TrainingLoop`."""
    if divergence_threshold is not None:
        divergence_threshold = checks.positive_float(divergence_threshold, "divergence_threshold")
    checkpoints = tuple(checks.positive_int(s, "checkpoints[]") for s in checkpoints)
    if checkpoints and on_checkpoint is None:
        raise ValueError("checkpoints need an on_checkpoint(step) callback")
    return dict(checkpoints=checkpoints, on_checkpoint=on_checkpoint,
                learning_rate=checks.positive_float(learning_rate, "learning_rate"),
                optimizer=optimizer, schedule=schedule or constant_schedule,
                momentum=checks.nonnegative_float(momentum, "momentum"),
                weight_decay=checks.nonnegative_float(weight_decay, "weight_decay"),
                divergence_threshold=divergence_threshold, progress=progress,
                progress_every=checks.positive_int(progress_every, "progress_every"))


def _budget(steps, max_steps, tol, default_tol: float) -> tuple[int, bool, float]:
    """(budget, stop early?, tolerance), validated (see :func:`resolve_budget`)."""
    budget, early = resolve_budget(steps, max_steps, tol)
    budget = checks.positive_int(budget, "max_steps" if max_steps is not None else "steps")
    tolerance = default_tol if tol is None else checks.nonnegative_float(tol, "tol")
    return budget, early, tolerance


def train(parameters, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, learning_rate: float,
          steps: int | None = None, max_steps: int | None = None, tol: float | None = None,
          window: int = DEFAULT_WINDOW, validation: Callable[[], float] | None = None,
          full_batch: bool = True, optimizer: str = "sgd", momentum: float = 0.0,
          schedule: Callable[[int], float] | str | PlateauDecay | None = None,
          weight_decay: float = 0.0, divergence_threshold: float | None = 1e6,
          progress: Callable[[int, float], None] | None = None, progress_every: int = 1,
          checkpoints: Sequence[int] = (), on_checkpoint: Callable[[int], None] | None = None
          ) -> TrainingResult:
    """Minimize ``loss_fn(x, y)`` over ``batches`` with SGD or Adam, to a stated tolerance.

    Step t: θ ← θ − η m(t) · update(g_k ∇θ loss_fn(x_t, y_t)) (update = identity for plain SGD).
    Criterion (:mod:`lazylab.solvers.convergence`): the largest relative change between
    consecutive means of the training loss over windows of ``window`` steps, over the last 3
    changes; with ``validation``, the same on ``validation()`` evaluated every ``window`` steps;
    on :func:`minibatches` of n ≤ ``FULL_BATCH_SAMPLES`` samples (and ``full_batch``), the
    full-batch training loss L(θ_t) evaluated every max(``window``, ⌈n/b⌉) steps and at the last
    step: min(its largest relative change over the last 3 checks, L / Var y).

    Args:
        parameters: a ``torch.nn.Module``, an iterable of tensors (requires_grad), or torch
            param-group dicts ``{"params": [...], "gradient_scale": g_k}``.
        loss_fn: (x (b, d), y (b,)) → 0-d tensor.
        batches: iterator of (x, y) tensors (e.g. :func:`fresh_batches`, :func:`minibatches`);
            training stops (``stop_reason="exhausted"``) when it runs out.
        learning_rate: η > 0.
        steps: a fixed budget: exactly ``steps`` steps unless ``tol`` is given too (the
            historical call; ``converged`` still says whether the criterion met the default
            tolerance at the end). max_steps: the budget of a run to tolerance. Neither: run to
            tolerance within ``DEFAULT_MAX_STEPS``.
        tol: tolerance of the criterion (default ``SAMPLE_TOLERANCE``). window: W (steps).
        validation: optional θ ↦ validation loss (called under ``torch.no_grad``).
        full_batch: judge :func:`minibatches` on the full-batch loss (``loss_fn`` must be a
            mean over its batch); False keeps the window of minibatch losses.
        optimizer: "sgd" or "adam". schedule: step → multiplier m(t) (default 1), "constant",
            or "plateau" (or a :class:`~lazylab.solvers.convergence.PlateauDecay`): the rate is
            multiplied by its factor whenever the monitored loss makes no new low at a check
            (at most ``max_decays`` times; the result's ``decays``); criterion and tol unchanged.
        momentum, weight_decay: SGD momentum μ (SGD only), L2 weight decay λ (torch.optim's).
        divergence_threshold: diverged when loss > it × initial loss (None: non-finite only).
        progress: optional ``progress(step, loss)``, called every ``progress_every`` steps.
        checkpoints, on_checkpoint: ``on_checkpoint(t)`` right after the t-th update, for every
            t in ``checkpoints`` the run reaches (a learning curve along one run).
    """
    budget, early, tolerance = _budget(steps, max_steps, tol, SAMPLE_TOLERANCE)
    window = checks.positive_int(window, "window")
    schedule, plateau = _plateau(schedule)
    loop = TrainingLoop(parameters, budget=budget, **_loop_options(
        learning_rate, optimizer, schedule, momentum, divergence_threshold, progress,
        progress_every, weight_decay, checkpoints, on_checkpoint))
    data = getattr(batches, "training_set", None) if full_batch and validation is None else None
    if data is not None and int(data[0].shape[0]) <= FULL_BATCH_SAMPLES:
        interval = max(window, int(batches.epoch_steps))
        return _run_full_batch(loop, iter(batches), loss_fn, data, interval, early, tolerance,
                               plateau)
    monitor = WindowedCriterion(window, "loss_change" if validation is None else
                                "validation_change")
    return _run_on_batches(loop, monitor, iter(batches), loss_fn, validation, early, tolerance,
                           plateau)


def _step(loop: TrainingLoop, iterator, loss_fn, step: int) -> str | None:
    """One minibatch step (forward, backward, record, update); why to stop, or None."""
    batch = next(iterator, None)
    if batch is None:
        return "exhausted"
    loss = loop.forward(lambda: loss_fn(*batch))
    value = float(loss.detach())
    if loop.diverging(value):
        return "diverged"
    loop.backward(loss, norm=step == loop.budget - 1)
    loop.record(step, value)
    loop.update(step)
    return None


def _run_on_batches(loop: TrainingLoop, monitor: WindowedCriterion, iterator, loss_fn,
                    validation, early: bool, tolerance: float,
                    plateau: PlateauDecay | None = None) -> TrainingResult:
    """The loop of :func:`train`: at most ``loop.budget`` steps, stop on the criterion.

    The step's loss stays a (detached) tensor; the losses are read together at the checks
    (:func:`_reads`), where the criterion, the plateau decay, the progress hook and the stop
    need them, and every ``DEFERRED_STEPS`` steps at most. A diverging loss is found there and
    reported at its own step (the steps after it, up to the check, were taken but not
    recorded); the criterion and every stop are those of a per-step reading.
    """
    budget, window = loop.budget, monitor.window
    feed = monitor if validation is None else None
    reads = _reads(budget, window, window - 1 if validation is None else 0, loop)
    check, first, pending = next(reads), 0, []
    for step in range(budget):
        batch = next(iterator, None)
        if batch is None:
            stop = loop.flush(pending, first, feed) if pending else None
            return loop.result(step if stop is None else stop,
                               "exhausted" if stop is None else "diverged", monitor.value,
                               monitor.name, tolerance, stop)
        loop.opt.zero_grad()
        loss = loss_fn(*batch)
        pending.append(loss.detach())
        loop.backward(loss, norm=False)
        if step < check:
            loop.update(step)
            continue
        stop, first, pending, check = loop.flush(pending, first, feed), step + 1, [], next(reads)
        if stop is not None:
            return loop.result(stop, "diverged", monitor.value, monitor.name, tolerance, stop)
        if step == budget - 1:
            loop.measure_gradient()
        if validation is not None and step % window == 0:
            with torch.no_grad():
                monitor.push(float(validation()))
        if step % window == (window - 1 if validation is None else 0):
            _decay(loop, plateau, monitor.values[-1] if monitor.values else math.inf)
        if early and monitor.value <= tolerance:
            return loop.result(step, "tolerance", monitor.value, monitor.name, tolerance)
        loop.update(step)
    return loop.result(loop.budget, "budget", monitor.value, monitor.name, tolerance)


DEFERRED_STEPS = 1000
"""Most steps whose losses :func:`_run_on_batches` keeps on the device before reading them."""


def _reads(budget: int, window: int, phase: int, loop: TrainingLoop):
    """The steps after whose backward pass :func:`_run_on_batches` reads the losses, in order:
    the window steps (step ≡ ``phase`` mod ``window``), the steps before a progress call, the
    last step, and at least every ``DEFERRED_STEPS`` steps; then ∞."""
    every = loop.progress_every if loop.progress is not None else budget
    step = -1
    while step < budget - 1:
        step = min(step + 1 + (phase - step - 1) % window, step + every - (step + 1) % every,
                   step + DEFERRED_STEPS, budget - 1)
        yield step
    yield math.inf


@torch.no_grad()
def full_batch_loss(loss_fn, x: torch.Tensor, y: torch.Tensor, block: int = 4096) -> float:
    """L(θ) = (1/n) Σ_k n_k · loss_fn(x_k, y_k) over blocks of ≤ ``block`` rows (loss_fn a mean)."""
    n = int(x.shape[0])
    return sum(float(loss_fn(x[s:s + block], y[s:s + block])) * min(block, n - s)
               for s in range(0, n, block)) / n


def _run_full_batch(loop: TrainingLoop, iterator, loss_fn, data, interval: int, early: bool,
                    tolerance: float, plateau: PlateauDecay | None = None) -> TrainingResult:
    """:func:`train` on minibatches judged by the full-batch loss at θ_t every ``interval``
    steps and at the last step (:class:`~lazylab.solvers.convergence.FullBatchCriterion`)."""
    x, y = data
    monitor = FullBatchCriterion(float(torch.var(y.double(), unbiased=False)))
    for step in range(loop.budget):
        stop = _step(loop, iterator, loss_fn, step)
        if stop is not None:
            return loop.result(step, stop, monitor.value, monitor.name, tolerance,
                               step if stop == "diverged" else None)
        done = step + 1
        if done % interval and done < loop.budget:
            continue
        value = full_batch_loss(loss_fn, x, y)
        if loop.diverging(value):
            return loop.result(done, "diverged", monitor.value, monitor.name, tolerance, done)
        monitor.push(value)
        if early and monitor.value <= tolerance:
            return loop.result(done, "tolerance", monitor.value, monitor.name, tolerance)
        _decay(loop, plateau, value)
    return loop.result(loop.budget, "budget", monitor.value, monitor.name, tolerance)


def retry_halving(attempt: Callable[[float], tuple[Any, TrainingResult]], learning_rate: float,
                  max_halvings: int) -> tuple[Any, TrainingResult]:
    """Sample-based training restarted at η/2 after a divergence, at most ``max_halvings`` times.

    ``attempt(rate)`` trains from the same initialization and data (the caller restores its
    random state) and returns (what it fitted, its :class:`TrainingResult`). Returned: the first
    attempt that did not diverge, else the last one (still ``diverged``: the caller raises), its
    result recording ``halvings`` = k (the rate was η/2^k, its ``learning_rate``).
    """
    max_halvings = checks.nonnegative_int(max_halvings, "max_halvings")
    rate = checks.positive_float(learning_rate, "learning_rate")
    for halvings in range(max_halvings + 1):
        fitted, result = attempt(rate / 2 ** halvings)
        if not result.diverged:
            break
    return fitted, dataclasses.replace(result, halvings=halvings)


def population_descent(parameters, risk_fn: Callable[[], torch.Tensor], *, learning_rate: float,
                       steps: int | None = None, max_steps: int | None = None,
                       tol: float | None = None, window: int = DEFAULT_WINDOW,
                       optimizer: str = "sgd", schedule: Callable[[int], float] | None = None,
                       momentum: float = 0.0, divergence_threshold: float | None = 1e6,
                       backtracking: bool = False, max_halvings: int = MAX_HALVINGS,
                       progress: Callable[[int, float], None] | None = None,
                       progress_every: int = 1) -> TrainingResult:
    """Gradient descent (or Adam) on an exact, differentiable population risk R(θ) (n = ∞).

    θ_{t+1} = θ_t − η m(t) · update(g_k ∇R(θ_t)); ``risk_fn()`` recomputes R at the current
    parameters (e.g. ``lambda: population_risk(model_of(θ), task)``). Criterion
    (:mod:`lazylab.solvers.convergence`): min(‖∇R(θ_t)‖/‖∇R(θ₀)‖, relative change of R over the
    last ``window`` steps), evaluated at every iterate including the last one (after a budget
    of K steps, R and ∇R are evaluated once more at θ_K, so ``final_loss`` is R(θ_K)).

    Backtracking (``backtracking=True``): when R becomes non-finite, exceeds
    ``divergence_threshold`` × R(θ₀), or exceeds ``BACKTRACK_FACTOR`` (10) × the lowest risk seen
    (when that is positive), the parameters of that lowest risk are restored, η is halved and
    the optimizer's state (momentum, Adam moments) restarts; ``halvings`` and the final
    ``learning_rate`` are reported. After ``max_halvings`` (default ``MAX_HALVINGS`` = 10, i.e. η/1024) a further
    divergence raises :class:`lazylab.errors.DivergenceError`; no NaN is ever returned. Without
    backtracking a divergence stops the run with ``diverged=True``.

    Arguments otherwise as in :func:`train` (``tol`` defaults to ``POPULATION_TOLERANCE``).
    """
    budget, early, tolerance = _budget(steps, max_steps, tol, POPULATION_TOLERANCE)
    window, max_halvings = checks.positive_int(window, "window"), checks.positive_int(max_halvings,
                                                                          "max_halvings")
    loop = TrainingLoop(parameters, budget=budget, **_loop_options(
        learning_rate, optimizer, schedule, momentum, divergence_threshold, progress,
        progress_every))
    monitor, step = PopulationCriterion(window), 0
    while True:
        loss = loop.forward(risk_fn)
        value = float(loss.detach())
        if loop.diverging(value) or (backtracking and loop.exploded(value)):
            if not backtracking:
                return loop.result(step, "diverged", math.inf, monitor.name, tolerance, step)
            loop.backtrack(max_halvings, step)
            monitor.reset_history()
            continue
        loop.backward(loss, norm=True)
        loop.record(step, value)
        if backtracking:
            loop.keep_best(value)
        criterion = monitor.observe(value, loop.gradient_norm)
        if (early and criterion <= tolerance) or step == budget:
            reason = "tolerance" if early and criterion <= tolerance else "budget"
            return loop.result(step, reason, criterion, monitor.name, tolerance)
        loop.update(step)
        step += 1
