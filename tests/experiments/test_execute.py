"""Executing one run: metrics against direct computation, statuses, progress."""

from __future__ import annotations

import math

import numpy as np

from experiments import minilab
from lazylab.errors import DivergenceError
from lazylab.experiments import DIVERGED, DONE, FAILED, execute_run
from lazylab.experiments.catalog import Catalog
from lazylab.experiments.execute import CLASSIFICATION_RULES
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


class _SignTask:
    """The linear task with ±1 labels y = sign(β·x + noise·ε), a classification task."""

    classification = "sign"

    def __init__(self, inner):
        self.inner, self.has_moments, self.dim = inner, False, inner.dim

    @property
    def null_risk(self) -> float:
        return 1.0

    def sample(self, n, *, rng):
        data = self.inner.sample(n, rng=rng)
        return minilab.Dataset(data.x, np.sign(data.y))


def _sign_catalog(rule="sign"):
    def build(*, rng, **params):
        task = _SignTask(minilab.linear(rng=rng, **params))
        task.classification = rule
        return task

    return Catalog(tasks={"linear": build}, regimes=minilab.CATALOG.regimes,
                   empirical_risk=minilab.empirical_risk)


def test_classification_tasks_report_the_test_error_percent():
    """Misclassified test points of the run's own fit, counted directly; absent for regression."""
    run = _run(regime_params={"learning_rate": 0.2, "steps": 30})
    outcome = execute_run(run, catalog=_sign_catalog())
    streams = stream_generators(run)
    task = _SignTask(minilab.linear(rng=streams["task"], dim=3, noise=0.1))
    train = task.sample(50, rng=streams["data"])
    test = task.sample(200, rng=streams["test"])
    predictor = minilab.GradientDescent(learning_rate=0.2, steps=30).fit(train, rng=streams["fit"])
    wrong = sum(int(np.sign(p) != y) for p, y in zip(predictor.predict(test.x), test.y))
    assert outcome.metrics["classification_error_percent"] == 100.0 * wrong / 200
    assert 0 < wrong < 100          # 0.1 noise on labels of a learned direction: few, not none
    assert "classification_error_percent" not in execute_run(
        run, catalog=minilab.CATALOG).metrics


def test_an_unknown_classification_rule_fails_the_run_naming_it():
    outcome = execute_run(_run(regime_params={"learning_rate": 0.2, "steps": 5}),
                          catalog=_sign_catalog("softmax"))
    assert outcome.status == FAILED and "task.classification must be one of" in outcome.error


def test_argmax_rule_counts_rows_against_one_hot_and_index_labels():
    prediction = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.3]])
    one_hot = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert CLASSIFICATION_RULES["argmax"](prediction, one_hot).tolist() == [False, True, False]
    assert CLASSIFICATION_RULES["argmax"](prediction, np.array([0, 1, 1])).tolist() == [
        False, False, True]
