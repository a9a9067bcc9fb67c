"""Sweeps: resuming, retrying failures, status counts, the results frame, export."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from experiments.minilab import CATALOG
from lazylab.experiments import (DONE, Store, execute_run, export_results, load_sweep,
                                 results_frame, run_sweep, sweep_status)

RUN = functools.partial(execute_run, catalog=CATALOG)


class _Counting:
    """Counts executed runs and optionally stops the sweep after ``limit`` runs."""

    def __init__(self, limit=None):
        self.limit, self.seen = limit, []

    def __call__(self, run):
        if self.limit is not None and len(self.seen) >= self.limit:
            raise KeyboardInterrupt
        self.seen.append(run.run_id)
        return RUN(run)


def _deterministic(frame):
    return frame.drop(columns=["wall_time", "started_at", "finished_at", "host"])


def test_resume_executes_each_run_once_and_matches_a_full_sweep(write_spec, tmp_path):
    sweep = load_sweep(write_spec(), CATALOG)
    first = _Counting(limit=7)
    with Store(tmp_path / "a.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(sweep, store, run_function=first)
        assert sweep_status(sweep, store).pending == len(sweep.runs) - 7
        second = _Counting()
        status = run_sweep(sweep, store, run_function=second)
        assert set(first.seen).isdisjoint(second.seen)
        assert len(first.seen) + len(second.seen) == len(sweep.runs)
        third = _Counting()
        run_sweep(sweep, store, run_function=third)
        assert third.seen == []
        resumed = results_frame(sweep, store)
    assert status.pending == 0 and status.total == 20
    assert status.done + status.diverged == 20 and status.diverged == 4  # learning rate 3 diverges
    with Store(tmp_path / "b.sqlite") as store:
        run_sweep(sweep, store, run_function=RUN)
        full = results_frame(sweep, store)
    pd.testing.assert_frame_equal(_deterministic(resumed), _deterministic(full))


def test_failed_runs_are_retried_only_when_asked(write_spec, tmp_path):
    spec = write_spec(f"""
        [task]
        name = "linear"
        [[regime]]
        name = "flaky"
        marker = ["{tmp_path / 'm1'}", "{tmp_path / 'm2'}"]
        [sweep]
        n_train = 20
        seeds = 1
    """)
    sweep = load_sweep(spec, CATALOG)
    with Store(tmp_path / "r.sqlite") as store:
        assert run_sweep(sweep, store, run_function=RUN).failed == 2
        assert run_sweep(sweep, store, run_function=RUN).failed == 2  # skipped, not retried
        status = run_sweep(sweep, store, run_function=RUN, retry_failed=True)
        assert (status.done, status.failed) == (2, 0)
        assert len(store.rows()) == 2


def test_results_frame_columns_and_values(write_spec, tmp_path):
    sweep = load_sweep(write_spec(), CATALOG)
    with Store(tmp_path / "r.sqlite") as store:
        run_sweep(sweep, store, run_function=RUN)
        frame = results_frame(sweep, store)
        done = results_frame(sweep, store, statuses=(DONE,))
    assert len(frame) == 20 and len(done) == 16
    assert {"run_id", "regime", "width", "learning_rate", "n_train", "seed", "status",
            "test_risk", "risk_normalized", "git_commit"} <= set(frame.columns)
    assert sorted(frame["n_train"].unique()) == [30, float("inf")]
    assert frame.loc[frame.status == "diverged", "test_risk"].isna().all()
    assert (done["risk_normalized"] > 0).all()


def test_empty_frame_has_the_expected_columns(write_spec, tmp_path):
    sweep = load_sweep(write_spec(), CATALOG)
    with Store(tmp_path / "absent.sqlite", readonly=True) as store:
        frame = results_frame(sweep, store)
    assert frame.empty and {"width", "risk_normalized"} <= set(frame.columns)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trip(fmt, write_spec, tmp_path):
    sweep = load_sweep(write_spec(), CATALOG)
    with Store(tmp_path / "r.sqlite") as store:
        run_sweep(sweep, store, run_function=RUN)
        frame = results_frame(sweep, store)
    path = export_results(frame, tmp_path / f"out.{fmt}", fmt)
    back = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert list(back.columns) == list(frame.columns)
    assert back["test_risk"].tolist() == pytest.approx(frame["test_risk"].tolist(), nan_ok=True,
                                                       rel=1e-15)
    with pytest.raises(ValueError, match="fmt='xlsx'"):
        export_results(frame, tmp_path / "x", "xlsx")


def test_task_builder_rebuilds_the_task_the_runs_saw(write_spec):
    import numpy as np

    from experiments import minilab
    from lazylab.experiments.runs import stream_generators
    from lazylab.experiments.sweep import make_task_builder

    sweep = load_sweep(write_spec(), CATALOG)
    build = make_task_builder(sweep, CATALOG)
    task = build({"dim": np.int64(4), "noise": 0.2})
    first = next(run for run in sweep.runs if run.seed == 0)
    seen = minilab.linear(rng=stream_generators(first)["task"], dim=4, noise=0.2)
    assert np.array_equal(task.beta, seen.beta)
    assert build({"dim": 4.0, "noise": 0.2}) is task
    with pytest.raises(ValueError, match="no task of the sweep"):
        build({"dim": 5})


def test_theory_reference_may_be_an_absolute_module():
    from lazylab.experiments import resolve_theory
    from experiments.minitheory.linear import noise_floor

    assert resolve_theory(CATALOG, "linear.noise_floor") is noise_floor
    assert resolve_theory(CATALOG, "experiments.minitheory.linear.noise_floor") is noise_floor
    with pytest.raises(ValueError, match="has no function 'nope'; available: .*noise_floor"):
        resolve_theory(CATALOG, "linear.nope")


def test_a_field_declared_by_task_and_regime_gets_prefixed_columns(write_spec, tmp_path):
    import dataclasses

    from experiments import minilab
    from lazylab.experiments.catalog import Catalog

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NoisyDescent(minilab.GradientDescent):
        noise: float = 0.0

    catalog = Catalog(minilab.CATALOG.tasks, {"noisy": NoisyDescent}, minilab.empirical_risk,
                      minilab.population_risk)
    spec = write_spec("""
        [task]
        name = "linear"
        noise = 0.2
        [[regime]]
        name = "noisy"
        noise = [0.5, 0.7]
        [sweep]
        n_train = 20
        [plot]
        x = "regime.noise"
        y = "test_risk"
        series = "task.noise"
    """)
    sweep = load_sweep(spec, catalog)
    assert "task.noise" in sweep.fields and "regime.noise" in sweep.fields
    assert "noise" not in sweep.fields
    with Store(tmp_path / "r.sqlite") as store:
        run_sweep(sweep, store, run_function=functools.partial(execute_run, catalog=catalog))
        frame = results_frame(sweep, store)
    assert sorted(frame["regime.noise"]) == [0.5, 0.7] and set(frame["task.noise"]) == {0.2}
