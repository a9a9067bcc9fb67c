"""SemiRandom: degree 0 is NeuralTangent with relu (samples and n = ∞), degree 1 is exact at n = ∞
(the sample fit converges to it); DeepSemiRandom trains and shares its first random layer with
SemiRandom; inputs are validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.models import DeepSemiRandom, DeepSemiRandomModel, NeuralTangent, SemiRandom
from lazylab.risk import empirical_risk, population_risk
from lazylab.tasks import TASKS


def _task(noise=0.3, dim=5):
    return TASKS["single_neuron"](rng=np.random.default_rng(0), dim=dim, noise=noise)


def test_degree_zero_is_neural_tangent_with_relu_on_samples_and_at_infinity():
    task = _task()
    data = task.sample(700, rng=np.random.default_rng(1))
    for source in (data, task):
        semi = SemiRandom(width=6, degree=0, ridge=1e-5).fit(source, rng=np.random.default_rng(4))
        tangent = NeuralTangent(width=6, activation="relu", ridge=1e-5).fit(
            source, rng=np.random.default_rng(4))
        assert torch.equal(semi.weights, tangent.weights)          # same r as W, same rng draw
        torch.testing.assert_close(semi.directions, tangent.directions, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(semi.predict(data.x), tangent.predict(data.x),
                                   rtol=1e-12, atol=1e-12)
    # the unit itself: 1[r·x > 0] ⟨w, x⟩
    r, w = semi.weights, semi.directions
    manual = ((data.x @ r.T > 0) * (data.x @ w.T)).sum(1) + semi.offset
    torch.testing.assert_close(semi.predict(data.x), manual)


@pytest.mark.parametrize("degree, solver", [(0, "auto"), (1, "auto"), (1, "cg")])
def test_the_ridge_path_is_a_fit_per_ridge(degree, solver):
    # n = 60 < p/2 = 80 (width 8, d = 20): "cg" and "auto" above the direct size take the dual,
    # here from its dense matrix; "auto" at this size forms Φ (the direct path). Same r draw.
    task = _task(dim=20)
    data = task.sample(60, rng=np.random.default_rng(1))
    ridges = [1e-1, 1e-3, 0.0, 1e-6]
    regime = SemiRandom(width=8, degree=degree, solver=solver)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(5))
    assert regime.fit_path(task, ridges, rng=np.random.default_rng(5)) is None   # n = ∞: refit
    for ridge, model in zip(ridges, path):
        single = SemiRandom(width=8, degree=degree, solver=solver, ridge=ridge).fit(
            data, rng=np.random.default_rng(5))
        assert torch.equal(model.weights, single.weights)
        torch.testing.assert_close(model.predict(data.x), single.predict(data.x), rtol=1e-7,
                                   atol=1e-8)
        if solver == "cg":
            assert model.diagnostics["cg_converged"] == 1.0


def test_degree_one_units_and_exact_population_fit():
    task = _task()
    regime = SemiRandom(width=5, degree=1)
    exact = regime.fit(task, rng=np.random.default_rng(2))
    assert exact.diagnostics["cg_converged"] == 1.0
    risk = exact.diagnostics["population_risk"]
    assert risk == pytest.approx(float(population_risk(exact, task)), rel=1e-10)
    x = task.sample(10, rng=np.random.default_rng(3)).x
    manual = (torch.relu(x @ exact.weights.T) * (x @ exact.directions.T)).sum(1) + exact.offset
    torch.testing.assert_close(exact.predict(x), manual)
    # least squares on p = N·d + 1 features: excess ≈ R*·p/n (band [0.5, 2], 4 data sets)
    p = regime.width * task.dim + 1
    for n in (2000, 32000):
        excess = np.mean([float(population_risk(regime.fit(
            task.sample(n, rng=np.random.default_rng(50 + s)), rng=np.random.default_rng(2)),
            task)) - risk for s in range(4)])
        assert 0.5 < excess * n / (p * risk) < 2.0, (n, excess)


def test_deep_semi_random_network_learns():
    task = _task(noise=0.0, dim=4)
    data = task.sample(1000, rng=np.random.default_rng(5))
    test = task.sample(2000, rng=np.random.default_rng(6))
    model = DeepSemiRandom(width=24, depth=2, degree=0, learning_rate=1e-2, steps=600,
                           batch_size=50).fit(data, rng=np.random.default_rng(7))
    assert isinstance(model, DeepSemiRandomModel) and len(model.trainable) == 2
    assert model.diagnostics["steps"] == 600
    assert empirical_risk(model, test) < 0.1 * task.null_risk
    # random path frozen and shared with depth 1: the first switching layer is the same draw
    first = SemiRandom(width=24, degree=0).fit(data, rng=np.random.default_rng(7))
    assert torch.equal(model.random[0][0], first.weights)


def test_deep_semi_random_at_infinity_trains_online_on_fresh_samples():
    task = _task(noise=0.0, dim=4)
    model = DeepSemiRandom(width=16, depth=2, steps=200, learning_rate=3e-3).fit(
        task, rng=np.random.default_rng(0))
    assert empirical_risk(model, task.sample(2000, rng=np.random.default_rng(1))) < 0.5 * task.null_risk


def test_bad_inputs():
    for kwargs, field in (({"degree": 2}, "degree"), ({"degree": True}, "degree"),
                          ({"depth": 0}, "depth"), ({"width": 0}, "width"),
                          ({"ridge": -1}, "ridge"), ({"solver": "lbfgs"}, "solver"),
                          ({"tol": 0.0}, "tol"), ({"max_iter": 0}, "max_iter")):
        with pytest.raises(ValueError, match=field):
            SemiRandom(**kwargs)
    for kwargs, field in (({"degree": 2}, "degree"), ({"depth": 1}, "depth"),
                          ({"width": 0}, "width"), ({"weight_decay": -1}, "weight_decay"),
                          ({"optimizer": "lbfgs"}, "optimizer"),
                          ({"learning_rate": 0.0}, "learning_rate"), ({"steps": 0}, "steps"),
                          ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=field):
            DeepSemiRandom(**kwargs)


def test_semi_random_of_depth_two_points_to_the_deep_regime():
    with pytest.raises(ValueError, match="depth=2.*DeepSemiRandom.*deep_semi_random"):
        SemiRandom(depth=2)
    with pytest.raises(TypeError):      # the training fields belong to DeepSemiRandom only
        SemiRandom(steps=10)
