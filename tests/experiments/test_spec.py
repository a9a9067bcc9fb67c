"""Malformed specs, stores and options: one line naming file and field, exit 2, nothing written."""

from __future__ import annotations

import sqlite3

import pytest

from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab.cli import main
from lazylab.experiments import SpecError, load_sweep
from lazylab.experiments.spec import SpecFile, parse_spec

# (case id, text replaced in BASE_SPEC, replacement, field the message must name)
EDITS = [
    ("unknown-top-level", 'noise = 0.2\n', 'noise = 0.2\n[extra]\nx = 1\n', "extra"),
    ("unknown-task-field", "dim = 4", "dimension = 4", "task.dimension"),
    ("unknown-regime-field", 'ridge = 1e-3', "ridge = 1e-3\ndepth = 2", "regime[0].depth"),
    ("unknown-sweep-grid", "n_test = 100", "n_test = 100\ndepth = [1, 2]", "sweep.depth"),
    ("unknown-plot-field", "log_x = true", "log_x = true\ncolour = 'red'", "plot.colour"),
    ("task-wrong-type", "dim = 4", 'dim = "four"', "task.dim"),
    ("regime-wrong-type", "ridge = 1e-3", 'ridge = "small"', "regime[0].ridge"),
    ("float-for-int", "dim = 4", "dim = 4.5", "task.dim"),
    ("bool-for-int", "dim = 4", "dim = true", "task.dim"),
    ("negative-width", "width = [2, 4, 8]", "width = [2, -4]", "sweep.width"),
    ("negative-dim", "dim = 4", "dim = -3", "task.dim"),
    ("negative-noise", "noise = 0.2", "noise = -0.2", "task.noise"),
    ("empty-grid", "width = [2, 4, 8]", "width = []", "sweep.width"),
    ("empty-task-grid", "noise = 0.2", "noise = []", "task.noise"),
    ("empty-seeds", "seeds = [0, 1]", "seeds = []", "sweep.seeds"),
    ("negative-seed", "seeds = [0, 1]", "seeds = [-1]", "sweep.seeds"),
    ("zero-seed-count", "seeds = [0, 1]", "seeds = 0", "sweep.seeds"),
    ("duplicate-seeds", "seeds = [0, 1]", "seeds = [1, 1]", "sweep.seeds"),
    ("unknown-task", 'name = "linear"', 'name = "quadratik"', "task.name"),
    ("unknown-regime", 'name = "ridge_features"', 'name = "rf"', "regime[0].name"),
    ("unknown-activation", 'activation = "relu"', 'activation = "relux"', "regime[0].activation"),
    ("population-without-moments", "noise = 0.2", "noise = 0.2\nmoments = false",
     "sweep.n_train"),
    ("population-risk-without-moments", ("noise = 0.2", 'n_train = [30, "population"]'),
     ("noise = 0.2\nmoments = false", 'n_train = 30\nmetrics = ["population_risk"]'),
     "sweep.metrics"),
    ("negative-n-train", 'n_train = [30, "population"]', "n_train = [-5]", "sweep.n_train"),
    ("n-train-bad-word", 'n_train = [30, "population"]', 'n_train = "infinite"', "sweep.n_train"),
    ("zero-n-test", "n_test = 100", "n_test = 0", "sweep.n_test"),
    ("zero-validation-size", "n_test = 100", "n_test = 100\nvalidation_size = 0",
     "sweep.validation_size"),
    ("population-selection-at-finite-n", "ridge = 1e-3",
     'ridge = { grid = [1e-3, 1e-1], select = "population" }', "regime[0].ridge"),
    ("selection-unknown-rule", "ridge = 1e-3", 'ridge = { grid = [1e-3], select = "test" }',
     "regime[0].ridge"),
    ("selection-of-a-task-field", "noise = 0.2", "noise = { grid = [0.2] }", "task.noise"),
    ("plot-y-not-metric", 'y = "risk_normalized"', 'y = "accuracy"', "plot.y"),
    ("plot-x-unknown", 'x = "width"', 'x = "depth"', "plot.x"),
    ("plot-series-unknown", "log_x = true", 'log_x = true\nseries = "colour"', "plot.series"),
    ("theory-missing-function", "log_x = true", 'log_x = true\ntheory = ["linear.nope"]',
     "plot.theory"),
    ("theory-missing-module", "log_x = true", 'log_x = true\ntheory = ["nomodule.f"]',
     "plot.theory"),
    ("theory-bad-reference", "log_x = true", 'log_x = true\ntheory = ["justname"]', "plot.theory"),
    ("theory-needs-unknown-argument", "log_x = true",
     'log_x = true\ntheory = ["linear.needs_matrix"]', "plot.theory"),
    ("plot-bad-format", "log_x = true", 'log_x = true\nformats = ["gif"]', "plot.formats[0]"),
    ("plot-log-not-bool", "log_x = true", 'log_x = "yes"', "plot.log_x"),
    ("empty-metrics", "n_test = 100", "n_test = 100\nmetrics = []", "sweep.metrics"),
    ("metric-not-a-name", "n_test = 100", 'n_test = 100\nmetrics = ["test risk"]', "sweep.metrics"),
    ("field-twice", 'ridge = 1e-3', "ridge = 1e-3\nwidth = 3", "sweep.width"),
    ("missing-task-name", 'name = "linear"\n', "", "task.name"),
    ("required-field-missing", 'name = "gradient_descent"\nlearning_rate = [0.1, 3.0]',
     'name = "flaky"', "regime[1].marker"),
    ("missing-task-section", '[task]\nname = "linear"\ndim = 4\nnoise = 0.2\n', "", "task"),
]


def _run_cli(spec, capsys, *extra):
    code = main(["run", str(spec), "--quiet", *extra], catalog=CATALOG)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


@pytest.mark.parametrize("case, old, new, field", EDITS, ids=[e[0] for e in EDITS])
def test_malformed_spec_gives_one_line_and_exit_2(case, old, new, field, write_spec, capsys):
    text = BASE_SPEC
    for before, after in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
        assert before in text, case
        text = text.replace(before, after, 1)
    spec = write_spec(text)
    code, lines, _ = _run_cli(spec, capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lazylab: error: {spec}: {field}: "), lines[0]
    assert not spec.with_suffix(".sqlite").exists()


@pytest.mark.parametrize("content, case", [
    (b"this is [not toml", "not-toml"), (b"\xff\xfe\x00binary", "not-utf8"),
    (b'regime = "rf"\n[task]\nname = "linear"\n', "regime-not-a-table"),
    (b'task = "linear"\n[[regime]]\nname = "flaky"\nmarker = "m"\n', "task-not-a-table"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_unusable_files(content, case, tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_bytes(content)
    code, lines, _ = _run_cli(spec, capsys)
    assert code == 2 and len(lines) == 1
    field = {"not-toml": "<file>", "not-utf8": "<file>", "regime-not-a-table": "regime",
             "task-not-a-table": "task"}[case]
    assert lines[0].startswith(f"lazylab: error: {spec}: {field}"), lines[0]
    assert not (tmp_path / "bad.sqlite").exists()


def test_missing_file(tmp_path, capsys):
    spec = tmp_path / "absent.toml"
    code, lines, _ = _run_cli(spec, capsys)
    assert code == 2 and lines == [f"lazylab: error: {spec}: <file>: cannot read the spec file "
                                   "(FileNotFoundError: No such file or directory); a UTF-8 "
                                   "TOML file is required"]


def _foreign_sqlite(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE people(name TEXT)")
    connection.commit()
    connection.close()


@pytest.mark.parametrize("kind", ["text", "foreign-sqlite", "directory"])
def test_store_that_is_not_a_lazylab_database(kind, write_spec, tmp_path, capsys):
    spec = write_spec()
    store = tmp_path / "results.db"
    if kind == "text":
        store.write_text("name,value\n")
    elif kind == "foreign-sqlite":
        _foreign_sqlite(store)
    else:
        store.mkdir()
    before = store.read_bytes() if store.is_file() else None
    code, lines, _ = _run_cli(spec, capsys, "--store", str(store))
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"lazylab: error: {store}: <store>: "), lines[0]
    assert "lazylab" in lines[0] or "directory" in lines[0]
    if before is not None:
        assert store.read_bytes() == before


@pytest.mark.parametrize("args, field", [
    (["--workers", "0"], "--workers"), (["--dask-workers", "0"], "--dask-workers"),
    (["--executor", "pool", "--scheduler", "tcp://127.0.0.1:1"], "--executor"),
])
def test_bad_options(args, field, write_spec, capsys):
    spec = write_spec()
    code, lines, _ = _run_cli(spec, capsys, *args)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"lazylab: error: <command line>: {field}: "), lines[0]
    assert not spec.with_suffix(".sqlite").exists()


def test_store_in_missing_directory(write_spec, tmp_path, capsys):
    spec = write_spec()
    code, lines, _ = _run_cli(spec, capsys, "--store", str(tmp_path / "no" / "r.sqlite"))
    assert code == 2 and "<store>" in lines[0] and len(lines) == 1


def test_error_messages_say_what_is_allowed(write_spec):
    spec = write_spec(BASE_SPEC.replace('name = "ridge_features"', 'name = "rf"'))
    with pytest.raises(SpecError) as error:
        load_sweep(spec, CATALOG)
    assert error.value.field == "regime[0].name"
    assert "allowed: doomed, flaky, gradient_descent, ridge_features" in error.value.message
    spec = write_spec(BASE_SPEC.replace('activation = "relu"', 'activation = "relux"'))
    with pytest.raises(SpecError, match="known: .*relu"):
        load_sweep(spec, CATALOG)


def test_valid_spec_expands_grids(write_spec):
    sweep = load_sweep(write_spec(), CATALOG)
    # ridge: 3 widths × 2 n_train × 2 seeds; gradient descent: 2 rates × 2 n_train × 2 seeds
    assert len(sweep.runs) == 12 + 8
    assert len({run.run_id for run in sweep.runs}) == 20
    assert {run.regime for run in sweep.runs} == {"ridge_features", "gradient_descent"}
    widths = sorted({dict(r.regime_params).get("width") for r in sweep.runs if r.regime ==
                     "ridge_features"})
    assert widths == [2, 4, 8]
    assert all("width" not in dict(r.regime_params) for r in sweep.runs
               if r.regime == "gradient_descent")
    assert sweep.metrics == ("population_risk", "test_risk", "train_risk", "risk_normalized",
                             "wall_time")
    assert isinstance(sweep.spec, SpecFile) and sweep.spec.name == "spec"


def test_seed_count_and_list_valued_parameter(tmp_path):
    raw = {"task": {"name": "linear"}, "regime": [{"name": "flaky", "marker": "m"}],
           "sweep": {"seeds": 3, "n_train": 10}}
    spec = parse_spec(raw, tmp_path / "x.toml")
    assert spec.sweep.seeds == (0, 1, 2) and spec.sweep.n_train == (10,)
    with pytest.raises(Exception):
        spec.sweep.seeds = (5,)  # frozen


def test_builders_taking_any_keyword_accept_task_fields_only(write_spec):
    from experiments import minilab
    from lazylab.experiments.catalog import Catalog

    def open_linear(*, rng, **params):
        return minilab.linear(rng=rng, **params)

    catalog = Catalog({"linear": open_linear}, minilab.CATALOG.regimes, minilab.empirical_risk,
                      minilab.population_risk)
    sweep = load_sweep(write_spec(BASE_SPEC.replace("[plot]", "[nothing]").split("[nothing]")[0]),
                       catalog)
    assert {dict(r.task_params)["noise"] for r in sweep.runs} == {0.2}
    assert all("width" not in dict(r.task_params) for r in sweep.runs)
    bad = write_spec(BASE_SPEC.replace("dim = 4", "dimension = 4"), "bad.toml")
    with pytest.raises(SpecError) as error:  # the builder's own check names the field
        load_sweep(bad, catalog)
    assert error.value.field == "task.dimension"
