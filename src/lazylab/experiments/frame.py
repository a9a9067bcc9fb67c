"""Results as tables: one row per stored run (pandas), and their CSV / Parquet export.

The one module of :mod:`lazylab.experiments` that imports pandas, so that commands which only
count runs (``lazylab status``) do not load it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:
    import pyarrow
except ImportError:  # optional: only Parquet export needs it
    pyarrow = None

from lazylab.experiments.runs import POPULATION
from lazylab.experiments.spec import SpecError
from lazylab.experiments.store import Store
from lazylab.experiments.validate import STANDARD_METRICS, Sweep, column_name

__all__ = ["results_frame", "export_results", "learning_curve"]

_CHECKPOINT = re.compile(r"population_risk_at_(\d+)")


def results_frame(sweep: Sweep, store: Store, *, statuses: tuple[str, ...] | None = None
                  ) -> pd.DataFrame:
    """One row per stored run of the sweep: run fields, metrics, status and provenance.

    Task and regime parameters become columns under their own names (``task.NAME`` /
    ``regime.NAME`` when both declare NAME: ``sweep.fields``); ``n_train`` is ``inf`` for the
    population.
    """
    records = []
    for row in store.rows(run.run_id for run in sweep.runs):
        if statuses is not None and row["status"] not in statuses:
            continue
        records.append(_flatten(row, sweep.collisions))
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        columns = ["run_id", *sweep.fields, "status", *sweep.metrics]
        return pd.DataFrame(columns=columns)
    return frame.sort_values(["seed", "run_id"], kind="stable").reset_index(drop=True)


def _flatten(row: dict[str, Any], collisions: frozenset[str]) -> dict[str, Any]:
    spec = row["spec"]
    task, regime = dict(spec["task"]), dict(spec["regime"])
    record: dict[str, Any] = {"run_id": row["run_id"], "task": task.pop("name"),
                              "regime": regime.pop("name")}
    for name, value in task.items():
        record[column_name("task", name, collisions)] = _cell(value)
    for name, value in regime.items():
        record[column_name("regime", name, collisions)] = _cell(value)
    record["n_train"] = math.inf if spec["n_train"] == POPULATION else spec["n_train"]
    record.update(n_test=spec["n_test"], seed=spec["seed"], status=row["status"])
    record.update(row["metrics"])
    for key in ("error", "lazylab_version", "git_commit", "host", "started_at", "finished_at"):
        record[key] = row[key]
    return record


def _cell(value: Any) -> Any:
    return str(value) if isinstance(value, (list, dict)) else value


def learning_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, checkpoint) of a results frame whose runs recorded checkpoints
    (``Network(training="online", checkpoints=...)`` or ``NeuralTangent(solver="sgd",
    checkpoints=...)``: columns ``population_risk_at_<t>``).

    Columns: the frame's own but the checkpoint columns and the final state's risks
    (``STANDARD_METRICS``), then ``step`` (t), ``samples`` (t × ``batch_size``, when the frame
    has that column), ``population_risk`` (the exact risk after t steps) and
    ``risk_normalized`` (that risk over the task's null risk, read from the run's final
    population_risk / risk_normalized; left out when the frame lacks either). Runs without
    checkpoints are left out; sorted by run and step.
    """
    marks = {column: int(match.group(1)) for column in frame.columns
             if (match := _CHECKPOINT.fullmatch(str(column)))}
    if not marks:
        raise ValueError("the frame has no population_risk_at_<t> columns: train with "
                         "checkpoints=[...] (Network online, NeuralTangent sgd) to record a curve")
    frame_has_null = {"population_risk", "risk_normalized"} <= set(frame.columns)
    null = frame["population_risk"] / frame["risk_normalized"] if frame_has_null else np.nan
    keep = [c for c in frame.columns if c not in marks and c not in STANDARD_METRICS]
    long = frame[[*keep, *marks]].assign(_null=null).melt(
        id_vars=[*keep, "_null"], value_vars=list(marks), var_name="step",
        value_name="population_risk")
    long = long.dropna(subset=["population_risk"])
    long["step"] = long["step"].map(marks).astype(int)
    if "batch_size" in long.columns:
        long["samples"] = long["step"] * long["batch_size"]
    null = long.pop("_null")
    if frame_has_null:
        long["risk_normalized"] = long["population_risk"] / null
    return long.sort_values(["run_id", "step"], kind="stable").reset_index(drop=True)


def export_results(frame: pd.DataFrame, path: str | Path, fmt: str) -> Path:
    """Write a results frame as ``csv`` or ``parquet`` (needs the optional pyarrow).

    The file is written beside ``path`` under a temporary name and renamed, so a failure leaves
    nothing behind.

    Raises:
        SpecError: when ``path`` cannot be written (names the path and the system's reason).
    """
    path = Path(path)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt={fmt!r} is unknown; allowed: csv, parquet")
    if fmt == "parquet" and pyarrow is None:
        raise ImportError("Parquet export needs pyarrow; install it with "
                          "pip install 'lazylab[parquet]'")
    if path.is_dir():
        raise SpecError(path, "<output>", "is a directory; give a file path")
    partial = path.with_name(f".{path.name}.partial")
    try:
        if fmt == "csv":
            frame.to_csv(partial, index=False)
        else:
            frame.to_parquet(partial, index=False)
        os.replace(partial, path)
    except OSError as error:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        raise SpecError(path, "<output>", f"cannot write the file ({error.strerror or error}); "
                        "give a writable path") from None
    return path
