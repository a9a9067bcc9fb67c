"""The Dask executor: runs on a Dask distributed cluster (an existing scheduler or a LocalCluster).

In its own module so that Dask (about a second to import) is loaded only when this executor is
chosen (``lazylab run --executor dask``, ``--scheduler``, ``--dask-workers``); the protocol is
that of :mod:`lazylab.experiments.executors`.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

try:
    import distributed
except ImportError:  # optional: only the Dask executor needs it
    distributed = None

from lazylab.experiments.executors import RunFunction
from lazylab.experiments.execute import RunOutcome
from lazylab.experiments.runs import Run
from lazylab.experiments.spec import SpecError

__all__ = ["DaskExecutor"]


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
        connect_timeout: seconds to wait for an existing scheduler before a :class:`SpecError`.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 host: str = "127.0.0.1", connect_timeout: float = 5.0) -> None:
        if scheduler is not None and workers is not None:
            raise ValueError("give either scheduler (an existing cluster) or workers "
                             "(a new LocalCluster), not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be a positive integer")
        self.scheduler, self.workers, self.host = scheduler, workers, host
        self.connect_timeout = connect_timeout
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
            try:
                self._client = distributed.Client(self.scheduler,
                                                  timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError) as error:
                raise SpecError("<command line>", "--scheduler", f"cannot reach the Dask "
                                f"scheduler at {self.scheduler} within {self.connect_timeout} s "
                                f"({type(error).__name__}); start it or check the address"
                                ) from None
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
