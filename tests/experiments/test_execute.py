"""Executing one run: metrics against direct computation, statuses, progress."""

from __future__ import annotations

import math

import numpy as np

from experiments import minilab
from lazylab.errors import DivergenceError
from lazylab.experiments import DIVERGED, DONE, FAILED, execute_run
from lazylab.experiments.catalog import Catalog
from lazylab.experiments.runs import make_run, stream_generators


def _run(regime="gradient_descent", regime_params=None, n_train=50, **task_params):
    return make_run("linear", {"dim": 3, "noise": 0.1, **task_params}, regime,
                    regime_params or {}, n_train, 200, 7)


def test_metrics_match_a_direct_computation():
    run = _run(regime_params={"learning_rate": 0.2, "steps": 30})
    outcome = execute_run(run, catalog=minilab.CATALOG)
    assert outcome.status == DONE and outcome.error is None
    streams = stream_generators(run)
    task = minilab.linear(rng=streams["task"], dim=3, noise=0.1)
    train = task.sample(50, rng=streams["data"])
    test = task.sample(200, rng=streams["test"])
    predictor = minilab.GradientDescent(learning_rate=0.2, steps=30).fit(train, rng=streams["fit"])
    gap = predictor.head - task.beta
    population = float(gap @ gap + task.noise ** 2)
    assert outcome.metrics["population_risk"] == population
    assert outcome.metrics["test_risk"] == minilab.empirical_risk(predictor, test)
    assert outcome.metrics["train_risk"] == minilab.empirical_risk(predictor, train)
    assert outcome.metrics["risk_normalized"] == population / task.null_risk
    assert outcome.metrics["steps"] == 30.0 and outcome.metrics["wall_time"] > 0
    assert set(outcome.seeds) == {"task", "test", "data", "fit"}
    assert outcome.started_at <= outcome.finished_at and outcome.host


def test_population_run_has_no_train_risk():
    outcome = execute_run(_run(n_train=None), catalog=minilab.CATALOG)
    assert outcome.status == DONE and "train_risk" not in outcome.metrics
    assert "population_risk" in outcome.metrics


def test_task_without_moments_normalizes_the_test_risk():
    outcome = execute_run(_run(moments=False), catalog=minilab.CATALOG)
    assert "population_risk" not in outcome.metrics
    assert outcome.metrics["risk_normalized"] > 0


def test_divergence_is_reported_not_stored_as_a_number():
    outcome = execute_run(_run(regime_params={"learning_rate": 5.0, "steps": 200}),
                          catalog=minilab.CATALOG)
    assert outcome.status == DIVERGED and outcome.error.startswith("DivergenceError: loss")
    assert outcome.metrics.keys() == {"steps_to_divergence"}
    assert 0 < outcome.metrics["steps_to_divergence"] < 200


class _NanRegime(minilab.GradientDescent):
    def fit(self, data_or_task, *, rng, progress=None):
        predictor = super().fit(data_or_task, rng=rng)
        return minilab.Predictor(None, predictor.head, None, {"steps": math.nan})


def test_non_finite_metric_is_divergence():
    catalog = Catalog(minilab.CATALOG.tasks, {"nan": _NanRegime}, minilab.empirical_risk,
                      minilab.population_risk)
    outcome = execute_run(_run("nan"), catalog=catalog)
    assert outcome.status == DIVERGED and outcome.error == "non-finite metrics: steps"
    assert "steps" not in outcome.metrics and math.isfinite(outcome.metrics["test_risk"])


def test_exceptions_become_failed_runs(tmp_path):
    outcome = execute_run(_run("flaky", {"marker": str(tmp_path / "m")}), catalog=minilab.CATALOG)
    assert outcome.status == FAILED and "RuntimeError: first attempt fails" in outcome.error
    assert outcome.metrics == {}
    again = execute_run(_run("flaky", {"marker": str(tmp_path / "m")}), catalog=minilab.CATALOG)
    assert again.status == DONE


def test_progress_reaches_regimes_that_accept_it():
    steps = []
    execute_run(_run(regime_params={"steps": 12}), catalog=minilab.CATALOG,
                progress=lambda step, total: steps.append((step, total)))
    assert steps == [(k, 12) for k in range(1, 13)]


def test_threads_are_restored():
    import torch
    before = torch.get_num_threads()
    execute_run(_run(), catalog=minilab.CATALOG, threads=1)
    assert torch.get_num_threads() == before


def test_divergence_error_is_a_runtime_error():
    error = DivergenceError("boom", step=3)
    assert isinstance(error, RuntimeError) and error.step == 3 and str(error) == "boom"


class _ChattyRegime(minilab.GradientDescent):
    def fit(self, data_or_task, *, rng, progress=None):
        predictor = super().fit(data_or_task, rng=rng)
        return minilab.Predictor(None, predictor.head, None,
                                 {"note": "converged", "missing": None, "converged": True,
                                  "iterations": np.int64(17)})


def test_only_numeric_diagnostics_become_metrics():
    catalog = Catalog(minilab.CATALOG.tasks, {"chatty": _ChattyRegime}, minilab.empirical_risk,
                      minilab.population_risk)
    outcome = execute_run(_run("chatty"), catalog=catalog)
    assert outcome.status == DONE
    assert outcome.metrics["converged"] == 1.0 and outcome.metrics["iterations"] == 17.0
    assert "note" not in outcome.metrics and "missing" not in outcome.metrics
