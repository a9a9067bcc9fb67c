"""Network diagnostics: tangent-kernel change, target alignment, incremental-learning monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.models import Network
from lazylab.models._network_diagnostics import (LearningMonitor, quadratic_kernel_change,
                                                  tangent_gram)
from lazylab.models._network_training import Scales
from lazylab.tasks import TASKS
from lazylab.tasks.quadratic import quadratic
from lazylab.theory import incremental_learning_times

_FIRST = Scales(input=1.0, output=1.0, u_std=1.0, v_std=1.0, gradient=1.0)


def _gram_change(w0, wt, x):
    quad, ones = get_activation("quadratic"), torch.ones(w0.shape[0], dtype=torch.float64)
    grams = [tangent_gram(quad, w, ones, None, x, scales=_FIRST, layers=("u",)) for w in (wt, w0)]
    return float(torch.linalg.norm(grams[0] - grams[1]) / torch.linalg.norm(grams[1]))


def test_population_kernel_change_matches_monte_carlo_probe_sets():
    """The closed form (d + 6)‖Δ‖² + 2(TrΔ)² against the probe Gram on 6 independent probe
    sets of 1500 points: within 4 s.e. of their mean."""
    rng = np.random.default_rng(0)
    dim, width = 5, 3
    w0 = torch.from_numpy(rng.standard_normal((width, dim)) / math.sqrt(dim))
    wt = w0 + torch.from_numpy(0.5 * rng.standard_normal((width, dim)))
    exact = quadratic_kernel_change(w0.T @ w0, wt.T @ wt)
    draws = [_gram_change(w0, wt, torch.from_numpy(rng.standard_normal((1500, dim))))
             for _ in range(6)]
    sem = np.std(draws, ddof=1) / math.sqrt(len(draws))
    assert abs(np.mean(draws) - exact) < 4 * sem + 1e-3 * exact
    assert sem < 0.05 * exact                       # the check has power


def test_lazy_quadratic_network_reports_exact_kernel_change_and_alignment():
    """Head at ones: K_T − K₀ ∝ WᵀW − W₀ᵀW₀ = F/α, so α·kernel change is ‖F‖_K/‖M₀‖_K; the
    diagnostics equal the closed forms on the fitted predictor's units (W then W₀)."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=12, matrix="exp-diagonal")
    values, vectors = np.linalg.eigh(task.matrix.numpy())
    top = torch.from_numpy(vectors[:, ::-1][:, :4].copy())
    change = {}
    for alpha in (100.0, 1000.0):
        net = Network(width=4, activation="quadratic", train="first", head_init="ones",
                      weight_scale=0.3, laziness=alpha, learning_rate=0.02, momentum=0.9,
                      tol=1e-9, max_steps=20_000)
        fitted = net.fit(task, rng=np.random.default_rng(3))
        w, w0 = fitted.weights[:4], fitted.weights[4:]
        diagnostics = fitted.diagnostics
        assert diagnostics["kernel_change_population"] == pytest.approx(
            quadratic_kernel_change(w0.T @ w0, w.T @ w), rel=1e-10)
        for key, weights in (("alignment", w), ("alignment_initial", w0)):
            assert diagnostics[key] == pytest.approx(
                float(torch.sum((weights @ top) ** 2) / torch.sum(weights ** 2)), rel=1e-10)
        change[alpha] = diagnostics["kernel_change_population"]
        assert diagnostics["kernel_change"] > 0
    # the learned F tends to the NT fit: α·change is constant up to O(1/α)
    assert change[100.0] / change[1000.0] == pytest.approx(10.0, rel=0.03)


def test_alignment_at_initialization_is_the_subspace_share():
    """E A₀ = r/d for isotropic W₀ (r = N here): the mean over 40 draws within 4 s.e."""
    task = TASKS["quadratic"](rng=np.random.default_rng(1), dim=20, matrix="exp-diagonal")
    net = Network(width=5, activation="quadratic", train="first", head_init="ones",
                  learning_rate=1e-3, steps=1)
    values = [net.fit(task, rng=np.random.default_rng(seed)).diagnostics["alignment_initial"]
              for seed in range(40)]
    sem = np.std(values, ddof=1) / math.sqrt(len(values))
    assert abs(np.mean(values) - 5 / 20) < 4 * sem


def test_monitor_interpolates_an_exponential_crossing_exactly():
    """m(t) = m₀e^{rt} observed every 7 steps: log-linear interpolation is exact."""
    monitor = LearningMonitor(torch.tensor([1.0, 0.5]), torch.eye(3)[:, :2])
    m0, rates = np.array([1e-6, 1e-6]), np.array([0.05, 0.02])
    for step in range(0, 2000, 7):
        m = m0 * np.exp(rates * step)
        weights = torch.tensor(np.diag(np.sqrt(np.r_[m, 0.0])))
        monitor.observe(step, weights, torch.ones(3, dtype=torch.float64))
    expected = np.log(np.array([0.5, 0.25]) / m0) / rates
    learned = monitor.diagnostics()
    assert [learned["learned_step_1"], learned["learned_step_2"]] == pytest.approx(expected,
                                                                                    rel=1e-9)


def test_learned_steps_follow_the_linearized_theory():
    """B = diag(1, 1/2, 1/4) (preset "geometric"), d = N = 6, one W₀ scaled to s = 1e-3 and
    1e-5: the step differences are log(10⁴)/(2 log(1 + 8ηλ_k)) (the O(1) terms cancel within
    a seed) within 3 % (the theory module measured ≤ 1.5 % for the slope); the order is λ's."""
    task = quadratic(rng=np.random.default_rng(0), dim=6, matrix="geometric", rank=3)
    steps = {}
    for scale in (1e-3, 1e-5):
        net = Network(width=6, activation="quadratic", train="first", head_init="ones",
                      weight_scale=scale, learning_rate=0.01, tol=1e-6, max_steps=20_000,
                      track_every=3)
        found = net.fit(task, rng=np.random.default_rng(4)).diagnostics
        steps[scale] = np.array([found[f"learned_step_{k}"] for k in (1, 2, 3)])
        assert (np.diff(steps[scale]) > 0).all()
        assert "learned_step_4" not in found                # only B's positive directions
    theory = np.diff(incremental_learning_times([1.0, 0.5, 0.25], [1e-3, 1e-5], 0.01), axis=0)
    assert steps[1e-5] - steps[1e-3] == pytest.approx(theory[0], rel=0.03)


def test_diagnostics_only_where_they_apply():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5)
    data = task.sample(200, rng=np.random.default_rng(1))
    found = Network(width=8, activation="relu", learning_rate=0.05, steps=20,
                    track_every=1).fit(data, rng=np.random.default_rng(0)).diagnostics
    assert found["kernel_change"] > 0
    assert not any(k.startswith(("alignment", "learned_step", "kernel_change_population"))
                   for k in found)
    with pytest.raises(ValueError, match="track_every"):
        Network(track_every=0)
