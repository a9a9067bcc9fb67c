"""Yehudai–Shamir: exact RF risk for a single ReLU target (engine) and the reference bound shape."""

import numpy as np
import pytest
import torch

from lazylab.theory.yehudai_shamir import (exponential_lower_bound_shape,
                                           single_neuron_random_features_risk)


def _problem(rng, d=8, r=20):
    w_star = rng.standard_normal(d) / np.sqrt(d) * 2.0
    w = rng.standard_normal((r, d)) / np.sqrt(d)
    b = rng.standard_normal(r) * 0.5
    return w_star, 0.3, w, b


def test_target_among_the_features_is_fitted_exactly():
    rng = np.random.default_rng(0)
    w_star, b_star, w, b = _problem(rng)
    w[3], b[3] = w_star, b_star
    fit = single_neuron_random_features_risk(w_star, b_star, w, b)
    assert fit.risk < 1e-10 * fit.target_second_moment
    expected = np.zeros(len(b))
    expected[3] = 1.0
    np.testing.assert_allclose(fit.head, expected, atol=1e-6)
    assert fit.head_scale == pytest.approx(len(b) * fit.head_norm_max)


def test_risk_matches_monte_carlo_of_the_fitted_predictor():
    """E(f* − Σu_i f_i)² from 2·10⁵ Gaussian inputs; tolerance 4.5 standard errors (p < 1e-5)."""
    rng = np.random.default_rng(1)
    w_star, b_star, w, b = _problem(rng)
    for offset in (False, True):
        fit = single_neuron_random_features_risk(w_star, b_star, w, b, offset=offset)
        x = rng.standard_normal((200_000, w_star.size))
        residual = (np.maximum(x @ w_star + b_star, 0) - fit.offset
                    - np.maximum(x @ w.T + b, 0) @ fit.head) ** 2
        assert abs(residual.mean() - fit.risk) < 4.5 * residual.std() / np.sqrt(residual.size)


def test_agrees_with_the_task_and_risk_engine():
    from lazylab import models, tasks
    rng = np.random.default_rng(2)
    w_star, b_star, w, b = _problem(rng)
    task = tasks.SingleNeuron(torch.as_tensor(w_star), bias=b_star)
    engine = models.optimal_head(task, "relu", torch.as_tensor(w), torch.as_tensor(b), offset=False)
    fit = single_neuron_random_features_risk(w_star, b_star, w, b)
    np.testing.assert_allclose(fit.risk, engine.diagnostics["population_risk"], rtol=1e-7,
                               atol=1e-12)
    np.testing.assert_allclose(fit.head_norm_max, engine.diagnostics["head_norm_max"], rtol=1e-5)


def test_more_features_never_increase_the_risk():
    rng = np.random.default_rng(3)
    w_star, b_star, w, b = _problem(rng, r=30)
    risks = [single_neuron_random_features_risk(w_star, b_star, w[:r], b[:r]).risk
             for r in (3, 10, 20, 30)]
    assert np.all(np.diff(risks) <= 1e-12) and risks[-1] < risks[0]


def test_bound_shape_and_bad_inputs():
    np.testing.assert_allclose(exponential_lower_bound_shape([1, 2, 3], rate=np.log(2)),
                               [2, 4, 8], rtol=1e-14)
    with pytest.raises(ValueError, match="rate"):
        exponential_lower_bound_shape(10, rate=0.0)
    with pytest.raises(ValueError, match="dim"):
        exponential_lower_bound_shape(-1, rate=1.0)
    with pytest.raises(ValueError, match="feature_weights"):
        single_neuron_random_features_risk(np.ones(3), 0.0, np.ones((2, 4)))
    with pytest.raises(ValueError, match="ridge"):
        single_neuron_random_features_risk(np.ones(3), 0.0, np.ones((2, 3)), ridge=-1.0)
