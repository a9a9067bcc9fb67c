"""The study infrastructure: spec files, reproduce (resume, rerun from the store), registry, CLI."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
import torch

from lazylab.cli import main
from lazylab.experiments import Store, execute_run, load_sweep
from lazylab.studies import STUDIES, Study, register, reproduce
from lazylab.studies._aggregate import SETTLED_RISK, seed_statistics, unconverged_text
from lazylab.studies.base import run_rows, spec_to_toml, sweep_task, with_device

SPEC = {"name": "toy-width", "description": "RF on a small quadratic target",
        "task": {"name": "quadratic", "dim": 6, "matrix": "exp-diagonal"},
        "regime": [{"name": "random_features", "activation": "hermite2"}],
        "sweep": {"width": [2, 8], "n_train": "population", "n_test": 10, "seeds": 2}}


def _figure(frames, scale, output_dir):
    path = output_dir / "toy.png"
    path.write_bytes(b"png")          # the infrastructure only needs the returned paths
    return [path]


def _summary(frames, scale):
    frame = frames["toy-width"]
    return f"mean normalized risk {frame['risk_normalized'].mean():.4f}"


TOY = Study(name="toy", description="a toy study", sweeps=lambda scale: [SPEC],
            figure=_figure, summary=_summary, scales={"smoke": "d = 6, N in {2, 8}, 2 seeds"},
            run_cost=lambda run: dict(run.regime_params)["width"])


def test_spec_to_toml_round_trips_through_the_experiments_parser(tmp_path):
    text = spec_to_toml(SPEC)
    assert tomllib.loads(text)["sweep"]["width"] == [2, 8]
    path = tmp_path / "toy-width.toml"
    path.write_text(text)
    sweep = load_sweep(path)
    assert len(sweep.runs) == 2 * 2 and sweep.name == "toy-width"
    with pytest.raises(TypeError, match="no TOML form"):
        spec_to_toml({**SPEC, "sweep": {"width": {1: 2}}})


def test_spec_to_toml_writes_a_selection_as_an_inline_table():
    regime = {"name": "toy", "ridge": {"grid": [1e-3, 1.0], "select": "validation"}}
    text = spec_to_toml({**SPEC, "regime": [regime]})
    assert tomllib.loads(text)["regime"][0]["ridge"] == {"grid": [1e-3, 1.0],
                                                          "select": "validation"}


def test_reproduce_writes_everything_and_a_rerun_reads_the_store(tmp_path):
    first = reproduce(TOY, scale="smoke", executor="inprocess", output_dir=tmp_path, quiet=True)
    assert first["runs"] == {"total": 4, "executed": 4, "done": 4, "diverged": 0, "failed": 0}
    assert first["store"] == tmp_path / "store.sqlite" and first["store"].exists()
    assert (tmp_path / "specs" / "toy-width.toml").exists()
    table = pd.read_csv(first["csv"])
    assert len(table) == 4 and set(table["sweep"]) == {"toy-width"}
    assert np.all(np.isfinite(table["risk_normalized"])) and (table["risk_normalized"] < 1).all()
    # the wider RF fits better on every seed (a real computed value, not a placeholder)
    wide = table.pivot(index="seed", columns="width", values="risk_normalized")
    assert (wide[8] < wide[2]).all()
    summary = first["summary"].read_text()
    assert summary.startswith("# toy") and "4 of 4 runs finished" in summary
    assert f"{table['risk_normalized'].mean():.4f}" in summary
    again = reproduce(TOY, scale="smoke", executor="pool", output_dir=tmp_path, quiet=True)
    assert again["runs"]["executed"] == 0 and again["runs"]["done"] == 4
    assert pd.read_csv(again["csv"]).equals(table)


def test_an_interrupted_study_resumes(tmp_path):
    sweep_path = tmp_path / "specs"
    sweep_path.mkdir()
    (sweep_path / "toy-width.toml").write_text(spec_to_toml(SPEC))
    sweep = load_sweep(sweep_path / "toy-width.toml")
    with Store(tmp_path / "store.sqlite") as store:       # one run finished before the "crash"
        store.write(sweep.runs[0], execute_run(sweep.runs[0]))
    result = reproduce(TOY, scale="smoke", executor="inprocess", output_dir=tmp_path, quiet=True)
    assert result["runs"]["executed"] == 3 and result["runs"]["done"] == 4


def test_sweep_task_is_the_instance_the_runs_used(tmp_path):
    result = reproduce(TOY, scale="smoke", executor="inprocess", output_dir=tmp_path, quiet=True)
    table = pd.read_csv(result["csv"])
    task = sweep_task(SPEC, seed=1)
    row = table[(table["seed"] == 1) & (table["width"] == 8)].iloc[0]
    assert row["population_risk"] / row["risk_normalized"] == pytest.approx(task.null_risk,
                                                                            rel=1e-12)
    assert not np.allclose(sweep_task(SPEC, seed=0).matrix, task.matrix)


def test_unknown_study_and_scale_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="study 'nope' is unknown; allowed"):
        reproduce("nope", output_dir=tmp_path)
    with pytest.raises(ValueError, match="scale 'paper' is unknown for study 'toy'; allowed: smoke"):
        reproduce(TOY, scale="paper", output_dir=tmp_path)


def test_register_refuses_a_duplicate_name():
    register(TOY)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register(Study(name="toy", description="other", sweeps=TOY.sweeps,
                           figure=_figure, summary=_summary))
    finally:
        STUDIES.pop("toy")


def _reproduce(*argv):
    return main(["reproduce", *map(str, argv)])


def test_cli_unknown_study_is_one_line_and_exit_2(capsys):
    assert _reproduce("no-such-study") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study 'no-such-study' is unknown; allowed:" in err


def test_cli_bad_executor_options_are_one_line_and_exit_2(capsys):
    register(TOY)
    try:
        assert _reproduce("toy", "--executor", "pool", "--dask-workers", "2") == 2
        assert "cannot use --scheduler/--dask-workers" in capsys.readouterr().err
        assert _reproduce("toy", "--workers", "0") == 2
        assert "--workers: 0 must be a positive integer" in capsys.readouterr().err
    finally:
        STUDIES.pop("toy")


def test_cli_runs_a_study_into_output_dir(tmp_path, capsys):
    register(TOY)
    try:
        code = _reproduce("toy", "--scale", "smoke", "--executor", "inprocess",
                          "--output", tmp_path, "--quiet")
    finally:
        STUDIES.pop("toy")
    out = capsys.readouterr().out
    assert code == 0 and "toy (smoke): 4/4 runs done, 4 executed now" in out
    assert (tmp_path / "toy" / "summary.md").exists() and (tmp_path / "toy" / "toy.csv").exists()


def test_shards_of_a_study_merged_reproduce_the_unsharded_outputs(tmp_path, capsys):
    """Two shards (each its own store, no figure), merged: the study then writes its outputs
    without executing a run, and they equal those of one job."""
    whole = reproduce(TOY, scale="smoke", executor="inprocess", output_dir=tmp_path / "one",
                      quiet=True)
    parts = [reproduce(TOY, scale="smoke", executor="inprocess", quiet=True, shard=f"{k}/2",
                       output_dir=tmp_path / f"part{k}") for k in (1, 2)]
    # by cost, one N = 8 run and one N = 2 run each
    assert [part["runs"]["executed"] for part in parts] == [2, 2]
    for part in parts:
        assert part["figures"] == [] and part["csv"] is None and part["summary"] is None
        assert part["shard"] in ("1/2", "2/2") and not (part["output_dir"] / "summary.md").exists()
    register(TOY)
    try:
        assert main(["merge", str(tmp_path / "all" / "store.sqlite"),
                     *(str(part["store"]) for part in parts)]) == 0
        assert _reproduce("toy", "--scale", "smoke", "--executor", "inprocess", "--output",
                          tmp_path, "--quiet", "--shard", "3/2") == 2
        assert "--shard: shard 3/2: need 1 ≤ K ≤ N" in capsys.readouterr().err
    finally:
        STUDIES.pop("toy")
    merged = reproduce(TOY, scale="smoke", executor="inprocess", output_dir=tmp_path / "all",
                       quiet=True)
    assert merged["runs"]["executed"] == 0 and merged["runs"]["done"] == 4
    assert pd.read_csv(merged["csv"]).drop(columns="wall_time").equals(
        pd.read_csv(whole["csv"]).drop(columns="wall_time"))
    assert merged["summary"].read_text().split("\n")[-2] == whole["summary"].read_text().split(
        "\n")[-2]


def test_run_rows_drops_provenance():
    frame = pd.DataFrame({"width": [1], "host": ["h"], "risk_normalized": [0.5]})
    assert list(run_rows({"a": frame}).columns) == ["width", "risk_normalized", "sweep"]


def test_lazylab_command_routes_reproduce(capsys):
    assert main(["reproduce", "no-such-study"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed:" in err and "ghorbani-fig1" in err


def test_seed_statistics_is_mean_standard_error_and_count_over_seeds():
    frame = pd.DataFrame({"width": [2, 2, 2, 8], "seed": [0, 1, 2, 0],
                          "risk_normalized": [0.1, 0.4, 0.7, 0.25]})
    table = seed_statistics(frame, ["width"])
    assert table["count"].tolist() == [3, 1]
    assert table["mean"].tolist() == pytest.approx([0.4, 0.25])
    # std(ddof=1) of 0.1, 0.4, 0.7 is 0.3; over √3 seeds; one seed has s.e. 0
    assert table["sem"].tolist() == pytest.approx([0.3 / np.sqrt(3), 0.0])
    assert list(seed_statistics(frame.iloc[0:0], ["width"]).columns) == ["width", "mean",
                                                                         "count", "sem"]


def test_unconverged_runs_are_told_apart_by_where_they_stopped():
    """Settled near 0 (normalized risk ≤ SETTLED_RISK) apart from the others, whose range and
    largest last criterion are given; none, and no record, said so."""
    runs = pd.DataFrame({"converged": [1.0, 0.0, 0.0, 0.0, 0.0],
                         "risk_normalized": [0.2, SETTLED_RISK / 2, SETTLED_RISK, 0.05, 0.4],
                         "criterion": [1e-5, 2e-5, 3e-5, 7e-4, 4e-5]})
    text = unconverged_text(runs, 1e-5)
    assert text.startswith("Unconverged network runs: 4 of 5 (goal 0): 2 stopped at a "
                           "normalized risk ≤ 0.001")
    assert "2 above it (normalized risk 0.05–0.4, last criterion up to 0.0007 against tol 1e-05)" \
        in text
    assert unconverged_text(runs.iloc[:1], 1e-5) == "Unconverged network runs: 0 of 1 (goal 0)."
    assert "above it" not in unconverged_text(runs.iloc[:3], 1e-5)
    assert "1 above it (normalized risk 0.05, last" in unconverged_text(runs.iloc[:4], 1e-5)
    assert unconverged_text(runs.drop(columns="converged"), 1e-5) == "Convergence not recorded."


def test_with_device_places_the_device_where_a_regime_can_use_it():
    """Network trained online, Kernel, NT and RF take the device; population training and
    OneStep do not; None and "cpu" leave the spec as it is (its run ids unchanged)."""
    spec = {"name": "s", "task": {"name": "quadratic", "dim": 4}, "regime": [
        {"name": "network", "width": 2, "training": "online"}, {"name": "kernel", "kind": "ntk"},
        {"name": "neural_tangent", "solver": "sgd"}, {"name": "neural_tangent", "solver": "cg"},
        {"name": "network", "width": 2}, {"name": "random_features", "width": 3},
        {"name": "one_step", "width": 8}]}
    placed = with_device(spec, "cuda:1")
    assert ["device" in regime for regime in placed["regime"]] == [True, True, True, True,
                                                                   False, True, False]
    assert {regime.get("device") for regime in placed[
        "regime"]} == {"cuda:1", None} and "device" not in spec["regime"][0]
    assert with_device(spec, None) == with_device(spec, "cpu") == spec
    single = with_device({**spec, "regime": {"name": "kernel"}}, "cuda")
    assert single["regime"] == {"name": "kernel", "device": "cuda"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_reproduce_on_cuda_without_cuda_is_a_clear_error_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        reproduce("damian-onestep", scale="smoke", output_dir=tmp_path, device="cuda")
    assert not any(tmp_path.iterdir())
