"""Malformed inputs give one clear line (exit 2) or a documented exception, and write nothing.

CLI cases call ``lazylab.cli.main`` with temporary paths and capture stderr: each must print
exactly one line ``lazylab: error: …`` (no traceback), exit with status 2, leave the directory
as it was and any store it was given intact. Python-API cases assert the exception type and
that the message names the parameter.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab.cli import main
from lazylab.experiments import (DaskExecutor, PoolExecutor, SpecError, Store, execute_run,
                                 export_results, load_sweep, make_executor, run_sweep)
from lazylab.experiments.resources import MEMORY_VARIABLE, available_memory
from lazylab.experiments.sweep import default_store_path, failure_reasons
from lazylab.tasks import TASKS, Dataset
from lazylab.theory import curves

QUADRATIC = """
[task]
name = "quadratic"
dim = 8

[[regime]]
name = "random_features"
activation = "relu"

[sweep]
width = [4, 8]
n_train = "population"
"""


def _files(directory: Path) -> dict[str, bytes]:
    """Every file's bytes, except SQLite's shared-memory index and log (``-shm``, ``-wal``),
    which any reader of a WAL database may create and which hold no data of their own."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def _one_line_error(capsys, argv, *, catalog=CATALOG, directory: Path, expect: str = ""):
    """Run the CLI; assert exit 2, one error line containing ``expect``, nothing written."""
    before = _files(directory)
    code = main([str(a) for a in argv], catalog=catalog)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("lazylab: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert expect in lines[0], lines[0]
    assert _files(directory) == before, "nothing may be written"
    return lines[0]


@pytest.fixture
def spec_file(tmp_path):
    def write(text: str = BASE_SPEC, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


SPEC_CASES = [
    ("unknown-metric", 'n_test = 100', 'n_test = 100\nmetrics = ["foo"]', "unknown metric 'foo'"),
    ("too-many-runs", "seeds = [0, 1]", "seeds = 200000", "at most 100,000"),
    ("unknown-task", 'name = "linear"', 'name = "lineer"', "unknown task 'lineer'"),
    ("unknown-regime", 'name = "ridge_features"', 'name = "ridge"', "unknown regime 'ridge'"),
    ("negative-width", "width = [2, 4, 8]", "width = [2, -4]", "sweep.width"),
    ("zero-n-train", 'n_train = [30, "population"]', "n_train = 0", "positive integer"),
    ("n-train-word", 'n_train = [30, "population"]', 'n_train = "infinity"', "sweep.n_train"),
    ("negative-seed", "seeds = [0, 1]", "seeds = [-1]", "non-negative"),
    ("seed-count-zero", "seeds = [0, 1]", "seeds = 0", "must be positive"),
    ("empty-seeds", "seeds = [0, 1]", "seeds = []", "empty grid"),
    ("duplicate-seeds", "seeds = [0, 1]", "seeds = [1, 1]", "distinct"),
    ("zero-n-test", "n_test = 100", "n_test = 0", "sweep.n_test"),
    ("unknown-sweep-key", "n_test = 100", "n_test = 100\nwidht = 3", "sweep.widht"),
    ("unknown-section", "[plot]", "[plots]\n[plot]", "plots"),
    ("bad-toml", "[plot]", "[plot", "not valid TOML"),
    ("missing-task", '[task]\nname = "linear"\ndim = 4\nnoise = 0.2', "", "task"),
    ("plot-y-unknown", 'y = "risk_normalized"', 'y = "accuracy"', "plot.y"),
    ("activation-typo", 'activation = "relu"', 'activation = "rleu"', "activation"),
    ("empty-width-grid", "width = [2, 4, 8]", "width = []", "empty grid"),
    ("empty-metrics", "n_test = 100", "n_test = 100\nmetrics = []", "sweep.metrics"),
    ("population-metric-without-moments", "noise = 0.2",
     'noise = 0.2\nmoments = false', "population"),
    ("unknown-regime-field", 'ridge = 1e-3', 'ridge = 1e-3\nmomentum = 0.9', "momentum"),
    ("wrong-type", "dim = 4", 'dim = "four"', "task.dim"),
    ("metric-with-space", "n_test = 100", 'n_test = 100\nmetrics = ["test risk"]', "metric"),
]


@pytest.mark.parametrize("command", ["status", "run"])
@pytest.mark.parametrize("case, old, new, expect", SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_malformed_spec_is_one_line(case, old, new, expect, command, spec_file, tmp_path,
                                    capsys):
    assert old in BASE_SPEC
    spec = spec_file(BASE_SPEC.replace(old, new, 1))
    _one_line_error(capsys, [command, spec, "--quiet"] if command == "run" else [command, spec],
                    directory=tmp_path, expect=expect)


@pytest.mark.parametrize("argv, expect", [
    (["status", "{dir}/missing.toml"], "cannot read the spec file"),
    (["show", "{dir}"], "cannot read the spec file"),
])
def test_unreadable_spec(argv, expect, tmp_path, capsys):
    _one_line_error(capsys, [a.format(dir=tmp_path) for a in argv], directory=tmp_path,
                    expect=expect)


@pytest.fixture
def finished(spec_file, tmp_path):
    """A spec with a finished store; returns (spec, store, its bytes)."""
    spec = spec_file()
    sweep = load_sweep(spec, CATALOG)
    store = default_store_path(spec)
    with Store(store) as opened:
        run_sweep(sweep, opened, run_function=functools.partial(execute_run, catalog=CATALOG))
    return spec, store


def _intact(store: Path, rows: int = 20) -> None:
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == rows
    finally:
        connection.close()


@pytest.mark.parametrize("store_arg, expect", [
    ("/proc/lazylab-test.sqlite", "cannot write the store"),
    ("{dir}", "is a directory"),
    ("{dir}/nowhere/store.sqlite", "directory does not exist"),
    ("{dir}/notes.txt", "not a lazylab database"),
])
def test_run_with_a_bad_store_is_one_line(store_arg, expect, spec_file, tmp_path, capsys):
    spec = spec_file()
    (tmp_path / "notes.txt").write_text("my notes")
    _one_line_error(capsys, ["run", spec, "--quiet", "--executor", "inprocess", "--store",
                             store_arg.format(dir=tmp_path)], directory=tmp_path, expect=expect)


@pytest.mark.parametrize("argv, expect", [
    (["export", "{spec}", "--store", "{dir}/typo.sqlite", "--csv"], "typo.sqlite does not exist"),
    (["export", "{spec}", "--csv", "/proc/lazylab-test.csv"], "cannot write the file"),
    (["export", "{spec}", "--csv", "{dir}"], "is a directory"),
    (["export", "{spec}", "--csv", "{dir}/nowhere/out.csv"], "does not exist"),
    (["status", "{spec}", "--store", "{dir}/spec.toml"], "not a lazylab database"),
    (["run", "{spec}", "--workers", "0"], "--workers"),
    (["plot", "{spec}", "--output", "{dir}/nowhere/figure"], "--output: directory"),
    (["plot", "{spec}", "--output", "/proc/lazylab-test-figure"], "--output: cannot write"),
    (["plot", "{spec}", "--output", "{dir}/folder", "--format", "png"], "is a directory"),
    (["run", "{spec}", "--max-memory", "lots"], "--max-memory"),
    (["status", "{spec}", "--max-memory", "-1"], "must be positive"),
    (["run", "{spec}", "--executor", "inprocess", "--scheduler", "tcp://127.0.0.1:9"],
     "--executor"),
])
def test_bad_options_on_a_finished_store(argv, expect, finished, tmp_path, capsys):
    spec, store = finished
    (tmp_path / "folder.png").mkdir()
    _one_line_error(capsys, [a.format(spec=spec, dir=tmp_path) for a in argv],
                    directory=tmp_path, expect=expect)
    _intact(store)


def test_export_without_any_store_fails_instead_of_writing_a_header(spec_file, tmp_path,
                                                                     capsys):
    _one_line_error(capsys, ["export", spec_file(), "--csv"], directory=tmp_path,
                    expect="does not exist")


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast_and_leaves_no_store(spec_file, tmp_path, capsys):
    pytest.importorskip("distributed")
    spec = spec_file()
    _one_line_error(capsys, ["run", spec, "--quiet", "--scheduler", "tcp://127.0.0.1:9"],
                    directory=tmp_path, expect="cannot reach the Dask scheduler")


@pytest.mark.parametrize("text, limit, expect", [
    (QUADRATIC.replace("dim = 8", "dim = 1000000"), None, "task.dim"),
    (QUADRATIC.replace("width = [4, 8]", "width = [4, 40000]"), "1", "sweep.width"),
    (QUADRATIC.replace('n_train = "population"', "n_train = 1000000000"), "1", "sweep.n_train"),
    (QUADRATIC.replace('name = "random_features"', 'name = "kernel"').replace(
        "width = [4, 8]\n", "").replace('n_train = "population"', "n_train = 20000"), "1",
     "falkon"),
    (QUADRATIC.replace('name = "random_features"', 'name = "neural_tangent"').replace(
        'n_train = "population"', "n_train = 2000000\nsolver = \"direct\""), "1", "\"cg\""),
    (QUADRATIC, "lots", MEMORY_VARIABLE),
])
def test_sizes_are_checked_before_memory_is_spent(text, limit, expect, spec_file, tmp_path,
                                                  monkeypatch, capsys):
    if limit is None:
        monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MEMORY_VARIABLE, limit)
    line = _one_line_error(capsys, ["status", spec_file(text)], catalog=None,
                           directory=tmp_path, expect=expect)
    assert limit == "lots" or "GB" in line


@pytest.mark.parametrize("error", [ValueError("x must be finite, got nan"),
                                   TypeError("head must be a tensor")])
def test_an_api_error_during_a_command_is_one_line(error, finished, tmp_path, monkeypatch,
                                                   capsys):
    # a documented ValueError/TypeError of the Python API met by a command (here: drawing)
    spec, store = finished

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("lazylab.plots.plot_results", fail)
    line = _one_line_error(capsys, ["plot", spec], directory=tmp_path,
                           expect=f"plot: {type(error).__name__}: {error}")
    assert line.startswith(f"lazylab: error: {spec}: ")
    _intact(store)


def test_a_task_too_big_to_build_is_one_line_even_without_the_check(spec_file, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv(MEMORY_VARIABLE, "inf")  # the size check is off: the allocation fails
    spec = spec_file(QUADRATIC.replace("dim = 8", "dim = 1000000"))
    _one_line_error(capsys, ["status", spec], catalog=None, directory=tmp_path,
                    expect="task.dim: building the task failed")


@pytest.mark.parametrize("flag, environment, in_spec, passes", [
    (None, None, "inf", True),        # the spec's own limit
    (None, "1", "inf", False),        # the environment wins over the spec
    ("inf", "1", None, True),         # the command line wins over the environment
    ("1", None, "inf", False),        # ... and over the spec
])
def test_memory_limit_overrides_in_order(flag, environment, in_spec, passes, spec_file,
                                         tmp_path, monkeypatch, capsys):
    text = QUADRATIC.replace("width = [4, 8]", "width = [4, 40000]")
    if in_spec is not None:
        text = text.replace("[sweep]", f"[sweep]\nmax_memory_gb = {in_spec}")
    if environment is None:
        monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MEMORY_VARIABLE, environment)
    argv = ["status", spec_file(text)] + (["--max-memory", flag] if flag else [])
    if passes:
        assert main([str(a) for a in argv]) == 0
        assert "2 runs: 0 done" in capsys.readouterr().out
    else:
        _one_line_error(capsys, argv, catalog=None, directory=tmp_path, expect="sweep.width")


def test_spec_memory_limit_must_be_positive(spec_file, tmp_path, capsys):
    spec = spec_file(QUADRATIC.replace("[sweep]", "[sweep]\nmax_memory_gb = 0"))
    _one_line_error(capsys, ["status", spec], catalog=None, directory=tmp_path,
                    expect="sweep.max_memory_gb")


def test_memory_override_lets_a_big_spec_through(spec_file, tmp_path, monkeypatch, capsys):
    spec = spec_file(QUADRATIC.replace("width = [4, 8]", "width = [4, 40000]"))
    monkeypatch.setenv(MEMORY_VARIABLE, "inf")
    assert main(["status", str(spec)]) == 0
    assert "2 runs: 0 done" in capsys.readouterr().out


def test_failed_runs_say_why_in_run_status_and_show(spec_file, tmp_path, capsys):
    marker = tmp_path / "marker"
    spec = spec_file(f'[task]\nname = "linear"\n\n[[regime]]\nname = "flaky"\n'
                     f'marker = "{marker}"\n\n[sweep]\nn_train = 10\nn_test = 10\n')
    assert main(["run", str(spec), "--executor", "inprocess", "--quiet"], catalog=CATALOG) == 1
    reason = "  1 failed: RuntimeError: first attempt fails (marker)"
    assert reason in capsys.readouterr().out.splitlines()
    for command in ("status", "show"):
        assert main([command, str(spec)], catalog=CATALOG) == 0
        assert reason in capsys.readouterr().out.splitlines()
    with Store(default_store_path(spec), readonly=True) as store:
        assert failure_reasons(load_sweep(spec, CATALOG), store) == [
            ("RuntimeError: first attempt fails (marker)", 1)]


def test_a_study_spec_finds_its_study_store(finished, tmp_path, capsys):
    spec, store = finished
    study = tmp_path / "results" / "study"
    (study / "specs").mkdir(parents=True)
    store.rename(study / "store.sqlite")
    moved = study / "specs" / spec.name
    spec.rename(moved)
    assert main(["status", str(moved)], catalog=CATALOG) == 0
    out = capsys.readouterr().out
    assert "20 runs: " in out and "20 pending" not in out and str(study / "store.sqlite") in out


# ----------------------------------------------------------------------------- Python API

@pytest.mark.parametrize("x, y, error, match", [
    (np.array([[np.nan, 1.0]]), np.zeros(1), ValueError, "x has 1 NaN"),
    (np.ones((2, 2)), np.array([1.0, np.inf]), ValueError, "y has 1 NaN or infinite"),
    (np.ones((3, 2)), np.ones(2), ValueError, r"y must have shape \(3,\)"),
    (np.ones(3), np.ones(3), ValueError, r"x must have shape \(n, d\)"),
    (np.array([[object()]]), np.ones(1), TypeError, "x must hold numbers"),
    ("text", np.ones(1), TypeError, "x must be a numeric array"),
])
def test_dataset_validates_its_arrays(x, y, error, match):
    with pytest.raises(error, match=match):
        Dataset(x, y)


@pytest.mark.parametrize("call, error, match", [
    (lambda: TASKS["quadratic"](rng=np.random.default_rng(0), matrix=np.triu(np.ones((3, 3)))),
     ValueError, "symmetric"),
    (lambda: TASKS["quadratic"](rng=np.random.default_rng(0), matrix=np.ones((2, 3))),
     ValueError, "square"),
    (lambda: TASKS["quadratic"](rng=np.random.default_rng(0), matrix=np.full((2, 2), np.nan)),
     ValueError, "finite"),
    (lambda: TASKS["file"](rng=np.random.default_rng(0), path="/nonexistent/data.npz"),
     ValueError, "does not exist"),
    (lambda: Store("/proc/lazylab-test.sqlite"), SpecError, "cannot write the store"),
    (lambda: make_executor("gpu"), ValueError, "executor='gpu' is unknown"),
    (lambda: PoolExecutor(workers=0), ValueError, "workers=0"),
    (lambda: DaskExecutor(scheduler="tcp://x:1", workers=2), ValueError, "not both"),
    (lambda: curves.random_features_quadratic([10], task=TASKS["single_neuron"](
        rng=np.random.default_rng(0), dim=4)), TypeError, "must be a quadratic task"),
    (lambda: curves.network_quadratic([10], task=TASKS["quadratic"](
        rng=np.random.default_rng(0), dim=4, centered=False)), ValueError, "centered target"),
    (lambda: curves.neural_tangent_quadratic([0, 10], task=TASKS["quadratic"](
        rng=np.random.default_rng(0), dim=4)), ValueError, "width must hold positive"),
    (lambda: make_executor("pool", workers=-1), ValueError, "workers=-1"),
])
def test_python_entry_points_raise_documented_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_export_results_to_an_unwritable_path_writes_nothing(tmp_path):
    import pandas as pd
    with pytest.raises(SpecError, match="cannot write the file"):
        export_results(pd.DataFrame({"a": [1]}), "/proc/lazylab-test.csv", "csv")
    with pytest.raises(SpecError, match="is a directory"):
        export_results(pd.DataFrame({"a": [1]}), tmp_path, "csv")
    assert not list(tmp_path.iterdir())


def test_available_memory_without_the_field_is_unknown(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 1000 kB\n")
    assert available_memory(tmp_path / "meminfo") is None
    (tmp_path / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    assert available_memory(tmp_path / "meminfo") == 500 * 1024
