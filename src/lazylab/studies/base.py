"""Built-in studies: the frozen record of a reproduction and the helpers its sweeps use.

A :class:`Study` is data: its sweeps are spec dictionaries in the layout of the experiments'
TOML files (``name``, ``description``, ``[task]``, ``[[regime]]``, ``[sweep]``; see
:mod:`lazylab.experiments.spec`), so every run goes through :func:`load_sweep` and
:func:`run_sweep` like a hand-written sweep: each result is written to the store as it arrives,
a finished run is never executed again, an interrupted study resumes where it stopped, and any
executor (in-process, process pool, Dask) runs it.

:func:`lazylab.studies.reproduce.reproduce` writes, into ``output_dir`` (default
``results/<name>/``):

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

import functools
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from lazylab.experiments.runs import task_generator
from lazylab.models import Network
from lazylab.models.registry import REGIMES
from lazylab.tasks import TASKS

__all__ = ["Study", "SCALES", "spec_to_toml", "sweep_task", "sweep_seeds", "run_rows",
           "with_device"]

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
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        # an inline table, e.g. a selection {grid = [...], select = "validation"}
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"spec value {value!r} of type {type(value).__name__} has no TOML form; "
                    "allowed: bool, int, float, str, lists and tables of those")


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

DEVICE_ONLY_WHEN = {Network: ("training", "online")}
"""Regimes whose ``device`` applies to one mode: (field, value) of that mode. Network's
population training is the CPU's exact engine and refuses another device; a Network with
``training = "population"`` fitted on samples (minibatches) could use one, but whether a run
has samples is the sweep's n_train, per run: those stay on the CPU. (NeuralTangent and
RandomFeatures take the device for their sample fits and ignore it at n = ∞.)"""


def with_device(spec: Mapping[str, Any], device: str | None) -> dict:
    """The spec with ``device`` set on every regime that can use it: those whose class has a
    ``device`` field (``Kernel``, ``NeuralTangent``, ``RandomFeatures``), in the mode
    :data:`DEVICE_ONLY_WHEN` names for the others (``Network`` trained online). None or "cpu" returns the spec as it
    is, so its run ids do not change; another device makes new run ids (its numbers round
    differently)."""
    spec = dict(spec)
    if device is None or device == "cpu":
        return spec

    def placed(regime: Mapping[str, Any]) -> dict:
        cls = REGIMES[regime["name"]]
        field, value = DEVICE_ONLY_WHEN.get(cls, (None, None))
        takes = "device" in {f.name for f in fields(cls)} and (
            field is None or regime.get(field) == value)
        return {**regime, "device": device} if takes else dict(regime)

    regimes = spec["regime"]
    spec["regime"] = placed(regimes) if isinstance(regimes, Mapping) else [
        placed(regime) for regime in regimes]
    return spec


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
