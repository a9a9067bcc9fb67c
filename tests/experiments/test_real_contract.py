"""The experiment machinery on lazylab's own registries."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lazylab.cli import main
from lazylab.experiments import (DONE, InProcessExecutor, Store, default_catalog, load_sweep,
                                 results_frame, run_sweep)

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))

TINY = """
[task]
name = "quadratic"
dim = 5
matrix = "identity"

[[regime]]
name = "random_features"
activation = "relu"

[sweep]
width = [4, 8]
n_train = [30, "population"]
n_test = 50
seeds = 2
"""


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_validate_against_the_registries(example, capsys, tmp_path, monkeypatch):
    if example.stem == "file-task":  # its data: a tiny file written here, not committed
        (tmp_path / "data").mkdir()
        x = np.random.default_rng(0).standard_normal((120, 3))
        np.savez(tmp_path / "data" / "features.npz", x=x, y=x.sum(axis=1))
        monkeypatch.chdir(tmp_path)
    sweep = load_sweep(example)
    assert 0 < len(sweep.runs) <= 100 and sweep.spec.plot is not None
    assert main(["status", str(example), "--store", "/nonexistent/never-created.sqlite"]) == 0
    assert f"{len(sweep.runs)} runs" in capsys.readouterr().out


def test_examples_exist():
    assert len(EXAMPLES) >= 3


def test_tiny_sweep_end_to_end_is_reproducible(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    sweep = load_sweep(spec)
    assert "population_risk" in sweep.metrics
    frames = []
    for name in ("a", "b"):
        with Store(tmp_path / f"{name}.sqlite") as store:
            status = run_sweep(sweep, store, executor=InProcessExecutor())
            assert status.done == len(sweep.runs) == 8, store.rows()[0]["error"]
            frames.append(results_frame(sweep, store))
    first, second = frames
    for metric in ("population_risk", "test_risk", "risk_normalized"):
        assert first[metric].tolist() == second[metric].tolist()
        assert all(math.isfinite(v) and v >= 0 for v in first[metric])
    population = first[first.n_train == math.inf]
    assert population["train_risk"].isna().all() and (first.status == DONE).all()
    assert set(default_catalog().tasks) >= {"quadratic"}


NETWORK = """
[task]
name = "quadratic"
dim = 4
matrix = "identity"

[[regime]]
name = "network"
width = 6
steps = 30
learning_rate = [0.01, 1e6]

[sweep]
n_train = "population"
n_test = 50
seeds = 1
"""


def test_network_divergence_is_recorded_as_diverged(tmp_path):
    spec = tmp_path / "network.toml"
    spec.write_text(NETWORK)
    sweep = load_sweep(spec)
    with Store(tmp_path / "n.sqlite") as store:
        status = run_sweep(sweep, store, executor=InProcessExecutor())
        rows = {row["spec"]["regime"]["learning_rate"]: row for row in store.rows()}
    assert (status.done, status.diverged) == (1, 1)
    assert rows[0.01]["status"] == DONE and math.isfinite(rows[0.01]["metrics"]["population_risk"])
    diverged = rows[1e6]
    assert diverged["status"] == "diverged" and "DivergenceError" in diverged["error"]
    assert set(diverged["metrics"]) <= {"steps_to_divergence"}


def test_predictors_without_an_exact_risk_are_measured_on_the_test_set():
    # Kernel machines have no exact population risk: the run still succeeds, with test risk.
    from lazylab.experiments import execute_run
    from lazylab.experiments.runs import make_run
    outcome = execute_run(make_run("single_neuron", {"dim": 3}, "kernel", {"kind": "rf"},
                                   50, 100, 0))
    assert outcome.status == DONE, outcome.error
    assert "population_risk" not in outcome.metrics
    assert math.isfinite(outcome.metrics["test_risk"]) and outcome.metrics["test_risk"] > 0
