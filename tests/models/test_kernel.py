"""Kernel: the dual-activation kernels against closed forms and Monte Carlo over w, the fits, and
the refusal of n = ∞."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.models import Kernel
from lazylab.models.kernel import DualKernel
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.risk import empirical_risk
from lazylab.tasks import TASKS


def _points(n, dim, seed):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, dim)))


def test_relu_kernels_are_the_arc_cosine_closed_forms():
    dim = 7
    x, y = _points(5, dim, 0), _points(4, dim, 1)
    nx, ny = x.norm(dim=1)[:, None], y.norm(dim=1)[None, :]
    cos = (x @ y.T / (nx * ny)).clamp(-1, 1)
    theta = torch.arccos(cos)
    arc1 = nx * ny * (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi) / dim
    arc0 = (math.pi - theta) / (2 * math.pi)
    torch.testing.assert_close(DualKernel("rf")(x, y), arc1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("ntk")(x, y), arc1 + (x @ y.T / dim) * arc0,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("semi_random", degree=0)(x, y), (x @ y.T / dim) * arc0,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("semi_random", degree=1)(x, y),
                               (x @ y.T / dim) * arc1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["rf", "ntk"])
def test_tanh_kernels_match_monte_carlo_over_the_weights(kind):
    # K is an expectation over w ~ N(0, I/d); m = 2·10⁵ draws, tolerance 5 standard errors
    # per entry (all 12 entries pass with probability > 1 − 12·6e-7).
    dim, m = 6, 200_000
    x, y = _points(3, dim, 2), _points(4, dim, 3)
    w = _points(m, dim, 4) / math.sqrt(dim)
    u, v = x @ w.T, y @ w.T
    samples = torch.tanh(u)[:, None, :] * torch.tanh(v)[None, :, :]
    if kind == "ntk":
        samples = samples + (x @ y.T / dim)[:, :, None] * ((1 - torch.tanh(u) ** 2)[:, None, :]
                                                           * (1 - torch.tanh(v) ** 2)[None, :, :])
    mean, se = samples.mean(-1), samples.std(-1) / math.sqrt(m)
    exact = DualKernel(kind, "tanh")(x, y)
    assert torch.all((exact - mean).abs() < 5 * se), (exact - mean) / se


def test_semi_random_feature_gram_approaches_the_semi_random_kernel():
    # SemiRandom features φ_i(x) = σ_s(r_i·x) x, r_i ~ N(0, I/d): F Fᵀ/(N d) → K_s entrywise with
    # O(1/√N) Monte Carlo error, so the max gap shrinks by ~4 from N = 250 to 4000.
    dim, x = 3, _points(60, 3, 5)
    for degree, gate in ((0, "step"), (1, "relu")):
        kernel = DualKernel("semi_random", degree=degree)(x, x)
        gaps = []
        for width in (250, 4000):
            weights = _points(width, dim, 6) / math.sqrt(dim)
            features = GatedFeatures(weights, get_activation(gate)).matrix(x)
            gaps.append(float((features @ features.T / (width * dim) - kernel).abs().max()))
        assert 2.0 < gaps[0] / gaps[1] < 8.0 and gaps[1] < 0.05 * float(kernel.abs().max()), gaps


def test_kernel_fits_and_falkon_path():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4, noise=0.1)
    data = task.sample(400, rng=np.random.default_rng(1))
    test = task.sample(1000, rng=np.random.default_rng(2))
    exact = Kernel(kind="ntk", ridge=1e-4).fit(data, rng=np.random.default_rng(3))
    assert empirical_risk(exact, test) < 0.1 * task.null_risk
    falkon = Kernel(kind="ntk", ridge=1e-4, method="falkon", n_centers=150).fit(
        data, rng=np.random.default_rng(3))
    assert falkon.diagnostics["n_centers"] == 150 and falkon.diagnostics["cg_iterations"] > 0
    assert empirical_risk(falkon, test) < 1.5 * empirical_risk(exact, test) + 0.01


def test_bad_inputs_and_no_population_fit():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4)
    with pytest.raises(ValueError, match="kernel ridge needs samples"):
        Kernel().fit(task, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="kind"):
        Kernel(kind="laplace")
    with pytest.raises(ValueError, match="degree"):
        Kernel(kind="semi_random", degree=3)
    with pytest.raises(ValueError, match="unknown activation"):
        Kernel(activation="gelu2")
    with pytest.raises(ValueError, match="step"):
        Kernel(kind="ntk", activation="step")
    with pytest.raises(ValueError, match="ridge"):
        Kernel(ridge=-0.1)
