"""scikit-learn estimators for the regimes (fit(X, y) / predict(X) on numpy arrays).

Each estimator stores its parameters in ``__init__`` (the regime's fields plus ``random_state``),
and ``fit`` validates X, y with scikit-learn's utilities, draws a numpy Generator from
``random_state`` (an int or None seeds ``numpy.random.default_rng``; a Generator is used as is; a
legacy RandomState contributes one 63-bit seed), fits the regime on a
:class:`lazylab.tasks.Dataset` and sets ``model_`` (the fitted predictor), ``diagnostics_`` and
``n_features_in_``. ``predict`` returns float64 numpy. Estimators with a ``max_iter`` parameter
also set ``n_iter_``: conjugate-gradient iterations, 1 for a direct solve, SGD steps for deep
models. They work in Pipeline and GridSearchCV.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from lazylab.models import Kernel, NeuralTangent, OneStep, RandomFeatures, SemiRandom
from lazylab.tasks import Dataset

__all__ = ["RandomFeaturesRegressor", "NeuralTangentRegressor", "SemiRandomRegressor",
           "OneStepRegressor", "KernelRegressor", "NetworkRegressor"]


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2 ** 63 - 1, dtype=np.int64)))
    return np.random.default_rng(random_state)


class _RegimeRegressor(RegressorMixin, BaseEstimator):
    """Shared fit/predict; subclasses name the regime class and list its fields as params."""

    def _regime_class(self) -> type:
        raise TypeError(f"{type(self).__name__} does not name a regime")

    def _regime(self, n_samples: int):
        params = self.get_params(deep=False)
        params.pop("random_state")
        return self._regime_class()(**self._adjust(params, n_samples))

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
            # CG iterations, or 1 for a direct solve / the number of SGD steps (depth > 1)
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


class RandomFeaturesRegressor(_RegimeRegressor):
    """:class:`lazylab.models.RandomFeatures` as a scikit-learn regressor."""

    def __init__(self, width=100, activation="relu", weight_covariance="isotropic", biases=False,
                 bias_scale=1.0, offset=True, ridge=0.0, random_state=None):
        self.width, self.activation, self.weight_covariance = width, activation, weight_covariance
        self.biases, self.bias_scale, self.offset, self.ridge = biases, bias_scale, offset, ridge
        self.random_state = random_state

    def _regime_class(self):
        return RandomFeatures


class NeuralTangentRegressor(_RegimeRegressor):
    """:class:`lazylab.models.NeuralTangent` as a scikit-learn regressor."""

    def __init__(self, width=100, activation="relu", train_head=False, ridge=0.0, solver="auto",
                 tol=1e-10, max_iter=None, random_state=None):
        self.width, self.activation, self.train_head = width, activation, train_head
        self.ridge = ridge
        self.solver, self.tol, self.max_iter = solver, tol, max_iter
        self.random_state = random_state

    def _regime_class(self):
        return NeuralTangent


class SemiRandomRegressor(_RegimeRegressor):
    """:class:`lazylab.models.SemiRandom` as a scikit-learn regressor."""

    def __init__(self, width=100, degree=0, depth=1, ridge=0.0, solver="auto", tol=1e-10,
                 max_iter=None, optimizer="adam", learning_rate=1e-3, steps=2000, batch_size=100,
                 random_state=None):
        self.width, self.degree, self.depth, self.ridge = width, degree, depth, ridge
        self.solver, self.tol, self.max_iter = solver, tol, max_iter
        self.optimizer, self.learning_rate, self.steps = optimizer, learning_rate, steps
        self.batch_size, self.random_state = batch_size, random_state

    def _regime_class(self):
        return SemiRandom


class OneStepRegressor(_RegimeRegressor):
    """:class:`lazylab.models.OneStep` as a scikit-learn regressor."""

    def __init__(self, width=1000, activation="relu", first_step_size=None, weight_decay=None,
                 ridge="auto", validation_fraction=0.2, variant="paper", bias_scale=1.0,
                 random_state=None):
        self.width, self.activation = width, activation
        self.first_step_size, self.weight_decay, self.ridge = first_step_size, weight_decay, ridge
        self.validation_fraction, self.variant = validation_fraction, variant
        self.bias_scale, self.random_state = bias_scale, random_state

    def _regime_class(self):
        return OneStep


class KernelRegressor(_RegimeRegressor):
    """:class:`lazylab.models.Kernel` as a scikit-learn regressor."""

    def __init__(self, kind="rf", activation="relu", degree=0, ridge=1e-3, method="auto",
                 n_centers=None, random_state=None):
        self.kind, self.activation, self.degree, self.ridge = kind, activation, degree, ridge
        self.method, self.n_centers, self.random_state = method, n_centers, random_state

    def _regime_class(self):
        return Kernel


class NetworkRegressor(_RegimeRegressor):
    """:class:`lazylab.models.network.Network` (trained two-layer network) as a regressor.

    Always trained by minibatches on the given samples (the regime's ``training`` field only
    concerns tasks); ``batch_size`` is capped at the number of samples.
    """

    def __init__(self, width=100, activation="relu", parameterization="standard", train="both",
                 biases=False, offset=True, optimizer="sgd", learning_rate=0.01, momentum=0.0,
                 steps=1000, batch_size=100, schedule="constant", laziness=None,
                 weight_scale=1.0, head_scale=1.0, bias_scale=1.0, head_init="gaussian",
                 divergence_threshold=1e6, dtype="float64", random_state=None):
        self.width, self.activation, self.parameterization = width, activation, parameterization
        self.train, self.biases, self.offset = train, biases, offset
        self.optimizer, self.learning_rate, self.momentum = optimizer, learning_rate, momentum
        self.steps, self.batch_size, self.schedule = steps, batch_size, schedule
        self.laziness, self.weight_scale, self.head_scale = laziness, weight_scale, head_scale
        self.bias_scale, self.head_init = bias_scale, head_init
        self.divergence_threshold, self.dtype = divergence_threshold, dtype
        self.random_state = random_state

    def _regime_class(self):
        return importlib.import_module("lazylab.models.network").Network

    def _adjust(self, params: dict, n_samples: int) -> dict:
        return {**params, "batch_size": min(int(params["batch_size"]), n_samples)}
