"""Execute one run: build the task, sample, fit the regime, measure.

The steps follow ``docs/CONTRACTS.md``:

1. ``task = TASKS[name](rng=<task stream>, **task_params)``;
2. training data ``task.sample(n_train, rng=<data stream>)``, or the task itself when
   n_train is the population (n = ∞); test data ``task.sample(n_test, rng=<test stream>)``;
3. ``predictor = REGIMES[name](**regime_params).fit(data_or_task, rng=<fit stream>)``;
   a regime whose ``fit`` accepts a keyword ``progress`` receives a callable
   ``progress(step: int, total: int | None)`` it may call during long fits (SGD steps, CG
   iterations); it is wired to a progress bar when the run executes in-process;
4. metrics: ``population_risk`` (tasks with moments), ``test_risk``, ``train_risk`` (finite
   n_train), ``risk_normalized`` = R / R₀ with R the population risk when available and the test
   risk otherwise and R₀ = ``task.null_risk`` (risk of the best constant predictor),
   ``wall_time`` (seconds, fit and evaluation), and every numeric entry of
   ``predictor.diagnostics``.

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

import torch
from threadpoolctl import threadpool_limits

from lazylab.errors import DivergenceError
from lazylab.experiments.catalog import Catalog, default_catalog
from lazylab.experiments.runs import Run, stream_entropy, stream_generators

__all__ = ["RunOutcome", "execute_run", "DONE", "FAILED", "DIVERGED", "STATUSES"]

DONE, FAILED, DIVERGED = "done", "failed", "diverged"
STATUSES = (DONE, FAILED, DIVERGED)
TIMING_METRICS = frozenset({"wall_time"})


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
    for key, value in diagnostics.items():
        try:
            metrics[str(key)] = _as_float(value)
        except (TypeError, ValueError):  # non-numeric diagnostics (text, None) are not metrics
            continue
    return metrics


def _compute(run: Run, catalog: Catalog, progress: Callable | None) -> dict[str, float]:
    streams = stream_generators(run)
    task = catalog.tasks[run.task](rng=streams["task"], **_arguments(run.task_params))
    train = task if run.n_train is None else task.sample(run.n_train, rng=streams["data"])
    test = task.sample(run.n_test, rng=streams["test"])
    regime = catalog.regimes[run.regime](**_arguments(run.regime_params))
    clock = time.perf_counter()
    predictor = _fit(regime, train, streams["fit"], progress)
    metrics = _measure(run, task, train, test, predictor, catalog)
    metrics["wall_time"] = time.perf_counter() - clock
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
