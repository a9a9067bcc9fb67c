"""scikit-learn estimators for the regimes (fit(X, y) / predict(X) on numpy arrays).

The estimators are generated from the regime dataclasses: an estimator's ``__init__`` takes,
keyword-only, exactly the regime's fields with the same names and defaults (less a documented few
that do not apply to samples) plus ``random_state``, so a regime's new field or changed default
reaches its estimator without a hand-copied list. ``fit`` validates X, y with scikit-learn's
utilities, draws a numpy Generator from ``random_state`` (an int or None seeds
``numpy.random.default_rng``; a Generator is used as is; a legacy RandomState contributes one
63-bit seed), fits the regime on a :class:`lazylab.tasks.Dataset` and sets ``model_`` (the fitted
predictor), ``diagnostics_`` and ``n_features_in_``. ``predict`` returns float64 numpy.
Estimators with a ``max_iter`` parameter also set ``n_iter_``: conjugate-gradient iterations, 1
for a direct solve. They work in Pipeline and GridSearchCV.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from lazylab.models import (DeepSemiRandom, Kernel, Network, NeuralTangent, OneStep,
                            RandomFeatures, SemiRandom)
from lazylab.tasks import Dataset

__all__ = ["RandomFeaturesRegressor", "NeuralTangentRegressor", "SemiRandomRegressor",
           "DeepSemiRandomRegressor", "OneStepRegressor", "KernelRegressor", "NetworkRegressor",
           "ESTIMATORS", "estimator_parameters"]


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2 ** 63 - 1, dtype=np.int64)))
    return np.random.default_rng(random_state)


class _RegimeRegressor(RegressorMixin, BaseEstimator):
    """Shared fit/predict; a generated subclass sets ``regime`` and its ``__init__``."""

    regime: type | None = None
    excluded: tuple[str, ...] = ()

    def _regime(self, n_samples: int):
        params = self.get_params(deep=False)
        params.pop("random_state")
        return self.regime(**self._adjust(params, n_samples))

    def _adjust(self, params: dict, n_samples: int) -> dict:
        return params

    def fit(self, X, y):
        """Fit the regime on (X (n, d), y (n,)); returns self."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        regime = self._regime(X.shape[0])
        data = Dataset(torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
        self.model_ = regime.fit(data, rng=_generator(self.random_state))
        self.diagnostics_ = dict(getattr(self.model_, "diagnostics", {}))
        if "max_iter" in self.get_params(deep=False):
            # CG iterations, or 1 for a direct solve
            self.n_iter_ = max(1, int(self.diagnostics_.get("cg_iterations",
                                                            self.diagnostics_.get("steps", 1))))
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions f(X), shape (n,), float64."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with torch.no_grad():
            out = self.model_.predict(torch.tensor(X, dtype=torch.float64))
        return out.detach().cpu().numpy().astype(np.float64, copy=False)


def estimator_parameters(regime: type, excluded: tuple[str, ...] = ()) -> dict[str, object]:
    """The estimator parameters for ``regime``: its init fields (name → default, in order)
    except ``excluded``, then ``random_state`` (None). Raises TypeError for a field without a
    default (an estimator must be constructible with no arguments)."""
    parameters = {}
    for field in dataclasses.fields(regime):
        if not field.init or field.name in excluded:
            continue
        if field.default is dataclasses.MISSING:
            raise TypeError(f"{regime.__name__}.{field.name} has no plain default; a "
                            "scikit-learn estimator needs one for every parameter")
        parameters[field.name] = field.default
    return {**parameters, "random_state": None}


def _wrapper(name: str, regime: type, *, excluded: tuple[str, ...] = (), note: str = "",
             adjust: Callable[[dict, int], dict] | None = None) -> type:
    """A :class:`_RegimeRegressor` subclass whose keyword-only ``__init__`` stores exactly
    :func:`estimator_parameters` (scikit-learn reads the parameters from its signature)."""
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value)
           for key, value in estimator_parameters(regime, excluded).items()])

    def __init__(self, **params):
        bound = signature.bind(self, **params)
        bound.apply_defaults()
        for key, value in list(bound.arguments.items())[1:]:
            setattr(self, key, value)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{name}.__init__"
    namespace = {"__init__": __init__, "regime": regime, "excluded": excluded,
                 "__module__": __name__, "__qualname__": name,
                 "__doc__": f":class:`lazylab.models.{regime.__name__}` as a scikit-learn "
                            "regressor: its fields as keyword-only parameters (same names and "
                            f"defaults) and ``random_state``.{note}"}
    if adjust is not None:
        namespace["_adjust"] = lambda self, params, n_samples: adjust(params, n_samples)
    return type(name, (_RegimeRegressor,), namespace)


RandomFeaturesRegressor = _wrapper("RandomFeaturesRegressor", RandomFeatures)
NeuralTangentRegressor = _wrapper("NeuralTangentRegressor", NeuralTangent)
SemiRandomRegressor = _wrapper("SemiRandomRegressor", SemiRandom)
DeepSemiRandomRegressor = _wrapper(
    "DeepSemiRandomRegressor", DeepSemiRandom,
    note=" ``batch_size`` is capped at the number of samples by the regime.")
OneStepRegressor = _wrapper("OneStepRegressor", OneStep)
KernelRegressor = _wrapper("KernelRegressor", Kernel)
NetworkRegressor = _wrapper(
    "NetworkRegressor", Network, excluded=("training",),
    note=" Always trained by minibatches on the given samples, so the regime's ``training`` "
         "(how a task is fitted) is not a parameter; ``batch_size`` is capped at n.",
    adjust=lambda params, n: {**params, "batch_size": min(int(params["batch_size"]), n)})

ESTIMATORS: dict[str, type] = {
    "random_features": RandomFeaturesRegressor, "neural_tangent": NeuralTangentRegressor,
    "semi_random": SemiRandomRegressor, "deep_semi_random": DeepSemiRandomRegressor,
    "one_step": OneStepRegressor, "kernel": KernelRegressor, "network": NetworkRegressor}
"""Registry name of a regime (:data:`lazylab.models.REGIMES`) → its estimator class."""
