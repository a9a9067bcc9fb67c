"""kill -9 during a sweep of 200 runs, then rerun: each run once, sound file, same results."""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lazylab
from experiments.minilab import CATALOG
from lazylab.experiments import InProcessExecutor, Store, execute_run, load_sweep, run_sweep

TESTS = Path(__file__).resolve().parents[1]

# 2 regimes × 10 settings × 10 seeds = 200 runs; 1500 GD steps make each run a few ms.
SPEC = """
[task]
name = "linear"
dim = 6
noise = 0.3

[[regime]]
name = "ridge_features"
width = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]

[[regime]]
name = "gradient_descent"
steps = 1500
learning_rate = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]

[sweep]
n_train = 200
n_test = 200
seeds = 10
"""


def _worker(spec: Path, store: Path, executor: str) -> subprocess.Popen:
    source = Path(lazylab.__file__).resolve().parents[1]  # the lazylab under test
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TESTS), str(source), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "experiments.sweep_worker", str(spec),
                             str(store), executor], cwd=TESTS, env=environment,
                            start_new_session=True, stderr=subprocess.PIPE)


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _snapshot(store: Path) -> dict[str, tuple]:
    connection = sqlite3.connect(store)
    rows = connection.execute("SELECT run_id, status, metrics_json, started_at FROM runs")
    snapshot = {r[0]: r[1:] for r in rows}
    connection.close()
    return snapshot


def _deterministic(rows: dict[str, dict]) -> dict[str, tuple]:
    return {run_id: (row["status"], {k: v for k, v in row["metrics"].items() if k != "wall_time"},
                     row["seeds"], row["spec"]) for run_id, row in rows.items()}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inprocess"])
def test_kill_minus_nine_then_resume(executor, tmp_path):
    spec = tmp_path / "kill.toml"
    spec.write_text(SPEC)
    store = tmp_path / "kill.sqlite"
    process = _worker(spec, store, executor)
    deadline = time.monotonic() + 120
    while _count(store) < 40 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # orphaned pool workers, if any
    except ProcessLookupError:
        pass
    assert process.returncode == -signal.SIGKILL
    before = _snapshot(store)
    assert 40 <= len(before) < 200, "the sweep must be interrupted part way"

    resumed = _worker(spec, store, executor)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    after = _snapshot(store)
    assert len(after) == 200
    assert all(after[run_id] == row for run_id, row in before.items())  # not executed again

    connection = sqlite3.connect(store)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert connection.execute("SELECT count(DISTINCT run_id), count(*) FROM runs"
                              ).fetchone() == (200, 200)
    connection.close()

    sweep = load_sweep(spec, CATALOG)
    assert {run.run_id for run in sweep.runs} == set(after)
    with Store(tmp_path / "uninterrupted.sqlite") as reference:
        run_sweep(sweep, reference, executor=InProcessExecutor(),
                  run_function=functools.partial(execute_run, catalog=CATALOG))
        expected = {row["run_id"]: row for row in reference.rows()}
    with Store(store, readonly=True) as interrupted:
        got = {row["run_id"]: row for row in interrupted.rows()}
    assert _deterministic(got) == _deterministic(expected)
