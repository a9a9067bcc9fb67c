"""NeuralTangent: the features are the network's first-order Taylor term (torch.func.jvp), the
matrix-free CG equals the direct solve, the sample fit converges to the exact n = ∞ fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jvp

from lazylab.activations import get_activation
from lazylab.models import NeuralTangent, NeuralTangentModel
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.risk import population_risk
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
