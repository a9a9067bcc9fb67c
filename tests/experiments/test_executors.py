"""The same sweep in-process, on a local process pool and on a Dask LocalCluster."""

from __future__ import annotations

import functools

import pytest

from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab.experiments import (DaskExecutor, InProcessExecutor, PoolExecutor, Run, Store,
                                 execute_run, load_sweep, make_executor, run_sweep)
from lazylab.experiments.executors import (POOL_BREAK_EVEN_SECONDS, choose_executor,
                                           executor_options)
from lazylab.experiments.resources import FLOPS_PER_SECOND, RUN_OVERHEAD_SECONDS, run_seconds

RUN = functools.partial(execute_run, catalog=CATALOG)


def _results(store):
    """run_id → (status, metrics without timing, seeds): what must not depend on the executor."""
    return {row["run_id"]: (row["status"], {k: v for k, v in row["metrics"].items()
                                            if k != "wall_time"}, row["seeds"])
            for row in store.rows()}


def _sweep_with(executor, spec, path):
    sweep = load_sweep(spec, CATALOG)
    with Store(path) as store:
        status = run_sweep(sweep, store, executor=executor, run_function=RUN)
        assert status.pending == 0 and status.total == len(sweep.runs)
        hosts = {row["host"] for row in store.rows()}
        return _results(store), hosts


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference")
    spec = directory / "spec.toml"
    spec.write_text(BASE_SPEC)
    results, _ = _sweep_with(InProcessExecutor(), spec, directory / "inprocess.sqlite")
    assert len(results) == 20 and sum(s == "diverged" for s, _, _ in results.values()) == 4
    return spec, results


def test_pool_matches_inprocess_bit_for_bit(reference, tmp_path):
    spec, expected = reference
    results, _ = _sweep_with(PoolExecutor(workers=2), spec, tmp_path / "pool.sqlite")
    assert results == expected


@pytest.mark.slow
def test_dask_local_cluster_matches_inprocess_bit_for_bit(reference, tmp_path):
    """A LocalCluster of 2 worker processes over loopback, reached by its scheduler address."""
    distributed = pytest.importorskip("distributed")  # the "test" extra installs it
    spec, expected = reference
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert len(cluster.workers) == 2
        results, _ = _sweep_with(DaskExecutor(scheduler=cluster.scheduler_address), spec,
                                 tmp_path / "dask.sqlite")
    assert results == expected


def test_dask_workers_option_starts_a_loopback_local_cluster(monkeypatch):
    """``--dask-workers K`` wiring: K single-threaded worker processes on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    calls = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            calls.append((type(self).__name__, args, kwargs))

        def close(self):
            calls.append((type(self).__name__, "close"))

    monkeypatch.setattr(distributed, "LocalCluster", type("LocalCluster", (Recorder,), {}))
    monkeypatch.setattr(distributed, "Client", type("Client", (Recorder,), {}))
    with DaskExecutor(workers=3):
        pass
    assert calls[0] == ("LocalCluster", (), {"n_workers": 3, "threads_per_worker": 1,
                                             "processes": True, "host": "127.0.0.1",
                                             "dashboard_address": None})
    assert calls[1][0] == "Client" and isinstance(calls[1][1][0], distributed.LocalCluster)
    assert calls[2:] == [("Client", "close"), ("LocalCluster", "close")]


def test_executor_options_are_validated():
    with pytest.raises(ValueError, match="executor='threads' is unknown; allowed: inprocess"):
        make_executor("threads")
    with pytest.raises(ValueError, match="workers=0"):
        PoolExecutor(workers=0)
    with pytest.raises(ValueError, match="either scheduler"):
        DaskExecutor(scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(RuntimeError, match="context manager"):
        list(PoolExecutor(workers=1).map(RUN, []))


def _run(regime="random_features", width=10, n_train=None, dim=20, **params):
    return Run("quadratic", (("dim", dim),), regime,
               tuple(sorted({"width": width, **params}.items())), n_train, 1000, 0)


def test_run_seconds_is_overhead_plus_dense_work():
    small, large = _run(width=10), _run(width=4000)
    assert run_seconds(small) == pytest.approx(RUN_OVERHEAD_SECONDS, rel=0.01)
    # the n = ∞ RF fit holds 3N² entries: (3N²)^{3/2} flops dominate at N = 4000
    assert run_seconds(large) == pytest.approx(
        RUN_OVERHEAD_SECONDS + (3 * 4000 ** 2 + 3 * 20 ** 2 + 1000 * 21) ** 1.5
        / FLOPS_PER_SECOND, rel=1e-9)
    trained = _run("network", width=100, n_train=1000, steps=10_000, batch_size=50)
    assert run_seconds(trained) > 6 * 10_000 * 50 * 100 * 20 / FLOPS_PER_SECOND


@pytest.mark.parametrize("runs, cores, expected", [
    ([_run(width=w) for w in (5, 10, 20, 40, 80)] * 6, 16, "inprocess"),  # the example: 30 small
    ([_run(width=4000)] * 4, 16, "pool"),                 # four runs of ~40 s each
    ([_run(width=4000)], 16, "inprocess"),                # one run: nothing to share
    ([_run(width=4000)] * 4, 1, "inprocess"),             # one core
    ([], 16, "inprocess"),
])
def test_the_executor_is_chosen_by_the_work(runs, cores, expected):
    assert choose_executor(runs, cores=cores) == expected


def test_choice_follows_the_break_even_on_a_given_cost():
    runs = [_run()] * 10
    at = POOL_BREAK_EVEN_SECONDS / 10
    assert choose_executor(runs, cores=2, cost=lambda run: at) == "inprocess"   # not above
    assert choose_executor(runs, cores=2, cost=lambda run: at * 1.01) == "pool"


@pytest.mark.parametrize("options, expected", [
    ((None, None, None, None), (None, {})),                          # chosen by the work
    ((None, 3, None, None), ("pool", {"workers": 3})),               # --workers implies pool
    (("inprocess", None, None, None), ("inprocess", {})),
    ((None, None, "tcp://h:1", None), ("dask", {"scheduler": "tcp://h:1", "workers": None})),
])
def test_executor_options(options, expected):
    assert executor_options(*options) == expected


def test_run_seconds_counts_one_fit_per_grid_value_and_the_step_budget():
    plain = _run("network", width=100, n_train=1000, max_steps=10_000, batch_size=50)
    assert run_seconds(plain) > 6 * 10_000 * 50 * 100 * 20 / FLOPS_PER_SECOND
    tuned = _run("network", width=100, n_train=1000, max_steps=10_000, batch_size=50,
                 learning_rate={"grid": [1e-3, 1e-2, 1e-1], "select": "validation"})
    assert run_seconds(tuned) - RUN_OVERHEAD_SECONDS == pytest.approx(
        3 * (run_seconds(plain) - RUN_OVERHEAD_SECONDS), rel=1e-12)
