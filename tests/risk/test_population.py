"""Exact population risks against Monte Carlo; empirical risk; errors."""

import math

import numpy as np
import pytest
import torch

from lazylab.predictors import NeuralTangentModel, TwoLayer
from lazylab.risk import empirical_risk, population_risk
from montecarlo import build, monte_carlo_risk




def random_two_layer(dim, width, activation, seed, biases=True, linear=True):
    rng = np.random.default_rng(seed)
    t = lambda *shape: torch.as_tensor(rng.standard_normal(shape))  # noqa: E731
    return TwoLayer(activation, t(width, dim) / math.sqrt(dim), t(width) / math.sqrt(width),
                    biases=t(width) * 0.5 if biases else None, offset=0.3,
                    linear=t(dim) * 0.2 if linear else None)


TASK_CASES = [("quadratic", {"dim": 8, "matrix": "exp-diagonal", "noise": 0.3}),
              ("single_neuron", {"dim": 8, "bias": 0.4, "noise": 0.1}),
              ("gaussian_mixture", {"dim": 12})]


@pytest.mark.parametrize("task_name,params", TASK_CASES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2"])
def test_two_layer_risk_matches_monte_carlo(task_name, params, activation):
    # 4·10⁵ fresh samples; |exact − mean| < 5 standard errors (failure probability ≈ 6e-7).
    task = build(task_name, **params)
    model = random_two_layer(task.dim, 6, activation, seed=1)
    mean, se = monte_carlo_risk(model, task, 400_000, seed=2)
    assert abs(float(population_risk(model, task)) - mean) < 5 * se


@pytest.mark.parametrize("task_name,params", TASK_CASES)
@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_tangent_risk_matches_monte_carlo(task_name, params, activation):
    task = build(task_name, **params)
    rng = np.random.default_rng(4)
    width, dim = 5, task.dim
    weights = torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))
    model = NeuralTangentModel(activation, weights,
                               torch.as_tensor(rng.standard_normal((width, dim))) * 0.2,
                               head=torch.as_tensor(rng.standard_normal(width)) * 0.3, offset=-0.2)
    mean, se = monte_carlo_risk(model, task, 400_000, seed=5)
    assert abs(float(population_risk(model, task)) - mean) < 5 * se


def test_empirical_risk_and_errors():
    task = build("quadratic", dim=5)
    model = random_two_layer(5, 3, "relu", seed=0)
    data = task.sample(1000, rng=np.random.default_rng(0))
    direct = float(((data.y - model.predict(data.x)) ** 2).mean())
    assert empirical_risk(model, data, block_size=128) == pytest.approx(direct, rel=1e-13)
    with pytest.raises(TypeError, match="population_risk supports"):
        population_risk(object(), task)

    class NoMoments:
        has_moments = False
    with pytest.raises(ValueError, match="has no population moments"):
        population_risk(model, NoMoments())
