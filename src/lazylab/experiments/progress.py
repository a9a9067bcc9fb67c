"""Progress reporting for sweeps and for long single runs.

A sweep reporter has ``start(total)``, ``update(outcome)`` and ``close()``. :class:`BarProgress`
draws a tqdm bar with ETA on a stream (stderr by default) and counts failed/diverged runs;
:class:`NullProgress` is the quiet mode. :func:`step_bar` builds the ``progress(step, total)``
callable that :func:`lazylab.experiments.execute.execute_run` hands to regimes whose ``fit``
accepts it (SGD steps, CG iterations), for runs executed in-process.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from tqdm import tqdm

from lazylab.experiments.execute import execute_run

__all__ = ["NullProgress", "BarProgress", "step_bar", "execute_with_step_bar"]


class NullProgress:
    """Reports nothing (``--quiet``)."""

    def start(self, total: int) -> None:
        return None

    def update(self, outcome: Any) -> None:
        return None

    def close(self) -> None:
        return None


class BarProgress:
    """A tqdm progress bar over the runs of a sweep, with ETA and failure counts."""

    def __init__(self, description: str = "runs", stream: TextIO | None = None) -> None:
        self.description = description
        self.stream = stream
        self._bar: Any = None
        self._counts = {"failed": 0, "diverged": 0}

    def start(self, total: int) -> None:
        if total == 0:  # nothing pending: the caller's status line says so
            return
        self._bar = tqdm(total=total, desc=self.description, unit="run", dynamic_ncols=True,
                         file=self.stream or sys.stderr, smoothing=0.1)

    def update(self, outcome: Any) -> None:
        if self._bar is None:
            return
        if outcome.status in self._counts:
            self._counts[outcome.status] += 1
            self._bar.set_postfix(self._counts, refresh=False)
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
