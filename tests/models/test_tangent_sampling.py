"""The per-step draws of NT online SGD (models._tangent_online.batch_draw): which stream they
are, that a seed reproduces it, and that the task's distribution is kept (moments of the
draws, tests/tasks/test_samplers.py, run here on the SFC64 child stream the fit uses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.models._common import draw_weights
from lazylab.models._tangent_solvers import online_sgd
from lazylab.models.neural_tangent import GatedFeatures, NeuralTangent
from lazylab.tasks import TASKS
from tasks import K_SIGMA

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = dict(learning_rate=0.1, batch_size=20, steps=150, tol=1e-12)


def _task(noise=0.2):
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, noise=noise)


def test_nt_sgd_draws_the_documented_stream():
    """W from ``rng`` first, then one integer seeds an SFC64 generator whose stream feeds the
    task's float64 batch_sampler: the fit equals online_sgd on that stream, bit for bit."""
    task = _task()
    model = NeuralTangent(width=3, solver="sgd", learning_rate=0.1, batch_size=20, steps=150,
                          sgd_tol=1e-12).fit(task, rng=np.random.default_rng(4))
    rng = np.random.default_rng(4)
    weights = draw_weights(rng, 3, task.dim)
    stream = np.random.Generator(np.random.SFC64(int(rng.integers(2 ** 63))))
    relu = get_activation("relu")
    result = online_sgd(GatedFeatures(weights, relu.derivative()),
                        task.batch_sampler(rng=stream, dtype=torch.float64), **OPTIONS)
    assert torch.equal(model.weights, weights)
    assert torch.equal(model.directions.reshape(-1), result.vector)
    assert model.offset == result.offset


def test_nt_sgd_same_seed_same_fit_other_seed_other_fit():
    task = _task()
    net = NeuralTangent(width=3, solver="sgd", learning_rate=0.1, batch_size=20, steps=150,
                        sgd_tol=1e-12)
    first, second, third = (net.fit(task, rng=np.random.default_rng(s)) for s in (6, 6, 7))
    assert torch.equal(first.directions, second.directions) and first.offset == second.offset
    assert not torch.allclose(first.directions, third.directions)


def test_nt_sgd_stream_keeps_the_quadratic_distribution():
    """The SFC64-fed draws: E y = Tr B + b0 and Var y = 2‖B‖_F² + noise² within 5 standard
    errors (cumulants as in tests/tasks/test_samplers.py), x's second moments within 5σ of I."""
    task = TASKS["quadratic"](rng=np.random.default_rng(3), dim=8, centered=False, noise=0.4)
    stream = np.random.Generator(np.random.SFC64(int(np.random.default_rng(1).integers(2 ** 63))))
    draw = task.batch_sampler(rng=stream, dtype=torch.float64)
    m = 100_000
    x, y = (torch.cat(parts) for parts in zip(*(draw(100) for _ in range(m // 100))))
    eigenvalues = torch.linalg.eigvalsh(task.matrix)
    kappa2 = 2 * float((eigenvalues ** 2).sum()) + task.noise ** 2
    kappa4 = 48 * float((eigenvalues ** 4).sum())
    assert abs(float(y.mean()) - task.target_mean()) < K_SIGMA * math.sqrt(kappa2 / m)
    assert abs(float(y.var()) - task.null_risk) < K_SIGMA * math.sqrt((kappa4 + 2 * kappa2 ** 2) / m)
    identity = torch.eye(task.dim, dtype=torch.float64)
    assert torch.all((x.T @ x / m - identity).abs() < K_SIGMA * torch.sqrt((1 + identity) / m))
