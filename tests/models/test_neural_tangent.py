"""NeuralTangent: the features are the network's first-order Taylor term (torch.func.jvp), the
matrix-free CG equals the direct solve, the sample fit converges to the exact n = ∞ fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jvp

from lazylab.activations import get_activation
from lazylab.errors import DivergenceError
from lazylab.models import NeuralTangent, NeuralTangentModel, neural_tangent
from lazylab.models._tangent_solvers import online_sgd
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.risk import population_risk
from lazylab.solvers import solve_ridge
from lazylab.tasks import TASKS


def _task(noise=0.5, dim=6):
    return TASKS["single_neuron"](rng=np.random.default_rng(0), dim=dim, noise=noise)


@pytest.mark.parametrize("activation", ["relu", "tanh", "quadratic"])
def test_tangent_features_are_the_first_order_taylor_term(activation):
    sigma = get_activation(activation)
    g = np.random.default_rng(0)
    n, width, dim = 40, 7, 5
    x = torch.from_numpy(g.standard_normal((n, dim)))
    weights = torch.from_numpy(g.standard_normal((width, dim))) / np.sqrt(dim)
    head = torch.from_numpy(g.standard_normal(width))
    direction = torch.from_numpy(g.standard_normal((width, dim)))

    def network(w):
        return sigma.function(x @ w.T) @ head

    _, taylor = jvp(network, (weights,), (direction,))
    features = GatedFeatures(weights, sigma.derivative())
    # d/dt f(x; W + tA, a)|₀ = Σ_i a_i σ′(w_i·x)⟨A_i, x⟩: the NT features with directions a_i A_i
    coefficients = head[:, None] * direction
    from_matrix = features.matrix(x) @ coefficients.reshape(-1)
    from_blocks = features.apply(x, coefficients.reshape(-1))
    model = NeuralTangentModel(sigma, weights, coefficients)
    for value in (from_matrix, from_blocks, model.predict(x)):
        torch.testing.assert_close(value, taylor, rtol=1e-12, atol=1e-12)
    # with the head trained too: the jvp in (W, a) adds Σ_i h_i σ(w_i·x)
    dhead = torch.from_numpy(g.standard_normal(width))
    _, both = jvp(lambda w, a: sigma.function(x @ w.T) @ a, (weights, head), (direction, dhead))
    full = GatedFeatures(weights, sigma.derivative(), sigma)
    torch.testing.assert_close(full.apply(x, full.pack(coefficients, dhead)), both,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(NeuralTangentModel(sigma, weights, coefficients, head=dhead)
                               .predict(x), both, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("train_head", [False, True])
def test_matrix_free_cg_equals_the_direct_solve(train_head):
    data = _task().sample(800, rng=np.random.default_rng(1))
    fits = {solver: NeuralTangent(width=6, train_head=train_head, ridge=1e-4, solver=solver)
            .fit(data, rng=np.random.default_rng(2)) for solver in ("direct", "cg")}
    assert fits["cg"].diagnostics["cg_converged"] == 1.0
    assert fits["cg"].diagnostics["cg_iterations"] > 0 == fits["direct"].diagnostics["cg_iterations"]
    torch.testing.assert_close(fits["cg"].directions, fits["direct"].directions, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(fits["cg"].offset, fits["direct"].offset, rtol=1e-6, atol=1e-8)
    if train_head:
        torch.testing.assert_close(fits["cg"].head, fits["direct"].head, rtol=1e-6, atol=1e-8)


def test_cg_gram_operator_is_the_feature_gram():
    g = np.random.default_rng(3)
    x = torch.from_numpy(g.standard_normal((30, 4)))
    features = GatedFeatures(torch.from_numpy(g.standard_normal((3, 4))), get_activation("step"),
                             get_activation("relu"))
    v = torch.from_numpy(g.standard_normal(features.size))
    matrix = features.matrix(x)
    torch.testing.assert_close(features.gram_apply(x, v), matrix.T @ (matrix @ v))
    rhs, total, diagonal = features.moments(x, x[:, 0])
    torch.testing.assert_close(rhs, matrix.T @ x[:, 0])
    torch.testing.assert_close(total, matrix.sum(0))
    torch.testing.assert_close(diagonal, (matrix ** 2).sum(0))


@pytest.mark.parametrize("train_head", [False, True])
def test_sample_fit_converges_to_the_population_fit_at_rate_p_over_n(train_head):
    # as for RF: E[R(Â_n)] − R* ≈ R*·p/n with p = N·d (+ N) + 1 (measured 0.91–1.03 without
    # head over n = 1e3…6.4e4); band [0.5, 2] at two sample sizes, 4 data sets each.
    task = _task()
    regime = NeuralTangent(width=4, train_head=train_head)
    exact = regime.fit(task, rng=np.random.default_rng(1))
    risk = exact.diagnostics["population_risk"]
    assert exact.diagnostics["cg_converged"] == 1.0
    p = regime.width * (task.dim + int(train_head)) + 1
    for n in (1000, 16000):
        excess = np.mean([float(population_risk(regime.fit(
            task.sample(n, rng=np.random.default_rng(100 + s)), rng=np.random.default_rng(1)),
            task)) - risk for s in range(4)])
        assert 0.5 < excess * n / (p * risk) < 2.0, (n, excess)


def test_bad_inputs():
    with pytest.raises(ValueError, match="width"):
        NeuralTangent(width=-2)
    with pytest.raises(ValueError, match="ridge"):
        NeuralTangent(ridge=float("nan"))
    with pytest.raises(ValueError, match="solver"):
        NeuralTangent(solver="lsqr")
    with pytest.raises(ValueError, match="step"):
        NeuralTangent(activation="step")     # σ′ is a Dirac mass
    with pytest.raises(ValueError, match="unknown activation"):
        NeuralTangent(activation="swish")
    with pytest.raises(ValueError, match="max_iter"):
        NeuralTangent(max_iter=0)
    with pytest.raises(ValueError, match="sgd_tol"):
        NeuralTangent(sgd_tol=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        NeuralTangent(learning_rate=float("inf"))


def _relative(a, b):
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("activation,train_head,ridge", [
    ("relu", False, 0.0), ("relu", False, 1e-3), ("tanh", True, 1e-4), ("quadratic", False, 1e-4)])
def test_kronecker_preconditioned_cg_equals_the_dense_solution_to_1e_8(activation, train_head,
                                                                        ridge):
    # tol = 1e-13 on the normal-equation residual; the systems have condition ≲ 10⁴, so the
    # solution error is ≲ 1e-9 relative.
    data = _task(dim=8).sample(3000, rng=np.random.default_rng(4))
    fits = {solver: NeuralTangent(width=5, activation=activation, train_head=train_head,
                                  ridge=ridge, solver=solver, tol=1e-13)
            .fit(data, rng=np.random.default_rng(5)) for solver in ("direct", "cg")}
    assert fits["cg"].diagnostics["cg_converged"] == 1.0
    assert fits["cg"].diagnostics["cg_iterations"] <= 100
    assert _relative(fits["cg"].directions, fits["direct"].directions) < 1e-8
    assert abs(float(fits["cg"].offset - fits["direct"].offset)) < 1e-8 * float(data.y.abs().mean())
    if train_head:
        assert _relative(fits["cg"].head, fits["direct"].head) < 1e-8


def test_auto_switches_to_cg_above_the_dense_size(monkeypatch):
    data = _task().sample(400, rng=np.random.default_rng(6))
    small = NeuralTangent(width=3, ridge=1e-3).fit(data, rng=np.random.default_rng(7))
    assert small.diagnostics["cg_iterations"] == 0
    monkeypatch.setattr(neural_tangent, "DIRECT_ENTRIES", 400 * 3 * 6 - 1)
    large = NeuralTangent(width=3, ridge=1e-3).fit(data, rng=np.random.default_rng(7))
    assert large.diagnostics["cg_iterations"] > 0 and large.diagnostics["cg_converged"] == 1.0
    assert _relative(large.directions, small.directions) < 1e-8


def test_cached_gates_give_the_same_products():
    g = np.random.default_rng(8)
    x = torch.from_numpy(g.standard_normal((50, 4)))
    features = GatedFeatures(torch.from_numpy(g.standard_normal((3, 4))), get_activation("step"),
                             get_activation("relu"))
    v = torch.from_numpy(g.standard_normal(features.size))
    cache = features.cache(x)
    assert cache is not None
    torch.testing.assert_close(features.gram_apply(x, v, cache), features.gram_apply(x, v),
                               rtol=1e-14, atol=1e-12)
    torch.testing.assert_close(features.apply(x, v, cache), features.apply(x, v),
                               rtol=1e-14, atol=1e-12)


def test_sgd_fixed_point_is_the_least_squares_solution():
    # Monte Carlo-free: the SGD update with a "draw" that always returns the same n samples is
    # gradient descent on (1/2n)‖y − c − Φv‖² + (λ/2)‖v‖², whose fixed point is the ridge
    # solution of the same λ (the regime's convention). Stop at relative loss change 1e-15.
    data = _task(dim=4).sample(200, rng=np.random.default_rng(9))
    weights = torch.from_numpy(np.random.default_rng(10).standard_normal((3, 4)) / 2)
    features = GatedFeatures(weights, get_activation("tanh").derivative(), get_activation("tanh"))
    result = online_sgd(features, lambda b: (data.x, data.y), learning_rate=1.0, batch_size=200,
                        steps=200_000, tol=1e-15, ridge=1e-2)
    dense = solve_ridge(features.matrix(data.x), data.y, ridge=1e-2, fit_intercept=True)
    assert _relative(result.vector, dense.coef) < 1e-6
    assert abs(result.offset - float(dense.intercept)) < 1e-6


def test_online_sgd_reaches_the_population_optimum():
    # Online SGD (fresh samples each step) at learning_rate 0.02 stops within the gradient-noise
    # excess ≈ learning_rate/2 = 1 % of the exact n = ∞ NT risk (measured 0.18 %); band 3 %.
    task = _task(dim=8)
    exact = NeuralTangent(width=4).fit(task, rng=np.random.default_rng(2))
    sgd = NeuralTangent(width=4, solver="sgd", learning_rate=0.02, batch_size=100,
                        steps=20_000).fit(task, rng=np.random.default_rng(2))
    torch.testing.assert_close(sgd.weights, exact.weights)
    assert sgd.diagnostics["converged"] == 1.0
    assert sgd.diagnostics["samples_seen"] == 100 * sgd.diagnostics["steps"]
    optimum = exact.diagnostics["population_risk"]
    assert optimum <= float(population_risk(sgd, task)) < 1.03 * optimum


def test_sgd_divergence_raises():
    data = _task().sample(300, rng=np.random.default_rng(11))
    with pytest.raises(DivergenceError, match="diverged"):
        NeuralTangent(width=3, solver="sgd", learning_rate=50.0, batch_size=30,
                      steps=5000).fit(data, rng=np.random.default_rng(12))


@pytest.mark.parametrize("n, train_head", [(60, False), (60, True), (10, True)])
def test_ridge_path_equals_the_direct_fit_per_ridge(n, train_head):
    # Same W; one eigendecomposition (primal at n = 60 ≥ Nd, dual at n = 10) against the direct
    # solve per λ: agreeing to ~Nd·ε·cond ≲ 1e-10; checked at 1e-8 relative on predictions.
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4, noise=0.2)
    data = task.sample(n, rng=np.random.default_rng(1))
    test = task.sample(200, rng=np.random.default_rng(2))
    ridges = [1e-6, 1e-3, 1.0, 0.0]
    regime = NeuralTangent(width=3, train_head=train_head)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    for ridge, model in zip(ridges, path):
        single = NeuralTangent(width=3, train_head=train_head, ridge=ridge, solver="direct").fit(
            data, rng=np.random.default_rng(3))
        expected = single.predict(test.x)
        error = torch.linalg.vector_norm(model.predict(test.x) - expected)
        assert error <= 1e-8 * torch.linalg.vector_norm(expected), ridge
        assert set(model.diagnostics) == set(single.diagnostics)
    declined = NeuralTangent(width=3, solver="sgd")  # "cg": tests/models/test_tangent_path.py
    assert declined.fit_path(data, ridges, rng=np.random.default_rng(3)) is None
    assert regime.fit_path(task, ridges, rng=np.random.default_rng(3)) is None
