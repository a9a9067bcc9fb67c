"""Sweeps: load a spec, run what is pending into the store, count (tables: :mod:`.frame`).

``run_sweep`` skips runs already in the store (done or diverged: both are results) and
re-executes failed ones only when ``retry_failed`` is set. It writes each outcome as it arrives,
in the calling process, so an interrupted sweep resumes where it stopped. Progress goes to the
``progress`` callback factory (see :mod:`lazylab.experiments.progress`); this module prints
nothing.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

from lazylab.experiments.catalog import Catalog, default_catalog
from lazylab.experiments.execute import DIVERGED, DONE, FAILED, RunOutcome, execute_run
from lazylab.experiments.executors import InProcessExecutor
from lazylab.experiments.progress import NullProgress
from lazylab.experiments.runs import Run, task_generator
from lazylab.experiments.spec import SpecError, parse_spec, read_spec_file
from lazylab.experiments.store import Store
from lazylab.experiments.validate import Sweep, build_sweep

__all__ = ["load_sweep", "run_sweep", "sweep_status", "SweepStatus", "pending_runs",
           "pending_runs_at", "failure_reasons", "format_failure_reasons", "provenance", "default_store_path",
           "make_task_builder"]


def load_sweep(path: str | Path, catalog: Catalog | None = None, *,
               max_memory_gb: float | str | None = None) -> Sweep:
    """Read, structurally validate and check a spec file against the registries.

    ``max_memory_gb`` (GB, ``inf`` disables the check) overrides the memory limit of the size
    check, before ``LAZYLAB_MAX_MEMORY_GB`` and ``[sweep] max_memory_gb``.
    """
    raw = read_spec_file(path)
    spec = parse_spec(raw, path)
    if catalog is None:
        try:
            catalog = default_catalog()
        except ImportError as error:
            raise SpecError(path, "task.name", f"lazylab's task and regime registries are not "
                            f"available in this installation ({error})") from None
    return build_sweep(spec, path, catalog, max_memory_gb=max_memory_gb)


STUDY_STORE = "store.sqlite"
"""A study writes its specs to ``<output>/specs/`` and their results to ``<output>/store.sqlite``."""


def default_store_path(spec_path: str | Path) -> Path:
    """``<spec directory>/<spec stem>.sqlite``, or a study's own store for a study's spec.

    A spec in a ``specs`` directory whose parent holds ``store.sqlite`` was written by
    ``lazylab reproduce`` (:mod:`lazylab.studies.base`): its results are in that store.
    """
    spec_path = Path(spec_path)
    study_store = spec_path.parent.parent / STUDY_STORE
    if spec_path.parent.name == "specs" and study_store.is_file():
        return study_store
    return spec_path.with_name(spec_path.stem + ".sqlite")


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, str | None]:
    """lazylab's version and, when it runs from a git checkout, the commit."""
    try:
        lazylab_version = version("lazylab")
    except PackageNotFoundError:
        lazylab_version = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10)
        git_commit = commit.stdout.strip() if commit.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        git_commit = None
    return {"lazylab_version": lazylab_version, "git_commit": git_commit}


@dataclass(frozen=True)
class SweepStatus:
    """Counts of a sweep's runs by state (pending = not yet in the store)."""

    total: int
    done: int
    diverged: int
    failed: int

    @property
    def pending(self) -> int:
        return self.total - self.done - self.diverged - self.failed


def sweep_status(sweep: Sweep, store: Store) -> SweepStatus:
    """How many of the sweep's runs are done, diverged, failed and pending."""
    statuses = store.statuses(run.run_id for run in sweep.runs)
    counts = {s: sum(1 for v in statuses.values() if v == s) for s in (DONE, DIVERGED, FAILED)}
    return SweepStatus(len(sweep.runs), counts[DONE], counts[DIVERGED], counts[FAILED])


def failure_reasons(sweep: Sweep, store: Store, *, limit: int = 200) -> list[tuple[str, int]]:
    """The distinct reasons of the sweep's failed runs with their counts, most frequent first.

    A reason is the first line of the stored error (``ExceptionType: message``), cut at
    ``limit`` characters, so one line each can be printed.
    """
    errors = store.errors(run.run_id for run in sweep.runs)
    counts: dict[str, int] = {}
    for text in errors.values():
        line = (text.strip().splitlines() or ["no reason recorded"])[0]
        line = line if len(line) <= limit else line[:limit - 1] + "…"
        counts[line] = counts.get(line, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def format_failure_reasons(reasons: list[tuple[str, int]]) -> list[str]:
    """One line per distinct reason: ``  3 failed: MemoryError: …``."""
    return [f"  {count} failed: {reason}" for reason, count in reasons]


def pending_runs(sweep: Sweep, store: Store, retry_failed: bool = False) -> list[Run]:
    """Runs without a result (plus failed ones when ``retry_failed``), in spec order."""
    statuses = store.statuses(run.run_id for run in sweep.runs)
    redo = {FAILED} if retry_failed else set()
    return [r for r in sweep.runs if r.run_id not in statuses or statuses[r.run_id] in redo]


def pending_runs_at(sweep: Sweep, store_path: str | Path,
                    retry_failed: bool = False) -> list[Run]:
    """:func:`pending_runs` for a store given by its path (every run when it does not exist)."""
    if not Path(store_path).is_file():
        return list(sweep.runs)
    with Store(store_path, readonly=True) as store:
        return pending_runs(sweep, store, retry_failed)


def run_sweep(sweep: Sweep, store: Store, *, executor: Any = None,
              run_function: Callable[[Run], RunOutcome] = execute_run,
              retry_failed: bool = False, progress: Any = None) -> SweepStatus:
    """Execute the pending runs of ``sweep`` and write each outcome to ``store``.

    Args:
        sweep: the validated sweep.
        store: a writable store; only this process writes to it.
        executor: an executor (not yet entered); in-process when None.
        run_function: ``Run -> RunOutcome``, picklable for process/Dask executors.
        retry_failed: also re-execute runs whose status is ``failed``.
        progress: a progress reporter (``start(total, runs)``, ``update(outcome)``,
            ``close()``; ``runs`` are the pending runs, for a cost-weighted ETA).

    Returns:
        The sweep's status after the run.
    """
    todo = pending_runs(sweep, store, retry_failed)
    by_id = {run.run_id: run for run in todo}
    progress = progress or NullProgress()
    progress.start(len(todo), todo)
    try:
        if todo:
            with executor or InProcessExecutor() as active:
                for outcome in active.map(run_function, todo):
                    store.write(by_id[outcome.run_id], outcome)
                    progress.update(outcome)
    finally:
        progress.close()
    return sweep_status(sweep, store)


def make_task_builder(sweep: Sweep, catalog: Catalog | None = None
                      ) -> Callable[[dict[str, Any]], Any]:
    """``params -> task``: the task instance of the sweep's first seed for a task configuration.

    ``params`` may come from a results frame (numbers possibly as numpy scalars or floats); it
    is matched to the sweep's own task parameters, which are what builds the task, with the
    same task stream the runs used, so theory curves see exactly the simulated instance.
    """
    configurations = {run.task_params for run in sweep.runs}
    seed = min(run.seed for run in sweep.runs)
    built: dict[tuple, Any] = {}

    def matches(stored: tuple, params: dict[str, Any]) -> bool:
        own = dict(stored)
        return all(k in own and (own[k] == v or str(own[k]) == str(v)) for k, v in params.items())

    def build(params: dict[str, Any]) -> Any:
        candidates = [c for c in configurations if matches(c, params)]
        if not candidates:
            raise ValueError(f"no task of the sweep has parameters {params}")
        chosen = sorted(candidates, key=repr)[0]
        if chosen not in built:
            registry = (catalog or default_catalog()).tasks[sweep.spec.task.name]
            arguments = {k: tuple(v) if isinstance(v, tuple) else v for k, v in chosen}
            rng = task_generator(sweep.spec.task.name, dict(chosen), seed)
            built[chosen] = registry(rng=rng, **arguments)
        return built[chosen]

    return build
