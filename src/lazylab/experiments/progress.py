"""Progress reporting for sweeps and for long single runs.

A sweep reporter has ``start(total, runs=())``, ``update(outcome)`` and ``close()``.
:class:`BarProgress` draws a tqdm bar on a stream (stderr by default), counts failed/diverged
runs, and shows an ETA weighted by each run's estimated cost and calibrated per kind of run on
the finished runs' durations (:class:`CostWeightedEta`): runs differ in cost by orders of
magnitude (N² or N³ in the width), so the run count alone predicts the rest badly, most of all
when the expensive runs go first; :class:`NullProgress` is the
quiet mode. :func:`step_bar` builds the ``progress(step, total)``
callable that :func:`lazylab.experiments.execute.execute_run` hands to regimes whose ``fit``
accepts it (SGD steps, CG iterations), for runs executed in-process.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, TextIO

from tqdm import tqdm

from lazylab.experiments.execute import execute_run
from lazylab.experiments.resources import run_kind, run_seconds

__all__ = ["NullProgress", "BarProgress", "CostWeightedEta", "format_seconds", "step_bar",
           "execute_with_step_bar"]


class CostWeightedEta:
    """Remaining time of a sweep from the cost of the runs finished so far.

    Without run durations: ``remaining = elapsed · (C_total − C_done) / C_done`` with ``C`` the
    summed cost estimates (any unit: only ratios enter), i.e. the observed seconds per unit of
    cost times the cost still to do. It is exact when durations are proportional to the
    estimates, whatever the order of the runs and however many run at once (the rate is that
    of the whole executor).

    With each finished run's own duration ``t`` and a kind per run (``kinds``, e.g.
    :func:`~lazylab.experiments.resources.run_kind`): the estimates are trusted only within a
    kind. Each kind k gets its own rate r_k = Σt / ΣC over its finished runs (kinds with none
    yet take the overall rate), and ``remaining = elapsed · Σ_k r_k (C_k,total − C_k,done) /
    Σt``: the run-seconds still to do, divided by the parallelism observed so far
    (Σt / elapsed). With one kind this is the formula above. A cost model 10–100× off between
    kinds (population GD against N³ solves) then costs the ETA nothing once a run of each kind
    has finished. A run missing from ``costs`` counts as the mean cost. None until a run has
    finished.

    Args:
        costs: run_id → estimated cost (positive).
        kinds: run_id → kind, or None (one kind).
        clock: seconds, monotonic (``time.monotonic``; a fake clock in tests).
    """

    def __init__(self, costs: Mapping[str, float], *, kinds: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.costs = {run_id: max(float(c), 0.0) for run_id, c in costs.items()}
        self.mean = sum(self.costs.values()) / len(self.costs) if self.costs else 1.0
        self.kinds = dict(kinds or {})
        self.left: dict[str | None, float] = defaultdict(float)   # kind → cost still to do
        for run_id, cost in self.costs.items():
            self.left[self.kinds.get(run_id)] += cost
        self.spent: dict[str | None, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [Σt, ΣC]
        self.total = sum(self.costs.values())
        self.done = 0.0
        self.timed = True
        self.clock = clock
        self.started = clock()

    def finished(self, run_id: str, seconds: float | None = None) -> None:
        """Count a finished run (done, diverged or failed alike) and its duration, if known."""
        cost = self.costs.get(run_id, self.mean)
        kind = self.kinds.get(run_id)
        self.done += cost
        self.left[kind] = max(self.left[kind] - cost, 0.0)
        if seconds is None or not seconds >= 0:
            self.timed = False
        else:
            self.spent[kind][0] += seconds
            self.spent[kind][1] += cost

    def remaining(self) -> float | None:
        """Estimated seconds left, or None before the first finished run."""
        if self.done <= 0.0:
            return None
        elapsed = self.clock() - self.started
        run_seconds = sum(t for t, _ in self.spent.values())
        if not self.timed or run_seconds <= 0.0:
            return elapsed * max(self.total - self.done, 0.0) / self.done
        overall = run_seconds / sum(c for _, c in self.spent.values())
        work = sum(left * (self.spent[kind][0] / self.spent[kind][1]
                           if kind in self.spent and self.spent[kind][1] > 0 else overall)
                   for kind, left in self.left.items())
        return elapsed * work / run_seconds

    def untimed_kinds(self) -> int:
        """Kinds with work left and no finished run yet: the estimate rests on the cost model
        for them (the overall rate), which can be 10–100× off; 0 without durations or kinds."""
        if not self.timed or not self.kinds:
            return 0
        return sum(1 for kind, left in self.left.items()
                   if left > 0 and not (kind in self.spent and self.spent[kind][1] > 0))


def format_seconds(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``12s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else \
        f"{seconds}s"


class NullProgress:
    """Reports nothing (``--quiet``)."""

    def start(self, total: int, runs: Iterable[Any] = ()) -> None:
        return None

    def update(self, outcome: Any) -> None:
        return None

    def close(self) -> None:
        return None


class BarProgress:
    """A tqdm progress bar over the runs of a sweep, with failure counts and a cost-weighted ETA.

    Args:
        description: the bar's label.
        stream: where to draw (stderr by default).
        cost: ``Run -> float`` cost estimate for the ETA (a study's ``run_cost``); default
            :func:`~lazylab.experiments.resources.run_seconds`.
        clock: monotonic seconds (for tests).
    """

    _FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"

    def __init__(self, description: str = "runs", stream: TextIO | None = None, *,
                 cost: Callable[[Any], float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.description = description
        self.stream = stream
        self.cost, self.clock = cost or run_seconds, clock
        self._bar: Any = None
        self._eta: CostWeightedEta | None = None
        self._counts = {"failed": 0, "diverged": 0}

    def start(self, total: int, runs: Iterable[Any] = ()) -> None:
        if total == 0:  # nothing pending: the caller's status line says so
            return
        runs = list(runs)
        self._eta = CostWeightedEta({run.run_id: self.cost(run) for run in runs},
                                    kinds={run.run_id: _kind(run) for run in runs},
                                    clock=self.clock)
        self._bar = tqdm(total=total, desc=self.description, unit="run", dynamic_ncols=True,
                         file=self.stream or sys.stderr, bar_format=self._FORMAT)

    def update(self, outcome: Any) -> None:
        if self._bar is None:
            return
        if outcome.status in self._counts:
            self._counts[outcome.status] += 1
        self._eta.finished(outcome.run_id, _duration(outcome))
        shown = {k: v for k, v in self._counts.items() if v}
        untimed = self._eta.untimed_kinds()
        eta = format_seconds(self._eta.remaining())
        if untimed and eta != "?":
            eta += f" ({untimed} kind{'s' if untimed > 1 else ''} untimed)"
        self._bar.set_postfix({**shown, "eta": eta},
                              refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _kind(run: Any) -> str | None:
    """The run's kind (:func:`run_kind`), None for objects that are not runs."""
    try:
        return run_kind(run)
    except AttributeError:
        return None


def _duration(outcome: Any) -> float | None:
    """Seconds between the outcome's ISO start and finish stamps, None when either is missing."""
    try:
        return (datetime.fromisoformat(outcome.finished_at)
                - datetime.fromisoformat(outcome.started_at)).total_seconds()
    except (AttributeError, TypeError, ValueError):
        return None


def step_bar(description: str, stream: TextIO | None = None, *, delay: float = 2.0,
             **options: Any) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A ``progress(step, total)`` callable drawing a tqdm bar, and a function closing it.

    The bar is created on the first call, so runs whose regime reports no progress show none,
    and appears only once the run has lasted ``delay`` seconds (long single runs); it sits
    below the sweep bar and disappears when closed. ``options`` go to tqdm.
    """
    state: dict[str, Any] = {}

    def progress(step: int, total: int | None = None) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(desc=description, unit="step", file=stream or sys.stderr,
                                dynamic_ncols=True, leave=False, position=1, delay=delay,
                                **options)
        bar = state["bar"]
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(max(0, step - bar.n))

    def close() -> None:
        if "bar" in state:
            state.pop("bar").close()

    return progress, close


def execute_with_step_bar(run: Any, **options: Any) -> Any:
    """Execute a run in-process with a step bar for regimes that report fit progress."""
    progress, close = step_bar(f"{run.regime} {run.run_id[:8]}")
    try:
        return execute_run(run, progress=progress, **options)
    finally:
        close()
