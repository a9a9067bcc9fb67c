"""Executors: map a run function over runs, yielding outcomes as they complete.

Every executor has ``map(run_function, runs) -> Iterator[RunOutcome]`` (order of completion) and
is a context manager. Workers only compute; the caller writes outcomes to the store, so any
number of workers can never corrupt it.

* :class:`InProcessExecutor` — a plain loop in this process (debugging, long single runs with
  an inner progress bar).
* :class:`PoolExecutor` — a local ``ProcessPoolExecutor`` (``spawn`` start method: torch is not
  fork-safe), one worker per core by default.
* :class:`~lazylab.experiments.dask_executor.DaskExecutor` — a Dask distributed cluster: an
  existing scheduler (``tcp://HOST:PORT``) or a ``LocalCluster`` with K single-threaded worker
  processes. It lives in its own module, loaded (with Dask) only when chosen.

The run function must be picklable by reference (a module-level function, or a
``functools.partial`` of one) for the pool and Dask.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import importlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

from lazylab.experiments.execute import FAILED, RunOutcome
from lazylab.experiments.resources import run_seconds
from lazylab.experiments.runs import Run, stream_entropy
from lazylab.experiments.spec import SpecError

__all__ = ["InProcessExecutor", "PoolExecutor", "Entered", "EXECUTORS", "make_executor",
           "choose_executor", "executor_options", "process_pool", "POOL_BREAK_EVEN_SECONDS"]

RunFunction = Callable[[Run], RunOutcome]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STARTED: Any = None  # in a pool worker: the queue on which it reports the runs it starts


class InProcessExecutor:
    """Run each run in this process, one after the other."""

    name = "inprocess"

    def __enter__(self) -> "InProcessExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def map(self, run_function: RunFunction, runs: Iterable[Run]) -> Iterator[RunOutcome]:
        for run in runs:
            yield run_function(run)


class PoolExecutor:
    """A local process pool (``workers`` processes; all cores when None).

    A worker that dies while executing a run (killed by a signal, e.g. the out-of-memory
    killer) breaks the pool: that run is returned as ``failed`` with the reason, the pool is
    started again and the remaining runs go on. Workers exit when this process dies.
    """

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be a positive integer")
        self.workers = workers or os.cpu_count() or 1
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._started: Any = None

    def _start(self) -> None:
        self._started = multiprocessing.get_context("spawn").SimpleQueue()
        self._pool = process_pool(self.workers, self._started)

    def __enter__(self) -> "PoolExecutor":
        self._start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, run_function: RunFunction, runs: Iterable[Run]) -> Iterator[RunOutcome]:
        if self._pool is None:
            raise RuntimeError("use PoolExecutor as a context manager")
        remaining = list(runs)
        while remaining:
            remaining = yield from self._map_until_broken(run_function, remaining)

    def _map_until_broken(self, run_function: RunFunction, runs: list[Run]):
        """Yield outcomes until all are done or the pool breaks; return the runs still to do."""
        task = functools.partial(_tracked, run_function)
        futures = {self._pool.submit(task, run): run for run in runs}
        processes = dict(getattr(self._pool, "_processes", None) or {})
        finished: set[str] = set()
        started: dict[str, int] = {}
        for future in concurrent.futures.as_completed(futures):
            if isinstance(future.exception(), BrokenProcessPool):
                break
            finished.add(futures[future].run_id)
            self._drain(started, finished)  # keeps the reports' pipe from filling up
            yield future.result()
        else:
            return []
        for future, run in futures.items():  # completed before the break was noticed
            if run.run_id not in finished and future.done() and future.exception() is None:
                finished.add(run.run_id)
                yield future.result()
        self._pool.shutdown(wait=True, cancel_futures=True)
        culprits = self._culprits(processes, started, finished)
        for run in runs:
            if run.run_id in culprits:
                yield _died(run, culprits[run.run_id])
        left = [run for run in runs if run.run_id not in finished and run.run_id not in culprits]
        if left and not culprits:  # no run to blame: do not loop for ever
            for run in left:
                yield _died(run, _death_reason(None))
            left = []
        self._start()
        return left

    def _drain(self, started: dict[str, int], finished: set[str]) -> None:
        """Read the workers' start reports (run_id → pid) and keep those not yet finished."""
        while not self._started.empty():
            run_id, pid = self._started.get()
            started[run_id] = pid
        for run_id in finished.intersection(started):
            del started[run_id]

    def _culprits(self, processes: dict[int, Any], started: dict[str, int],
                  finished: set[str]) -> dict[str, str]:
        """run_id → reason for the runs whose worker died (not terminated by the pool itself)."""
        self._drain(started, finished)
        codes = {r: getattr(processes.get(pid), "exitcode", None) for r, pid in started.items()}
        dead = {r: code for r, code in codes.items() if code not in (None, -signal.SIGTERM)}
        if not dead:
            dead = codes
        return {r: _death_reason(code) for r, code in dead.items()}


def process_pool(workers: int, started: Any = None) -> concurrent.futures.ProcessPoolExecutor:
    """A ``spawn`` process pool of ``workers`` processes that die with this one
    (:func:`_watch_parent`); ``started``: a queue the workers report their runs on (PoolExecutor),
    or None. Also used for work that is not a run (yehudai-shamir's minimal heads)."""
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_watch_parent,
        initargs=(os.getpid(), started))


def _watch_parent(parent: int, started: Any) -> None:
    """Pool initializer: the worker dies with its parent, and reports the runs it starts.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill the worker when the
    process that started it exits, even by ``kill -9``; elsewhere (and as a fallback) a daemon
    thread polls ``os.getppid()`` once a second.
    """
    global _STARTED
    _STARTED = started
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_poll_parent, args=(parent,), daemon=True).start()


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _tracked(run_function: RunFunction, run: Run) -> RunOutcome:
    """Tell the parent which worker starts ``run``, then execute it."""
    if _STARTED is not None:
        _STARTED.put((run.run_id, os.getpid()))
    return run_function(run)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        cause = f"signal {-exitcode}, {name}"
    else:
        cause = "unknown cause" if exitcode is None else f"exit code {exitcode}"
    return (f"worker process died ({cause}) while executing this run; a SIGKILL is often the "
            "kernel's out-of-memory killer: reduce the sizes or use a machine with more memory")


def _died(run: Run, reason: str) -> RunOutcome:
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return RunOutcome(run.run_id, FAILED, {}, reason, stream_entropy(run),
                      socket.gethostname(), now, now)


class Entered:
    """An executor already entered, which ``run_sweep`` may enter again without restarting it.

    Start the executor first and open the store after, so that an executor that cannot start
    (an unreachable scheduler) leaves no store behind::

        with PoolExecutor() as pool, Store(path) as store:
            run_sweep(sweep, store, executor=Entered(pool))
    """

    def __init__(self, active: Any) -> None:
        self.active, self.name = active, getattr(active, "name", "executor")

    def __enter__(self) -> Any:
        return self.active

    def __exit__(self, *exc: Any) -> None:
        return None


EXECUTORS: dict[str, tuple[str, str]] = {
    "inprocess": ("lazylab.experiments.executors", "InProcessExecutor"),
    "pool": ("lazylab.experiments.executors", "PoolExecutor"),
    "dask": ("lazylab.experiments.dask_executor", "DaskExecutor"),
}
"""Executor name → (module, class); a module is imported only when its executor is built."""


def make_executor(name: str = "pool", **options: Any) -> Any:
    """Build an executor by name (``inprocess``, ``pool``, ``dask``) with its options."""
    if name not in EXECUTORS:
        raise ValueError(f"executor={name!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    module, attribute = EXECUTORS[name]
    return getattr(importlib.import_module(module), attribute)(**options)


POOL_BREAK_EVEN_SECONDS = 30.0
"""In-process work (seconds, :func:`~lazylab.experiments.resources.run_seconds`) above which the
process pool is chosen: each pool worker starts a fresh interpreter and imports torch (10–20 s
on a loaded machine before its first result), so a smaller sweep finishes sooner in-process."""


def choose_executor(runs: Iterable[Run], *, cores: int | None = None,
                    cost: Callable[[Run], float] = run_seconds) -> str:
    """``"pool"`` when the runs' estimated work pays for starting the pool, else ``"inprocess"``.

    Rule: the pool when there are at least two runs, at least two cores, and the summed cost
    estimate ``Σ cost(run)`` exceeds :data:`POOL_BREAK_EVEN_SECONDS`; in-process otherwise.

    Args:
        runs: the runs about to execute (the pending ones).
        cores: cores available (default ``os.cpu_count()``).
        cost: ``Run -> seconds`` estimate (a study's ``run_cost``, or :func:`run_seconds`).
    """
    runs = list(runs)
    cores = (os.cpu_count() or 1) if cores is None else cores
    if len(runs) < 2 or cores < 2:
        return "inprocess"
    return "pool" if sum(cost(run) for run in runs) > POOL_BREAK_EVEN_SECONDS else "inprocess"


def executor_options(executor: str | None, workers: int | None, scheduler: str | None,
                     dask_workers: int | None) -> tuple[str | None, dict[str, Any]]:
    """The executor's name (None: to be chosen by :func:`choose_executor`) and options, from the
    command line's --executor/--workers/--scheduler/--dask-workers; SpecError on a
    contradiction."""
    dask = scheduler is not None or dask_workers is not None
    name = executor or ("dask" if dask else "pool" if workers is not None else None)
    for option, value in (("--workers", workers), ("--dask-workers", dask_workers)):
        if value is not None and value < 1:
            raise SpecError("<command line>", option, f"{value} must be a positive integer")
    if name != "dask" and dask:
        raise SpecError("<command line>", "--executor", f"{name!r} cannot use "
                        "--scheduler/--dask-workers; allowed: dask")
    if name not in (None, "pool") and workers is not None:
        raise SpecError("<command line>", "--workers",
                        f"applies to the pool executor, not {name!r}")
    if name == "dask":
        return name, {"scheduler": scheduler, "workers": dask_workers}
    return name, ({"workers": workers} if name == "pool" else {})
