"""Exact n = ∞ fits (lazylab.models.population) against closed forms, stationarity and sampling."""

import math

import numpy as np
import pytest
import torch

from lazylab.models import optimal_head, optimal_tangent
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.tasks import TASKS


def build(name, seed=0, **params):
    return TASKS[name](rng=np.random.default_rng(seed), **params)


def monte_carlo_risk(predictor, task, n, seed):
    """Mean and standard error of (y − f(x))² over n fresh samples."""
    data = task.sample(n, rng=np.random.default_rng(seed))
    with torch.no_grad():
        squares = (data.y - predictor.predict(data.x)) ** 2
    return float(squares.mean()), float(squares.std()) / math.sqrt(n)


@pytest.mark.parametrize("dim,width", [(40, 10), (60, 45), (30, 40)])
def test_tangent_fit_with_quadratic_activation_equals_projection_formula(dim, width):
    # THEORY.md §1.4: R_NT = 2‖P⊥ B P⊥‖²_F exactly, P⊥ the projection off span(W).
    task = build("quadratic", seed=dim, dim=dim)
    rng = np.random.default_rng(width)
    weights = torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))
    fit = optimal_tangent(task, "quadratic", weights, tol=1e-12)
    if width < dim:
        projection = torch.eye(dim, dtype=torch.float64) - weights.T @ torch.linalg.solve(
            weights @ weights.T, weights)
        exact = 2 * float(((projection @ task.matrix @ projection) ** 2).sum())
    else:
        exact = 0.0
    scale = task.null_risk
    assert abs(fit.diagnostics["population_risk"] - exact) <= 1e-8 * scale
    assert abs(float(population_risk(fit, task)) - exact) <= 1e-8 * scale
    assert fit.diagnostics["cg_converged"] == 1.0


def test_tangent_fit_is_stationary():
    # At the optimum, the exact risk's gradient w.r.t. every fitted parameter vanishes.
    task = build("single_neuron", dim=6, bias=0.3)
    weights = torch.as_tensor(np.random.default_rng(0).standard_normal((4, 6)) / math.sqrt(6))
    fit = optimal_tangent(task, "relu", weights, train_head=True, tol=1e-13)
    params = [fit.directions, fit.head, fit.offset]
    for p in params:
        p.requires_grad_(True)
    grads = torch.autograd.grad(population_risk(fit, task), params)
    assert max(float(g.abs().max()) for g in grads) < 1e-9


def test_head_fit_is_stationary_and_ridge_shrinks():
    task = build("quadratic", dim=10, noise=0.2)
    weights = torch.as_tensor(np.random.default_rng(1).standard_normal((15, 10)) / math.sqrt(10))
    fit = optimal_head(task, "relu", weights)
    head, offset = fit.head.clone().requires_grad_(True), fit.offset.clone().requires_grad_(True)
    risk = population_risk(TwoLayer("relu", weights, head, offset=offset), task)
    grads = torch.autograd.grad(risk, [head, offset])
    assert max(float(g.abs().max()) for g in grads) < 1e-10
    assert float(risk.detach()) == pytest.approx(fit.diagnostics["population_risk"], rel=1e-12)
    shrunk = optimal_head(task, "relu", weights, ridge=1.0)
    assert float(shrunk.head.norm()) < float(fit.head.norm())
    assert shrunk.diagnostics["population_risk"] > fit.diagnostics["population_risk"]


def test_population_head_equals_large_sample_least_squares():
    # The sample fit's exact risk exceeds the population optimum by ≈ σ²_res·(N+1)/n ± its
    # spread; with n = 2·10⁵ both the excess and the test-set error are within Monte Carlo error.
    task = build("quadratic", dim=20, noise=0.0)
    rng = np.random.default_rng(9)
    width, n = 40, 200_000
    weights = torch.as_tensor(rng.standard_normal((width, 20)) / math.sqrt(20))
    exact = optimal_head(task, "relu", weights)
    data = task.sample(n, rng=rng)
    features = torch.cat([torch.relu(data.x @ weights.T), torch.ones(n, 1, dtype=torch.float64)], 1)
    solution = torch.linalg.lstsq(features, data.y[:, None]).solution.squeeze(1)
    sampled = TwoLayer("relu", weights, solution[:-1], offset=solution[-1])
    excess = float(population_risk(sampled, task)) - exact.diagnostics["population_risk"]
    expected_excess = exact.diagnostics["population_risk"] * (width + 1) / n
    assert 0 <= excess < 5 * expected_excess
    mean, se = monte_carlo_risk(exact, task, 200_000, seed=10)
    assert abs(mean - exact.diagnostics["population_risk"]) < 5 * se


def test_singular_feature_covariance_uses_the_pseudo_inverse_and_stays_optimal():
    # σ = u² − 1 spans at most d(d + 1)/2 functions: with N = 30 > 6·7/2 = 21 features the
    # covariance is singular. The quadratic target is in that span, so the optimum is the noise.
    task = build("quadratic", dim=6, noise=0.1)
    weights = torch.as_tensor(np.random.default_rng(3).standard_normal((30, 6)) / math.sqrt(6))
    fit = optimal_head(task, "hermite2", weights)
    assert fit.diagnostics["pseudo_inverse"] == 1.0
    assert fit.diagnostics["population_risk"] == pytest.approx(0.1 ** 2, abs=1e-9)
    assert float(population_risk(fit, task)) == pytest.approx(0.1 ** 2, abs=1e-9)


def test_negative_ridge_is_rejected_with_its_value():
    task = build("quadratic", dim=5)
    weights = torch.eye(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="ridge must be >= 0, got -1.0"):
        optimal_head(task, "relu", weights, ridge=-1.0)
    with pytest.raises(ValueError, match="ridge must be >= 0, got -1.0"):
        optimal_tangent(task, "relu", weights, ridge=-1.0)
