"""Executors: map a run function over runs, yielding outcomes as they complete.

Every executor has ``map(run_function, runs) -> Iterator[RunOutcome]`` (order of completion) and
is a context manager. Workers only compute; the caller writes outcomes to the store, so any
number of workers can never corrupt it.

* :class:`InProcessExecutor` — a plain loop in this process (debugging, long single runs with
  an inner progress bar).
* :class:`PoolExecutor` — a local ``ProcessPoolExecutor`` (``spawn`` start method: torch is not
  fork-safe), one worker per core by default.
* :class:`DaskExecutor` — a Dask distributed cluster: an existing scheduler
  (``tcp://HOST:PORT``) or a ``LocalCluster`` with K single-threaded worker processes.

The run function must be picklable by reference (a module-level function, or a
``functools.partial`` of one) for the pool and Dask.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator

try:
    import distributed
except ImportError:  # optional: only the Dask executor needs it
    distributed = None

from lazylab.experiments.execute import RunOutcome
from lazylab.experiments.runs import Run

__all__ = ["InProcessExecutor", "PoolExecutor", "DaskExecutor", "EXECUTORS", "make_executor"]

RunFunction = Callable[[Run], RunOutcome]


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
    """A local process pool (``workers`` processes; all cores when None)."""

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be a positive integer")
        self.workers = workers or os.cpu_count() or 1
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> "PoolExecutor":
        context = multiprocessing.get_context("spawn")
        self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, run_function: RunFunction, runs: Iterable[Run]) -> Iterator[RunOutcome]:
        if self._pool is None:
            raise RuntimeError("use PoolExecutor as a context manager")
        futures = [self._pool.submit(run_function, run) for run in runs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _import_distributed() -> Any:
    if distributed is None:
        raise ImportError("the Dask executor needs dask[distributed]; install it with "
                          "pip install 'lazylab[distributed]'")
    return distributed


class DaskExecutor:
    """A Dask distributed cluster: ``scheduler`` address, or a LocalCluster of ``workers``.

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running scheduler; None starts a LocalCluster.
        workers: worker processes of the LocalCluster (one thread each); all cores when None.
        host: interface the LocalCluster listens on (loopback by default).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 host: str = "127.0.0.1") -> None:
        if scheduler is not None and workers is not None:
            raise ValueError("give either scheduler (an existing cluster) or workers "
                             "(a new LocalCluster), not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be a positive integer")
        self.scheduler, self.workers, self.host = scheduler, workers, host
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> "DaskExecutor":
        distributed = _import_distributed()
        if self.scheduler is None:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, host=self.host, dashboard_address=None)
            self._client = distributed.Client(self._cluster)
        else:
            self._client = distributed.Client(self.scheduler, timeout="30s")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def map(self, run_function: RunFunction, runs: Iterable[Run]) -> Iterator[RunOutcome]:
        if self._client is None:
            raise RuntimeError("use DaskExecutor as a context manager")
        distributed = _import_distributed()
        runs = list(runs)
        if not runs:
            return
        futures = self._client.map(run_function, runs, pure=False)
        for future in distributed.as_completed(futures):
            yield future.result()
            future.release()


EXECUTORS = {"inprocess": InProcessExecutor, "pool": PoolExecutor, "dask": DaskExecutor}


def make_executor(name: str = "pool", **options: Any) -> Any:
    """Build an executor by name (``inprocess``, ``pool``, ``dask``) with its options."""
    if name not in EXECUTORS:
        raise ValueError(f"executor={name!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](**options)
