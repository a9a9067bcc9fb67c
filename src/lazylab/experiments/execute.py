"""Execute one run: build the task, sample, fit the regime, measure.

The steps follow ``docs/CONTRACTS.md``:

1. ``task = TASKS[name](rng=<task stream>, **task_params)``;
2. training data ``task.sample(n_train, rng=<data stream>)``, or the task itself when
   n_train is the population (n = ∞);
3. ``predictor = REGIMES[name](**regime_params).fit(data_or_task, rng=<fit stream>)``; with
   selected fields (:mod:`lazylab.experiments.selection`) every grid value is fitted this way
   and the best on ``task.sample(validation_size, rng=<validation stream>)`` (or by the exact
   population risk at n = ∞) is kept, its ``selected_*`` metrics recorded; only then is the test
   set ``task.sample(n_test, rng=<test stream>)`` drawn;
   a regime whose ``fit`` accepts a keyword ``progress`` receives a callable
   ``progress(step: int, total: int | None)`` it may call during long fits (SGD steps, CG
   iterations); it is wired to a progress bar when the run executes in-process;
4. metrics: ``population_risk`` (tasks with moments), ``test_risk``, ``train_risk`` (finite
   n_train), ``risk_normalized`` = R / R₀ with R the population risk when available and the test
   risk otherwise and R₀ = ``task.null_risk`` (risk of the best constant predictor),
   ``classification_error_percent`` (tasks whose ``classification`` attribute names a rule of
   ``CLASSIFICATION_RULES``: the percentage of misclassified test points, beside the squared
   loss the fit minimized), ``wall_time`` (seconds, fit and evaluation), and every numeric entry
   of ``predictor.diagnostics``.

Status: ``done``; ``diverged`` when the fit raises :class:`lazylab.errors.DivergenceError` or any
metric is NaN/±inf (non-finite values are never stored as numbers); ``failed`` on any other
exception (the text is kept). Computation runs with BLAS and torch limited to ``threads``
threads (default 1) so that results are bit-identical whichever executor runs them.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lazylab.errors import DivergenceError
from lazylab.experiments.catalog import Catalog, default_catalog
from lazylab.experiments.runs import Run, stream_entropy, stream_generators, stream_seed_sequence
from lazylab.experiments.selection import (SCALE_SAMPLES, VALIDATION, Criterion,
                                           fit_with_selection, selection_rule, split_selections)

__all__ = ["RunOutcome", "execute_run", "DONE", "FAILED", "DIVERGED", "STATUSES", "WALL_TIME",
           "CLASSIFICATION_RULES", "classification_error"]

DONE, FAILED, DIVERGED = "done", "failed", "diverged"
STATUSES = (DONE, FAILED, DIVERGED)
WALL_TIME = "wall_time"
"""The metric every run records besides its results: seconds spent fitting and measuring."""


@dataclass(frozen=True)
class RunOutcome:
    """What one run produced; the store writes it as one row.

    Attributes:
        run_id: the run's id.
        status: ``done``, ``failed`` or ``diverged``.
        metrics: finite floats by name (empty unless done; diagnostics kept when diverged).
        error: exception text for failed/diverged runs, else None.
        seeds: the first state word of every seed stream.
        host: host name of the machine that executed the run.
        started_at, finished_at: ISO-8601 UTC times.
    """

    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seeds: dict[str, int] = field(default_factory=dict)
    host: str = ""
    started_at: str = ""
    finished_at: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Limit torch and BLAS thread pools for the duration of a run, then restore them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _as_float(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


CLASSIFICATION_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sign": lambda prediction, labels: np.sign(prediction) != labels,
    "argmax": lambda prediction, labels: prediction.argmax(axis=1) != (
        labels.argmax(axis=1) if labels.ndim == 2 else labels),
}
"""``task.classification`` → (predictions, labels) ↦ misclassified points: "sign" for scalar
±1 labels (sign f(x) ≠ y; f = 0 counts as an error), "argmax" for k outputs against one-hot
(n, k) or class-index (n,) labels."""


def classification_error(predictor: Any, data: Any, rule: str) -> float:
    """100 · (1/n) Σ 1[point i misclassified by ``CLASSIFICATION_RULES[rule]``] (%)."""
    if rule not in CLASSIFICATION_RULES:
        raise ValueError(f"task.classification must be one of {', '.join(CLASSIFICATION_RULES)}"
                         f" or absent, got {rule!r}")
    with torch.no_grad():
        prediction = np.asarray(predictor.predict(data.x), dtype=np.float64)
    wrong = CLASSIFICATION_RULES[rule](prediction, np.asarray(data.y))
    return 100.0 * float(np.mean(wrong))


def _fit(regime: Any, data_or_task: Any, rng: Any, progress: Callable | None) -> Any:
    try:
        accepts = "progress" in inspect.signature(regime.fit).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts and progress is not None:
        return regime.fit(data_or_task, rng=rng, progress=progress)
    return regime.fit(data_or_task, rng=rng)


def _measure(run: Run, task: Any, train: Any, test: Any, predictor: Any,
             catalog: Catalog) -> dict[str, float]:
    metrics: dict[str, float] = {}
    diagnostics = dict(getattr(predictor, "diagnostics", {}) or {})
    if run.n_train is None and "population_risk" in diagnostics:
        # exact fits at n = ∞ report the exact risk of what they return (docs/CONTRACTS.md)
        metrics["population_risk"] = _as_float(diagnostics["population_risk"])
    elif getattr(task, "has_moments", False) and catalog.population_risk is not None:
        exact = catalog.population_risk(predictor, task)
        if exact is not None:
            metrics["population_risk"] = _as_float(exact)
    metrics["test_risk"] = _as_float(catalog.empirical_risk(predictor, test))
    if run.n_train is not None:
        metrics["train_risk"] = _as_float(catalog.empirical_risk(predictor, train))
    risk = metrics.get("population_risk", metrics["test_risk"])
    metrics["risk_normalized"] = risk / _as_float(task.null_risk)
    rule = getattr(task, "classification", None)
    if rule is not None:
        metrics["classification_error_percent"] = classification_error(predictor, test, rule)
    for key, value in diagnostics.items():
        try:
            metrics[str(key)] = _as_float(value)
        except (TypeError, ValueError):  # non-numeric diagnostics (text, None) are not metrics
            continue
    return metrics


def _exact_risk(run: Run, task: Any, predictor: Any, catalog: Catalog) -> float:
    """The exact population risk of a predictor fitted at n = ∞ (the population criterion)."""
    diagnostics = getattr(predictor, "diagnostics", None) or {}
    if run.n_train is None and "population_risk" in diagnostics:
        return _as_float(diagnostics["population_risk"])
    exact = None if catalog.population_risk is None else catalog.population_risk(predictor, task)
    if exact is None:
        raise ValueError(f"select='population' needs an exact population risk and regime "
                         f"{run.regime!r} has none; allowed: select='validation'")
    return _as_float(exact)


def _criterion(run: Run, task: Any, train: Any, rule: str, catalog: Catalog,
               rng: np.random.Generator) -> Criterion:
    """Validation risk on the validation stream's split, or the exact population risk."""
    if rule == VALIDATION:
        validation = task.sample(run.validation_size or run.n_test, rng=rng)
        inputs = validation.x if run.n_train is None else train.x
        return Criterion(lambda predictor: catalog.empirical_risk(predictor, validation), inputs)
    inputs = task.sample(SCALE_SAMPLES, rng=rng).x
    return Criterion(lambda predictor: _exact_risk(run, task, predictor, catalog), inputs)


def _select(run: Run, task: Any, train: Any, catalog: Catalog, streams: dict[str, Any]
            ) -> tuple[Any, dict[str, float]]:
    """Fit the regime, choosing its selected fields first; never sees the test set."""
    plain, selected = split_selections(_arguments(run.regime_params))
    regime_class = catalog.regimes[run.regime]
    rules = {selection_rule(s, run.n_train is None) for s in selected.values()}
    if len(rules) > 1:
        raise ValueError(f"the selected fields of one regime need one rule, got {sorted(rules)}")
    criterion = _criterion(run, task, train, rules.pop(), catalog, streams["validation"])

    def fit_rng() -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(stream_seed_sequence(run, "fit")))

    return fit_with_selection(lambda params: regime_class(**params), plain, selected, train,
                              fit_rng=fit_rng, criterion=criterion)


def _compute(run: Run, catalog: Catalog, progress: Callable | None) -> dict[str, float]:
    streams = stream_generators(run)
    task = catalog.tasks[run.task](rng=streams["task"], **_arguments(run.task_params))
    train = task if run.n_train is None else task.sample(run.n_train, rng=streams["data"])
    clock = time.perf_counter()
    if any(split_selections(_arguments(run.regime_params))[1]):
        predictor, chosen = _select(run, task, train, catalog, streams)
    else:
        regime = catalog.regimes[run.regime](**_arguments(run.regime_params))
        predictor, chosen = _fit(regime, train, streams["fit"], progress), {}
    elapsed = time.perf_counter() - clock
    test = task.sample(run.n_test, rng=streams["test"])  # drawn only after any selection
    clock = time.perf_counter()
    metrics = _measure(run, task, train, test, predictor, catalog)
    metrics.update(chosen)
    metrics[WALL_TIME] = elapsed + time.perf_counter() - clock
    return metrics


def _arguments(params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return dict(params)


def execute_run(run: Run, *, catalog: Catalog | None = None, threads: int = 1,
                progress: Callable[[int, int | None], None] | None = None) -> RunOutcome:
    """Execute one run and classify its outcome; never raises for errors inside the run.

    Args:
        run: the run.
        catalog: registries to use; lazylab's own (imported lazily) when None.
        threads: torch/BLAS threads during the run.
        progress: optional ``progress(step, total)`` handed to regimes that accept it.
    """
    started, host = _now(), socket.gethostname()
    seeds = stream_entropy(run)
    status, metrics, error = DONE, {}, None
    try:
        with limited_threads(threads):
            metrics = _compute(run, catalog or default_catalog(), progress)
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            status, error = DIVERGED, f"non-finite metrics: {', '.join(bad)}"
            metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    except DivergenceError as exception:
        status, error = DIVERGED, f"DivergenceError: {exception}"
        if exception.step is not None:
            metrics = {"steps_to_divergence": float(exception.step)}
    except Exception as exception:  # a failed run is a result, not a crash of the sweep
        status = FAILED
        error = f"{type(exception).__name__}: {exception}\n{traceback.format_exc(limit=8)}"
    return RunOutcome(run.run_id, status, metrics, error, seeds, host, started, _now())
