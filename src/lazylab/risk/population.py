"""Exact population risk E[(y − f(x))²] of fitted predictors under tasks with moments.

Expanding the square, E(y − f)² = E y² − 2 E[y f] + E f²: the first two terms are the task's
moments (E y², E[y σ(w·x + b)], E[y σ′(w·x) x], E[y x]); E f² is a sum over the input law's
Gaussian components of dual-activation moments (:mod:`lazylab.gaussian`). Everything is torch,
so the risk is differentiable in every parameter of the predictor.
"""

from __future__ import annotations

import torch

from lazylab.gaussian import dual_matrix, feature_input_moment, feature_mean
from lazylab.gaussian.tangent import cross_moment, tangent_operator
from lazylab.predictors import NeuralTangentModel, TwoLayer

__all__ = ["population_risk", "supports_population_risk", "whiten", "require_moments"]


def require_moments(task) -> None:
    """Raise a clear error if ``task`` has no population moments (e.g. a real data set)."""
    if not getattr(task, "has_moments", False):
        raise ValueError(f"task {type(task).__name__} has no population moments; "
                         "population (n = ∞) quantities need a Gaussian task")


def whiten(covariance: torch.Tensor | None) -> torch.Tensor | None:
    """C^{1/2} (symmetric square root by eigendecomposition), or None for the identity."""
    if covariance is None:
        return None
    values, vectors = torch.linalg.eigh(covariance)
    return (vectors * values.clamp_min(0.0).sqrt()) @ vectors.T


def supports_population_risk(predictor) -> bool:
    """Whether :func:`population_risk` has an exact formula for this kind of predictor.

    Two-layer and NT predictors do; kernel machines and deep networks do not (their risk is
    measured on a test set).
    """
    return isinstance(predictor, tuple(_RISKS))


def population_risk(predictor, task) -> torch.Tensor:
    """Exact E[(y − f(x))²] for a :class:`TwoLayer` or :class:`NeuralTangentModel` predictor.

    Args:
        predictor: the fitted predictor; its tensors may require gradients.
        task: a task with moments (``task.has_moments``).
    Returns:
        0-d float64 tensor (label noise included, so the Bayes risk is its floor).
    """
    require_moments(task)
    for kind, risk in _RISKS.items():
        if isinstance(predictor, kind):
            return risk(predictor, task)
    raise TypeError(f"population_risk supports {', '.join(k.__name__ for k in _RISKS)}, "
                    f"got {type(predictor).__name__}")


def _two_layer_second_moment(model, covariance) -> torch.Tensor:
    sigma, w, b, a, c = model.activation, model.weights, model.biases, model.head, model.offset
    total = c * c + a @ dual_matrix(sigma, w, b, covariance=covariance) @ a
    total = total + 2 * c * (a @ feature_mean(sigma, w, b, covariance))
    if model.linear is not None:
        beta = model.linear
        c_beta = beta if covariance is None else covariance @ beta
        total = total + beta @ c_beta
        total = total + 2 * a @ (feature_input_moment(sigma, w, b, covariance) @ beta)
    return total


def _two_layer_risk(model, task) -> torch.Tensor:
    cross = model.offset * task.target_mean()
    cross = cross + model.head @ task.feature_moment(model.activation, model.weights, model.biases)
    if model.linear is not None:
        cross = cross + model.linear @ task.linear_moment()
    second = sum(p * _two_layer_second_moment(model, cov) for p, cov in task.components)
    return task.target_second_moment() - 2 * cross + second


def _tangent_second_moment(model, covariance) -> torch.Tensor:
    root = whiten(covariance)
    w = model.weights if root is None else model.weights @ root
    a = model.directions if root is None else model.directions @ root
    sigma, c = model.activation, model.offset
    g_mean = torch.sum(feature_input_moment(sigma.derivative(), w) * a)
    total = c * c + 2 * c * g_mean + torch.sum(a * tangent_operator(sigma, w).apply(a))
    if model.head is not None:
        h = model.head
        alpha, beta = cross_moment(sigma, w)
        s = w @ a.T
        g_h = h @ ((alpha * s).sum(1)) + h @ (beta * torch.diagonal(s)[None, :]).sum(1)
        total = total + 2 * c * (h @ feature_mean(sigma, w)) + 2 * g_h
        total = total + h @ dual_matrix(sigma, w, None) @ h
    return total


def _tangent_risk(model, task) -> torch.Tensor:
    cross = model.offset * task.target_mean()
    cross = cross + torch.sum(model.directions * task.tangent_moment(model.activation, model.weights))
    if model.head is not None:
        cross = cross + model.head @ task.feature_moment(model.activation, model.weights, None)
    second = sum(p * _tangent_second_moment(model, cov) for p, cov in task.components)
    return task.target_second_moment() - 2 * cross + second


_RISKS = {TwoLayer: _two_layer_risk, NeuralTangentModel: _tangent_risk}
