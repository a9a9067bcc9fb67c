"""Closed-form risk of the quadratic-activation network against the general engine and Monte Carlo.

Tolerances: the engine computes E y² − 2E[yf] + E f² with dual matrices, the closed form the
completed squares; both are float64 sums of O(N²) terms of size O(risk), so they agree to
~1e-13 relative at risks of order one — checked at 1e-10. Monte Carlo: k = 5 standard errors
(two-sided normal failure probability 6e-7 per check), fixed seeds.
"""

import math

import numpy as np
import pytest
import torch

from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.risk.quadratic import (_QuadraticForm, quadratic_matrix_risk,
                                    quadratic_network_risk)
from lazylab.tasks import TASKS
from lazylab.tasks.mixture import GaussianMixture
from lazylab.tasks.quadratic import Quadratic

pytestmark = pytest.mark.usefixtures("one_thread")


def _parameters(width, dim, seed):
    g = np.random.default_rng(seed)
    weights = torch.from_numpy(g.standard_normal((width, dim))) / math.sqrt(dim)
    head = torch.from_numpy(g.standard_normal(width))
    return weights, head, float(g.standard_normal())


def _tasks(dim):
    g = np.random.default_rng(7)
    rotated = TASKS["gaussian_mixture"](rng=g, dim=dim, delta="paper-rotated")
    covariance = torch.from_numpy(np.diag(g.uniform(1.0, 2.0, dim)))
    mixed = np.linalg.qr(g.standard_normal((dim, dim)))[0]
    full = torch.from_numpy(mixed @ np.diag(g.uniform(1.0, 2.0, dim)) @ mixed.T)
    return {
        "quadratic exp-diagonal": TASKS["quadratic"](rng=g, dim=dim),
        "quadratic random-psd uncentered noisy": TASKS["quadratic"](
            rng=g, dim=dim, matrix="random-psd", centered=False, noise=0.3),
        "mixture paper": TASKS["gaussian_mixture"](rng=g, dim=dim, noise=0.2),
        "mixture paper-rotated": rotated,
        "mixture diagonal covariance": GaussianMixture(delta=rotated.delta * 0.5,
                                                       covariance=covariance),
        "mixture full covariance": GaussianMixture(delta=rotated.delta * 0.5, covariance=full),
    }


def _engine(task, weights, head, offset):
    model = TwoLayer("quadratic", weights, head, offset=offset)
    return population_risk(model, task)


@pytest.mark.parametrize("width", [3, 9, 14])   # N < d, N = d − 1 and N > d (both trace routes)
@pytest.mark.parametrize("name", list(_tasks(10)))
def test_equals_the_general_engine(name, width):
    task = _tasks(10)[name]
    weights, head, offset = _parameters(width, 10, width)
    exact = float(quadratic_network_risk(task, weights, head, offset))
    engine = float(_engine(task, weights, head, offset))
    assert exact == pytest.approx(engine, rel=1e-10)
    assert exact >= task.noise ** 2


@pytest.mark.parametrize("width", [5, 12])     # the N × N route and M's hand-written backward
@pytest.mark.parametrize("name", ["quadratic random-psd uncentered noisy",
                                  "mixture full covariance"])
def test_gradients_equal_the_engines(name, width):
    task = _tasks(8)[name]
    values = _parameters(width, 8, 1)
    grads = []
    for risk in (quadratic_network_risk, _engine):
        weights, head = (v.clone().requires_grad_(True) for v in values[:2])
        offset = torch.tensor(values[2], dtype=torch.float64, requires_grad=True)
        risk(task, weights, head, offset).backward()
        grads.append(torch.cat([weights.grad.ravel(), head.grad, offset.grad[None]]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-11)


def test_the_quadratic_form_backward_passes_gradcheck_twice():
    weights, head, _ = _parameters(6, 4, 3)
    inputs = (weights.requires_grad_(True), head.requires_grad_(True))
    assert torch.autograd.gradcheck(_QuadraticForm.apply, inputs)
    assert torch.autograd.gradgradcheck(_QuadraticForm.apply, inputs)


def test_theorem3_value_at_the_top_eigenvectors():
    """W = top-N eigenvectors scaled by √λ, a = 1, c = −Tr M (centered target): R = 2 Σ_{i>N} λ_i²."""
    task = TASKS["quadratic"](rng=np.random.default_rng(3), dim=12, matrix="random-psd")
    values, vectors = torch.linalg.eigh(task.matrix)
    top = vectors[:, -5:] * values[-5:].sqrt()
    offset = -float(torch.sum(values[-5:]))
    risk = quadratic_network_risk(task, top.T.contiguous(), torch.ones(5, dtype=torch.float64),
                                  offset)
    expected = 2 * float(torch.sum(values[:-5] ** 2))
    assert float(risk) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["quadratic random-psd uncentered noisy", "mixture paper-rotated"])
def test_agrees_with_monte_carlo(name):
    task = _tasks(6)[name]
    weights, head, offset = _parameters(4, 6, 2)
    data = task.sample(200_000, rng=np.random.default_rng(11))
    prediction = ((data.x @ weights.T) ** 2) @ head + offset
    errors = (data.y - prediction) ** 2
    standard_error = float(errors.std()) / math.sqrt(errors.numel())
    exact = float(quadratic_network_risk(task, weights, head, offset))
    assert abs(float(errors.mean()) - exact) <= 5 * standard_error


def test_unsupported_task_and_bad_shapes_are_named():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=4)
    weights, head, _ = _parameters(3, 4, 0)
    with pytest.raises(TypeError, match="supports tasks Quadratic, GaussianMixture"):
        quadratic_network_risk(TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4),
                               weights, head)
    with pytest.raises(ValueError, match=r"weights must have shape \(width, dim=4\)"):
        quadratic_network_risk(task, weights[:, :3], head)
    with pytest.raises(ValueError, match=r"head must have shape \(3,\)"):
        quadratic_network_risk(task, weights, head[:2])
    with pytest.raises(TypeError, match="weights must be a float64"):
        quadratic_network_risk(task, weights.float(), head)
    assert isinstance(task, Quadratic)


@pytest.mark.parametrize("name", list(_tasks(10)))
def test_matrix_form_is_the_network_risk_at_m(name):
    """quadratic_matrix_risk(M = Wᵀdiag(a)W, c) equals the network form at N < d (the Gram
    route, no M formed) and N > d to 1e-12 relative: the same function of (M, c)."""
    task = _tasks(10)[name]
    for width in (4, 14):
        weights, head, offset = _parameters(width, 10, width)
        m = (weights * head[:, None]).T @ weights
        assert float(quadratic_matrix_risk(task, m, offset)) == pytest.approx(
            float(quadratic_network_risk(task, weights, head, offset)), rel=1e-12)


def test_matrix_form_names_bad_input():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=4)
    with pytest.raises(ValueError, match=r"matrix must be a tensor of shape \(4, 4\)"):
        quadratic_matrix_risk(task, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="supports tasks Quadratic, GaussianMixture"):
        quadratic_matrix_risk(TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4),
                              torch.zeros(4, 4, dtype=torch.float64))
