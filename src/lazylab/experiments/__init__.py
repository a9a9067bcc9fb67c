"""Experiments: declarative sweeps, seed streams, executors, the results store, progress.

Typical use::

    from lazylab.experiments import load_sweep, run_sweep, Store, PoolExecutor, results_frame
    sweep = load_sweep("examples/quadratic-width.toml")
    with Store("results.sqlite", provenance=provenance()) as store:
        run_sweep(sweep, store, executor=PoolExecutor())
        frame = results_frame(sweep, store)

Modules: :mod:`.spec` (TOML schema, :class:`SpecError`), :mod:`.validate` (registry checks and
grid expansion), :mod:`.runs` (run identity and seed streams), :mod:`.execute` (one run),
:mod:`.executors` (in-process, process pool; :mod:`.dask_executor` for Dask), :mod:`.store`
(SQLite; merging stores), :mod:`.shards` (a sweep split over independent jobs), :mod:`.sweep`
(orchestration, status), :mod:`.frame` (results tables and export, the
one module that needs pandas), :mod:`.progress` (bars, ETA), :mod:`.resources` (size checks).

The names below are loaded on first use (:data:`EXPORTS` maps each to its module), so a command
that needs the store and the spec does not pay for pandas, Dask or the progress bars.
"""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS: dict[str, str] = {
    "Catalog": "catalog", "default_catalog": "catalog", "resolve_theory": "catalog",
    "DIVERGED": "execute", "DONE": "execute", "FAILED": "execute", "RunOutcome": "execute",
    "execute_run": "execute",
    "InProcessExecutor": "executors", "PoolExecutor": "executors", "make_executor": "executors",
    "choose_executor": "executors", "DaskExecutor": "dask_executor",
    "BarProgress": "progress", "NullProgress": "progress",
    "Run": "runs", "stream_generators": "runs",
    "SpecError": "spec", "Store": "store", "MergeCounts": "store",
    "Shard": "shards", "parse_shard": "shards", "shard_runs": "shards",
    "SweepStatus": "sweep", "default_store_path": "sweep", "load_sweep": "sweep",
    "provenance": "sweep", "run_sweep": "sweep", "sweep_status": "sweep",
    "export_results": "frame", "results_frame": "frame", "learning_curve": "frame",
    "STANDARD_METRICS": "validate", "Sweep": "validate", "build_sweep": "validate",
}
"""Public name → the submodule of :mod:`lazylab.experiments` that defines it."""

__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name's module on first access (PEP 562)."""
    if name not in EXPORTS:
        raise AttributeError(f"module 'lazylab.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lazylab.experiments.{EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *EXPORTS])
