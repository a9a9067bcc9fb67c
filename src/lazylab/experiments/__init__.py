"""Experiments: declarative sweeps, seed streams, executors, the results store, progress.

Typical use::

    from lazylab.experiments import load_sweep, run_sweep, Store, PoolExecutor, results_frame
    sweep = load_sweep("examples/quadratic-width.toml")
    with Store("results.sqlite", provenance=provenance()) as store:
        run_sweep(sweep, store, executor=PoolExecutor())
        frame = results_frame(sweep, store)

Modules: :mod:`.spec` (TOML schema, :class:`SpecError`), :mod:`.validate` (registry checks and
grid expansion), :mod:`.runs` (run identity and seed streams), :mod:`.execute` (one run),
:mod:`.executors` (in-process, process pool, Dask), :mod:`.store` (SQLite),
:mod:`.sweep` (orchestration, status, export), :mod:`.progress` (bars).
"""

from lazylab.experiments.catalog import Catalog, default_catalog, resolve_theory
from lazylab.experiments.execute import DIVERGED, DONE, FAILED, RunOutcome, execute_run
from lazylab.experiments.executors import (DaskExecutor, InProcessExecutor, PoolExecutor,
                                           make_executor)
from lazylab.experiments.progress import BarProgress, NullProgress
from lazylab.experiments.runs import Run, stream_generators
from lazylab.experiments.spec import SpecError
from lazylab.experiments.store import Store
from lazylab.experiments.sweep import (SweepStatus, default_store_path, export_results,
                                       load_sweep, provenance, results_frame, run_sweep,
                                       sweep_status)
from lazylab.experiments.validate import STANDARD_METRICS, Sweep, build_sweep

__all__ = ["Catalog", "default_catalog", "resolve_theory", "RunOutcome", "execute_run", "DONE",
           "FAILED", "DIVERGED", "DaskExecutor", "InProcessExecutor", "PoolExecutor",
           "make_executor", "BarProgress", "NullProgress", "Run", "stream_generators",
           "SpecError", "Store", "SweepStatus", "default_store_path", "export_results",
           "load_sweep", "provenance", "results_frame", "run_sweep", "sweep_status",
           "STANDARD_METRICS", "Sweep", "build_sweep"]
