"""Built-in studies: a frozen record per reproduction and :func:`reproduce`, which runs one.

A :class:`Study` is data: its sweeps are spec dictionaries in the layout of the experiments'
TOML files (``name``, ``description``, ``[task]``, ``[[regime]]``, ``[sweep]``; see
:mod:`lazylab.experiments.spec`), so every run goes through :func:`load_sweep` and
:func:`run_sweep` like a hand-written sweep: each result is written to the store as it arrives,
a finished run is never executed again, an interrupted study resumes where it stopped, and any
executor (in-process, process pool, Dask) runs it.

``reproduce(name)`` writes, into ``output_dir`` (default ``results/<name>/``):

=====================  ==========================================================
``specs/<sweep>.toml``  each sweep as a spec file (``lazylab run/show/export`` work on it)
``store.sqlite``        the results store of the study (one per study, all its sweeps)
``<name>.png/.pdf``     the figure
``<name>.csv``          the points of the figure (the study's ``points`` table)
``summary.md``          what the figure shows and the observed theory–simulation gaps
=====================  ==========================================================

Scales: every study defines ``"smoke"`` (seconds; the tests), ``"default"`` (this machine, a few
minutes) and ``"paper"`` (the paper's sizes); ``Study.scales`` documents the exact sizes.
Theory lines are computed in ``figure``/``summary``/``points`` from :mod:`lazylab.theory`,
on the task instances the runs used (:func:`sweep_task`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

__all__ = ["Study", "SCALES", "reproduce", "resolve_study", "spec_to_toml", "sweep_task",
           "sweep_seeds", "run_rows"]

SCALES = ("smoke", "default", "paper")
"""smoke: seconds (tests); default: minutes on a laptop; paper: the paper's sizes."""

_PROVENANCE_COLUMNS = ("error", "lazylab_version", "git_commit", "host", "started_at",
                       "finished_at")


@dataclass(frozen=True, kw_only=True)
class Study:
    """One built-in reproduction.

    Args:
        name: registry name (``lazylab reproduce NAME``), also the file stem of its outputs.
        description: one line (``lazylab list``).
        sweeps: ``scale -> list[dict]``, spec dictionaries in the TOML layout, each with a
            distinct ``name`` (the key of ``frames``).
        figure: ``(frames, scale, output_dir) -> list[Path]``; writes PNG and PDF.
        summary: ``(frames, scale) -> str``, markdown: what the figure shows and the observed
            theory–simulation gaps, computed from the data.
        points: ``(frames, scale) -> DataFrame``, the figure's points for the CSV; by default
            every finished run of every sweep (:func:`run_rows`).
        scales: scale name -> the exact sizes it uses, in words (documentation; also the set of
            scales the study accepts).
        run_cost: optional ``Run -> float`` cost estimate; pending runs execute most expensive
            first, so a process pool is not left waiting on one long run at the end.
    ``frames`` maps each sweep name to its results frame (finished runs only; see
    :func:`lazylab.experiments.results_frame`).
    """

    name: str
    description: str
    sweeps: Callable[[str], list[dict]]
    figure: Callable[[dict[str, pd.DataFrame], str, Path], list[Path]]
    summary: Callable[[dict[str, pd.DataFrame], str], str]
    points: Callable[[dict[str, pd.DataFrame], str], pd.DataFrame] | None = None
    scales: Mapping[str, str] = field(default_factory=lambda: {s: s for s in SCALES})
    run_cost: Callable[[Any], float] | None = None


def resolve_study(name_or_study: str | Study) -> Study:
    """The registered study of that name (or the study itself); ValueError listing the names."""
    if isinstance(name_or_study, Study):
        return name_or_study
    from lazylab.studies import STUDIES
    if name_or_study not in STUDIES:
        allowed = ", ".join(sorted(STUDIES)) or "none are installed"
        raise ValueError(f"study {name_or_study!r} is unknown; allowed: {allowed}")
    return STUDIES[name_or_study]


# ----------------------------------------------------------------------------- spec files

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"spec values must be finite numbers, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)       # JSON strings are TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"spec value {value!r} of type {type(value).__name__} has no TOML form; "
                    "allowed: bool, int, float, str, lists of those")


def _toml_table(header: str, table: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{k} = {_toml_value(v)}" for k, v in table.items()), ""]


def spec_to_toml(spec: Mapping[str, Any]) -> str:
    """A spec dictionary (``name``, ``description``, task, regime list, sweep, plot) as TOML."""
    lines = [f"{k} = {_toml_value(spec[k])}" for k in ("name", "description") if k in spec]
    lines.append("")
    unknown = set(spec) - {"name", "description", "task", "regime", "sweep", "plot"}
    if unknown:
        raise ValueError(f"spec has unknown sections {sorted(unknown)}; allowed: name, "
                         "description, task, regime, sweep, plot")
    lines += _toml_table("[task]", spec["task"])
    for regime in spec["regime"]:
        lines += _toml_table("[[regime]]", regime)
    for section in ("sweep", "plot"):
        if section in spec:
            lines += _toml_table(f"[{section}]", spec[section])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- data helpers

def sweep_task(spec: Mapping[str, Any], seed: int) -> Any:
    """The task instance every run of ``seed`` in this spec used (same task stream).

    The spec's ``[task]`` must hold single values (no grids). Theory lines evaluated on these
    instances see exactly the simulated B or Δ. Instances are cached (tasks are immutable).
    """
    params = {k: v for k, v in spec["task"].items() if k != "name"}
    if any(isinstance(v, list) for v in params.values()):
        raise ValueError(f"sweep_task needs single task values, got grids in {params}")
    return _cached_task(json.dumps(dict(spec["task"]), sort_keys=True), int(seed))


@functools.lru_cache(maxsize=256)
def _cached_task(task_json: str, seed: int) -> Any:
    from lazylab.experiments.runs import task_generator
    from lazylab.tasks import TASKS
    params = json.loads(task_json)
    name = params.pop("name")
    return TASKS[name](rng=task_generator(name, params, seed), **params)


def sweep_seeds(spec: Mapping[str, Any]) -> list[int]:
    """The seeds a spec dictionary declares (a count K means 0 … K−1)."""
    seeds = spec.get("sweep", {}).get("seeds", [0])
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def run_rows(frames: Mapping[str, pd.DataFrame], scale: str | None = None) -> pd.DataFrame:
    """Every finished run of every sweep, one row each, with a ``sweep`` column (default CSV)."""
    parts = [frame.assign(sweep=name) for name, frame in frames.items() if not frame.empty]
    if not parts:
        return pd.DataFrame(columns=["sweep"])
    table = pd.concat(parts, ignore_index=True)
    return table.drop(columns=[c for c in _PROVENANCE_COLUMNS if c in table])


# ----------------------------------------------------------------------------- reproduce

class _Entered:
    """An already-entered executor that run_sweep may enter again without restarting it."""

    def __init__(self, active: Any) -> None:
        self.active, self.name = active, getattr(active, "name", "executor")

    def __enter__(self) -> Any:
        return self.active

    def __exit__(self, *exc: Any) -> None:
        return None


def _make_executor(executor: Any, options: Mapping[str, Any]) -> Any:
    from lazylab.experiments import make_executor
    if isinstance(executor, str):
        return make_executor(executor, **dict(options))
    if options:
        raise ValueError("executor_options apply only when executor is given by name")
    return executor


def _load(study: Study, scale: str, spec_dir: Path, catalog: Any) -> list[tuple[dict, Any]]:
    from lazylab.experiments import load_sweep
    specs = study.sweeps(scale)
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
    import functools
    from lazylab.experiments import execute_run
    from lazylab.experiments.progress import execute_with_step_bar
    inner = execute_with_step_bar if executor_name == "inprocess" and not quiet else execute_run
    return functools.partial(inner, catalog=catalog) if catalog is not None else inner


def reproduce(name_or_study: str | Study, *, scale: str = "default",
              store_path: str | Path | None = None, executor: Any = "pool",
              executor_options: Mapping[str, Any] | None = None,
              output_dir: str | Path | None = None, quiet: bool = False,
              retry_failed: bool = False, catalog: Any = None) -> dict[str, Any]:
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
    Returns:
        ``study``, ``scale``, ``output_dir``, ``store``, ``specs``, ``figures``, ``csv``,
        ``summary`` (paths), ``runs`` (``total``, ``executed``, ``done``, ``diverged``,
        ``failed``) and ``timings`` (seconds: ``sweeps``, ``figure``, ``summary``, ``total``).
    Raises:
        ValueError: unknown study or scale; SpecError: a study spec the registries reject.
    """
    from lazylab.experiments import (DONE, BarProgress, Store, provenance, results_frame,
                                     run_sweep)
    from lazylab.experiments.sweep import pending_runs
    started = time.perf_counter()
    study = resolve_study(name_or_study)
    if scale not in study.scales:
        raise ValueError(f"scale {scale!r} is unknown for study {study.name!r}; allowed: "
                         f"{', '.join(study.scales)}")
    output_dir = Path("results") / study.name if output_dir is None else Path(output_dir)
    spec_dir = output_dir / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    store_path = output_dir / "store.sqlite" if store_path is None else Path(store_path)
    loaded = _load(study, scale, spec_dir, catalog)
    everything = _combined([sweep for _, sweep in loaded], study.run_cost)
    active = _make_executor(executor, executor_options or {})
    clock = time.perf_counter()
    with Store(store_path, provenance=provenance()) as store:
        executed = len(pending_runs(everything, store, retry_failed))
        if executed:
            with active as entered:
                status = run_sweep(everything, store, executor=_Entered(entered),
                                   run_function=_run_function(active.name, quiet, catalog),
                                   retry_failed=retry_failed,
                                   progress=None if quiet else BarProgress(study.name))
        else:
            from lazylab.experiments import sweep_status
            status = sweep_status(everything, store)
        frames = {spec["name"]: results_frame(sweep, store, statuses=(DONE,))
                  for spec, sweep in loaded}
    timings = {"sweeps": time.perf_counter() - clock}
    clock = time.perf_counter()
    figures = [Path(p) for p in study.figure(frames, scale, output_dir)]
    timings["figure"] = time.perf_counter() - clock
    clock = time.perf_counter()
    points = (study.points or run_rows)(frames, scale)
    csv_path = output_dir / f"{study.name}.csv"
    points.to_csv(csv_path, index=False)
    runs = {"total": status.total, "executed": executed, "done": status.done,
            "diverged": status.diverged, "failed": status.failed}
    text = study.summary(frames, scale)
    summary_path = output_dir / "summary.md"
    summary_path.write_text(_summary_header(study, scale, runs, store_path) + text.rstrip()
                            + "\n", encoding="utf-8")
    timings["summary"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    return {"study": study.name, "scale": scale, "output_dir": output_dir, "store": store_path,
            "specs": [spec_dir / f"{spec['name']}.toml" for spec, _ in loaded],
            "figures": figures, "csv": csv_path, "summary": summary_path, "runs": runs,
            "timings": timings}


def _summary_header(study: Study, scale: str, runs: Mapping[str, int], store: Path) -> str:
    problems = ""
    if runs["failed"] or runs["diverged"]:
        problems = (f" **{runs['failed']} failed and {runs['diverged']} diverged runs are not "
                    "in the figure** (`lazylab show` on a spec file lists them).")
    return (f"# {study.name} — {study.description}\n\n"
            f"Scale `{scale}`: {study.scales[scale]}\n\n"
            f"{runs['done']} of {runs['total']} runs finished (results in `{store}`).{problems}\n\n")
