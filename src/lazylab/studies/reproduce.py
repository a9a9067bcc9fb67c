"""``reproduce``: run a study's sweeps (resumable), then write its figure, CSV and summary.

Every run goes through :func:`lazylab.experiments.load_sweep` and
:func:`lazylab.experiments.run_sweep` like a hand-written sweep: each result is written to the
store as it arrives, a finished run is never executed again, an interrupted study resumes where
it stopped, and any executor (in-process, process pool, Dask) runs it. The outputs are listed
in :mod:`lazylab.studies.base`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from lazylab import _checks as checks
from lazylab.experiments import (DONE, BarProgress, Store, execute_run, load_sweep,
                                 make_executor, provenance, results_frame, run_sweep,
                                 sweep_status)
from lazylab.experiments.executors import Entered
from lazylab.experiments.progress import execute_with_step_bar
from lazylab.experiments.resources import run_kind, run_seconds
from lazylab.experiments.shards import Shard, parse_shard, shard_runs
from lazylab.experiments.sweep import pending_runs
from lazylab.solvers.batches import resolve_device
from lazylab.studies.base import Study, run_rows, spec_to_toml, with_device
from lazylab.studies.registry import resolve_study

__all__ = ["reproduce"]


def _make_executor(executor: Any, options: Mapping[str, Any]) -> Any:
    if isinstance(executor, str):
        return make_executor(executor, **dict(options))
    if options:
        raise ValueError("executor_options apply only when executor is given by name")
    return executor


def _load(study: Study, scale: str, spec_dir: Path, catalog: Any,
          device: str | None = None) -> list[tuple[dict, Any]]:
    specs = [with_device(spec, device) for spec in study.sweeps(scale)]
    names = [spec["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"study {study.name!r}: sweep names must be distinct, got {names}")
    loaded = []
    for spec in specs:
        path = spec_dir / f"{spec['name']}.toml"
        text = spec_to_toml(spec)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        loaded.append((spec, load_sweep(path, catalog)))
    return loaded


def _combined(sweeps: list[Any], run_cost: Callable[[Any], float] | None) -> Any:
    """One sweep holding every run of the study (duplicates once), most expensive first."""
    runs = {run.run_id: run for sweep in sweeps for run in sweep.runs}
    ordered = list(runs.values())
    if run_cost is not None:
        ordered.sort(key=run_cost, reverse=True)
    return dataclasses.replace(sweeps[0], runs=tuple(ordered))


def _run_function(executor_name: str, quiet: bool, catalog: Any) -> Callable:
    inner = execute_with_step_bar if executor_name == "inprocess" and not quiet else execute_run
    return functools.partial(inner, catalog=catalog) if catalog is not None else inner


def _execute(study: Study, loaded: list, store_path: Path, active: Any, *, quiet: bool,
             retry_failed: bool, catalog: Any, shard: Shard | None) -> tuple[Any, int, dict]:
    """Run the pending runs (of ``shard`` alone when given); returns (status, runs executed
    now, frames of finished runs: none for a shard, whose store holds a part of the study)."""
    everything = _combined([sweep for _, sweep in loaded], study.run_cost)
    if shard is not None:
        mine = shard_runs(everything.runs, shard, study.run_cost or run_seconds, run_kind)
        everything = dataclasses.replace(everything, runs=tuple(mine))
    with Store(store_path, provenance=provenance()) as store:
        executed = len(pending_runs(everything, store, retry_failed))
        if executed:
            with active as entered:
                status = run_sweep(everything, store, executor=Entered(entered),
                                   run_function=_run_function(active.name, quiet, catalog),
                                   retry_failed=retry_failed,
                                   progress=None if quiet else BarProgress(study.name, cost=study.run_cost))
        else:
            status = sweep_status(everything, store)
        frames = {} if shard is not None else {
            spec["name"]: results_frame(sweep, store, statuses=(DONE,)) for spec, sweep in loaded}
    return status, executed, frames


def _write_outputs(study: Study, scale: str, frames: dict, runs: Mapping[str, int],
                   output_dir: Path, store_path: Path, timings: dict) -> dict[str, Any]:
    clock = time.perf_counter()
    figures = [Path(p) for p in study.figure(frames, scale, output_dir)]
    timings["figure"] = time.perf_counter() - clock
    clock = time.perf_counter()
    points = (study.points or run_rows)(frames, scale)
    csv_path = output_dir / f"{study.name}.csv"
    points.to_csv(csv_path, index=False)
    text = study.summary(frames, scale)
    summary_path = output_dir / "summary.md"
    summary_path.write_text(_summary_header(study, scale, runs, store_path) + text.rstrip()
                            + "\n", encoding="utf-8")
    timings["summary"] = time.perf_counter() - clock
    return {"figures": figures, "csv": csv_path, "summary": summary_path}


def reproduce(name_or_study: str | Study, *, scale: str = "default",
              store_path: str | Path | None = None, executor: Any = "pool",
              executor_options: Mapping[str, Any] | None = None,
              output_dir: str | Path | None = None, quiet: bool = False,
              retry_failed: bool = False, catalog: Any = None,
              device: str | None = None, shard: Shard | str | None = None) -> dict[str, Any]:
    """Run a study's sweeps (skipping finished runs), then write its figure, CSV and summary.

    Args:
        name_or_study: a name in :data:`lazylab.studies.STUDIES` or a :class:`Study`.
        scale: one of the study's scales ("smoke", "default", "paper").
        store_path: the SQLite results store (default ``output_dir/store.sqlite``).
        executor: "inprocess", "pool" or "dask", or an executor object (not yet entered).
        executor_options: keyword options of the named executor (``workers``, ``scheduler``).
        output_dir: where everything is written (default ``results/<name>``).
        quiet: no progress bar.
        retry_failed: re-execute runs stored as failed.
        catalog: registries to use instead of lazylab's own (tests).
        device: "cuda[:k]" runs the sample-based fits there
            (:func:`lazylab.studies.base.with_device` says which; the exact n = ∞ engine stays
            on the CPU); None or "cpu": the CPU.
            Runs on another device have their own run ids, so they do not resume CPU runs.
        shard: a :class:`~lazylab.experiments.shards.Shard` or ``"K/N"``: run only that share
            of the study's runs (the same split in every job) and write no figure, CSV or
            summary; merge the shards' stores (``Store.merge``, ``lazylab merge``) into one
            and call again without ``shard`` to write them.
    Returns:
        ``study``, ``scale``, ``shard`` (``"K/N"`` or None), ``output_dir``, ``store``,
        ``specs``, ``figures``, ``csv``, ``summary`` (paths; ``[]``, None and None for a
        shard), ``runs`` (``total``, ``executed``, ``done``, ``diverged``, ``failed``; a
        shard's own) and ``timings`` (seconds: ``sweeps``, ``figure``, ``summary``, ``total``).
    Raises:
        ValueError: unknown study or scale; SpecError: a study spec the registries reject.
    """
    started = time.perf_counter()
    study = resolve_study(name_or_study)
    shard = _checked(study, scale, device, shard)
    output_dir = Path("results") / study.name if output_dir is None else Path(output_dir)
    spec_dir = output_dir / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    store_path = output_dir / "store.sqlite" if store_path is None else Path(store_path)
    loaded = _load(study, scale, spec_dir, catalog, device)
    active = _make_executor(executor, executor_options or {})
    clock = time.perf_counter()
    status, executed, frames = _execute(study, loaded, store_path, active, quiet=quiet,
                                        retry_failed=retry_failed, catalog=catalog,
                                        shard=shard)
    timings = {"sweeps": time.perf_counter() - clock}
    runs = {"total": status.total, "executed": executed, "done": status.done,
            "diverged": status.diverged, "failed": status.failed}
    if shard is None:
        files = _write_outputs(study, scale, frames, runs, output_dir, store_path, timings)
    else:
        files = {"figures": [], "csv": None, "summary": None}
    timings["total"] = time.perf_counter() - started
    return {"study": study.name, "scale": scale, "shard": None if shard is None else str(shard),
            "output_dir": output_dir, "store": store_path,
            "specs": [spec_dir / f"{spec['name']}.toml" for spec, _ in loaded], **files,
            "runs": runs, "timings": timings}


def _checked(study: Study, scale: str, device: str | None, shard: Shard | str | None
             ) -> Shard | None:
    """ValueError for an unknown scale, a device that is not there or a malformed shard; the
    shard as a Shard."""
    if scale not in study.scales:
        raise ValueError(f"scale {scale!r} is unknown for study {study.name!r}; allowed: "
                         f"{', '.join(study.scales)}")
    if device is not None:
        resolve_device(checks.device(device))  # CUDA asked for where there is none: say so now
    return parse_shard(shard) if isinstance(shard, str) else shard


def _summary_header(study: Study, scale: str, runs: Mapping[str, int], store: Path) -> str:
    problems = ""
    if runs["failed"] or runs["diverged"]:
        problems = (f" **{runs['failed']} failed and {runs['diverged']} diverged runs are not "
                    "in the figure** (`lazylab show` on a spec file lists them).")
    return (f"# {study.name} — {study.description}\n\n"
            f"Scale `{scale}`: {study.scales[scale]}\n\n"
            f"{runs['done']} of {runs['total']} runs finished (results in `{store}`).{problems}\n\n")
