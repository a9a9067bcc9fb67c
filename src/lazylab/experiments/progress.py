"""Progress reporting for sweeps and for long single runs.

A sweep reporter has ``start(total, runs=())``, ``update(outcome)`` and ``close()``.
:class:`BarProgress` draws a tqdm bar on a stream (stderr by default), counts failed/diverged
runs, and shows an ETA weighted by each run's estimated cost (:class:`CostWeightedEta`): runs
differ in cost by orders of magnitude (N² or N³ in the width), so the run count alone predicts
the rest badly, most of all when the expensive runs go first; :class:`NullProgress` is the
quiet mode. :func:`step_bar` builds the ``progress(step, total)``
callable that :func:`lazylab.experiments.execute.execute_run` hands to regimes whose ``fit``
accepts it (SGD steps, CG iterations), for runs executed in-process.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Mapping, TextIO

from tqdm import tqdm

from lazylab.experiments.execute import execute_run
from lazylab.experiments.resources import run_seconds

__all__ = ["NullProgress", "BarProgress", "CostWeightedEta", "format_seconds", "step_bar",
           "execute_with_step_bar"]


class CostWeightedEta:
    """Remaining time of a sweep from the cost of the runs finished so far.

    ``remaining = elapsed · (C_total − C_done) / C_done`` with ``C`` the summed cost estimates
    (any unit: only ratios enter), i.e. the observed seconds per unit of cost times the cost
    still to do. It is exact when durations are proportional to the estimates, whatever the
    order of the runs and however many run at once (the rate is that of the whole executor);
    a run missing from ``costs`` counts as the mean cost. None until a run has finished.

    Args:
        costs: run_id → estimated cost (positive).
        clock: seconds, monotonic (``time.monotonic``; a fake clock in tests).
    """

    def __init__(self, costs: Mapping[str, float], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.costs = {run_id: max(float(c), 0.0) for run_id, c in costs.items()}
        self.mean = sum(self.costs.values()) / len(self.costs) if self.costs else 1.0
        self.total = sum(self.costs.values())
        self.done = 0.0
        self.clock = clock
        self.started = clock()

    def finished(self, run_id: str) -> None:
        """Count a finished run (done, diverged or failed alike)."""
        self.done += self.costs.get(run_id, self.mean)

    def remaining(self) -> float | None:
        """Estimated seconds left, or None before the first finished run."""
        if self.done <= 0.0:
            return None
        return (self.clock() - self.started) * max(self.total - self.done, 0.0) / self.done


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
        self._eta = CostWeightedEta({run.run_id: self.cost(run) for run in runs},
                                    clock=self.clock)
        self._bar = tqdm(total=total, desc=self.description, unit="run", dynamic_ncols=True,
                         file=self.stream or sys.stderr, bar_format=self._FORMAT)

    def update(self, outcome: Any) -> None:
        if self._bar is None:
            return
        if outcome.status in self._counts:
            self._counts[outcome.status] += 1
        self._eta.finished(outcome.run_id)
        shown = {k: v for k, v in self._counts.items() if v}
        self._bar.set_postfix({**shown, "eta": format_seconds(self._eta.remaining())},
                              refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
