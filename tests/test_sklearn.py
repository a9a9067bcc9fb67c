"""scikit-learn estimators: the estimator checks, Pipeline and GridSearchCV, agreement with the
regimes they wrap."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from lazylab.models import REGIMES, RandomFeatures
from lazylab.sklearn import (ESTIMATORS as WRAPPERS, DeepSemiRandomRegressor, KernelRegressor,
                             NetworkRegressor, NeuralTangentRegressor, OneStepRegressor,
                             RandomFeaturesRegressor, SemiRandomRegressor)
from lazylab.tasks import Dataset


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The test machine's cores are shared: BLAS threads spinning against each other cost 30×."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ESTIMATORS = [
    RandomFeaturesRegressor(width=30, ridge=1e-6),
    NeuralTangentRegressor(width=5, ridge=1e-6),
    SemiRandomRegressor(width=5, degree=1, ridge=1e-6),
    DeepSemiRandomRegressor(width=8, steps=300, learning_rate=1e-2, batch_size=20),
    OneStepRegressor(width=20, ridge=(1e-4, 1e-2, 1.0)),
    KernelRegressor(kind="ntk", ridge=1e-4),
    NetworkRegressor(width=20, steps=300, optimizer="adam", learning_rate=0.02, batch_size=20),
]



# Every check applies and passes: no expected failures are declared (expected_failed_checks).
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _regression(n, dim, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    return x, np.maximum(x[:, 0], 0.0) + 0.1 * rng.standard_normal(n)


def test_regressor_equals_the_regime_it_wraps():
    x, y = _regression(200, 4, 0)
    estimator = RandomFeaturesRegressor(width=40, ridge=1e-3, random_state=7).fit(x, y)
    model = RandomFeatures(width=40, ridge=1e-3).fit(Dataset(torch.tensor(x), torch.tensor(y)),
                                                      rng=np.random.default_rng(7))
    x_new = _regression(50, 4, 1)[0]
    np.testing.assert_allclose(estimator.predict(x_new), model.predict(torch.tensor(x_new)).numpy(),
                               rtol=1e-12, atol=1e-12)
    assert estimator.n_features_in_ == 4 and estimator.diagnostics_["head_norm_max"] > 0


def test_pipeline_and_grid_search_choose_a_sensible_ridge():
    x, y = _regression(300, 3, 2)
    pipeline = make_pipeline(StandardScaler(), KernelRegressor(kind="rf"))
    search = GridSearchCV(pipeline, {"kernelregressor__ridge": [1e-6, 1e-2, 1e3]}, cv=3)
    search.fit(x, y)
    # a ridge of 1e3 shrinks everything to ~0 and cannot win; the fitted score is high
    assert search.best_params_["kernelregressor__ridge"] < 1e3
    x_test, y_test = _regression(300, 3, 3)
    assert search.score(x_test, y_test) > 0.8


def test_bad_parameters_raise_at_fit():
    x, y = _regression(20, 2, 4)
    with pytest.raises(ValueError, match="width"):
        RandomFeaturesRegressor(width=0).fit(x, y)
    with pytest.raises(ValueError, match="unknown activation"):
        NeuralTangentRegressor(activation="nope").fit(x, y)


EXCLUDED = {"network": {"training"}}
"""Regime fields that are not estimator parameters (a Dataset is always fitted by minibatches)."""


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_estimator_parameters_are_the_regime_fields_with_their_defaults(name):
    """Names, order and defaults of __init__ equal the dataclass fields (+ random_state), and a
    default estimator builds exactly the default regime."""
    if name not in WRAPPERS:
        pytest.fail(f"regime {name!r} has no scikit-learn estimator in lazylab.sklearn.ESTIMATORS")
    wrapper, regime_class = WRAPPERS[name], REGIMES[name]
    fields = {f.name: f.default for f in dataclasses.fields(regime_class)
              if f.name not in EXCLUDED.get(name, set())}
    signature = inspect.signature(wrapper.__init__)
    parameters = {key: p.default for key, p in signature.parameters.items() if key != "self"}
    assert list(parameters) == [*fields, "random_state"]
    assert parameters == {**fields, "random_state": None}
    assert wrapper().get_params() == {**fields, "random_state": None}
    assert wrapper()._regime(10 ** 6) == regime_class()
    with pytest.raises(TypeError):
        wrapper(not_a_field=1)


def test_deep_semi_random_estimator_equals_the_regime():
    x, y = _regression(120, 3, 5)
    estimator = DeepSemiRandomRegressor(width=6, steps=40, batch_size=30, random_state=3).fit(x, y)
    model = REGIMES["deep_semi_random"](width=6, steps=40, batch_size=30).fit(
        Dataset(torch.tensor(x), torch.tensor(y)), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(estimator.predict(x), model.predict(torch.tensor(x)).numpy())
    assert estimator.diagnostics_["steps"] == 40
