"""RandomFeatures: the sample fit converges to the exact n = ∞ fit at the 1/n rate, the large-width
limit is the rf kernel at the 1/√N Monte Carlo rate, solver paths agree, inputs are validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.models import Kernel, RandomFeatures, TwoLayer
from lazylab.models import random_features as rf_module
from lazylab.risk import population_risk
from lazylab.tasks import TASKS, Dataset


def _task(noise=0.5, dim=6):
    return TASKS["single_neuron"](rng=np.random.default_rng(0), dim=dim, noise=noise)


def _excess(regime, task, exact_risk, n, seeds=4):
    values = []
    for seed in range(seeds):
        data = task.sample(n, rng=np.random.default_rng(100 + seed))
        model = regime.fit(data, rng=np.random.default_rng(1))
        values.append(float(population_risk(model, task)) - exact_risk)
    return float(np.mean(values))


def test_sample_fit_converges_to_the_population_fit_at_rate_p_over_n():
    # Least squares on p features with independent-ish residuals: E[R(â_n)] − R* ≈ R*·p/n
    # (measured ratios 0.82–1.04 over n = 1e3…6.4e4, mean of 4 data sets); the band [0.5, 2]
    # fails if the fits disagree (excess does not vanish) or the rate is not 1/n.
    task, regime = _task(), RandomFeatures(width=12)
    exact = regime.fit(task, rng=np.random.default_rng(1))
    risk = exact.diagnostics["population_risk"]
    assert risk == pytest.approx(float(population_risk(exact, task)), rel=1e-12)
    for n in (1000, 16000):
        ratio = _excess(regime, task, risk, n) * n / ((regime.width + 1) * risk)
        assert 0.5 < ratio < 2.0, (n, ratio)


def test_same_rng_same_first_layer_for_samples_and_population():
    task = _task()
    data = task.sample(50, rng=np.random.default_rng(3))
    regime = RandomFeatures(width=7, biases="gaussian", bias_scale=0.5)
    a = regime.fit(task, rng=np.random.default_rng(9))
    b = regime.fit(data, rng=np.random.default_rng(9))
    assert torch.equal(a.weights, b.weights) and torch.equal(a.biases, b.biases)
    g = np.random.default_rng(9)
    assert torch.equal(a.weights, torch.from_numpy(g.standard_normal((7, 6))) / np.sqrt(6))
    assert torch.equal(a.biases, 0.5 * torch.from_numpy(g.standard_normal(7)))


def test_large_width_approaches_the_rf_kernel_at_the_monte_carlo_rate():
    # F Fᵀ/N → K with O(1/√N) fluctuations, so RF(ridge = N λ, no offset) → Kernel("rf", λ):
    # the rms prediction gap should shrink by ~√16 = 4 from N = 500 to 8000 (3 seeds averaged;
    # a systematic bias, e.g. a wrong kernel normalization, would stop the decrease).
    task, ridge = _task(noise=0.1, dim=4), 1e-3
    data = task.sample(200, rng=np.random.default_rng(1))
    x_test = task.sample(300, rng=np.random.default_rng(2)).x
    kernel = Kernel(kind="rf", ridge=ridge).fit(data, rng=np.random.default_rng(0)).predict(x_test)
    gaps = {}
    for width in (500, 8000):
        gaps[width] = np.mean([float(torch.sqrt(torch.mean((RandomFeatures(
            width=width, ridge=width * ridge, offset=False).fit(
            data, rng=np.random.default_rng(seed)).predict(x_test) - kernel) ** 2)))
            for seed in range(3)])
    assert 2.5 < gaps[500] / gaps[8000] < 6.5, gaps
    assert gaps[8000] < 0.02 * float(kernel.std())


def test_streamed_normal_equations_equal_the_in_memory_solve(monkeypatch):
    task = _task()
    data = task.sample(3000, rng=np.random.default_rng(4))
    regime = RandomFeatures(width=30, ridge=1e-4)
    direct = regime.fit(data, rng=np.random.default_rng(5))
    monkeypatch.setattr(rf_module, "STREAMING_ENTRIES", 1000)
    monkeypatch.setattr(rf_module, "_BLOCK_ROWS_ENTRIES", 30 * 512)
    streamed = regime.fit(data, rng=np.random.default_rng(5))
    assert streamed.diagnostics["streamed"] == 1.0 and direct.diagnostics["streamed"] == 0.0
    torch.testing.assert_close(streamed.head, direct.head, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(streamed.offset, direct.offset, rtol=1e-8, atol=1e-10)


def test_optimal_covariance_uses_b_over_its_trace_and_beats_isotropic():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=12, matrix="exp-diagonal")
    optimal = RandomFeatures(width=24, activation="hermite2", weight_covariance="optimal")
    isotropic = RandomFeatures(width=24, activation="hermite2")
    a = optimal.fit(task, rng=np.random.default_rng(1))
    b = isotropic.fit(task, rng=np.random.default_rng(1))
    gamma = task.matrix / torch.trace(task.matrix)
    g = torch.from_numpy(np.random.default_rng(1).standard_normal((24, 12)))
    torch.testing.assert_close(a.weights, g @ torch.sqrt(gamma))   # Γ* diagonal here
    assert a.diagnostics["population_risk"] < 0.7 * b.diagnostics["population_risk"]
    custom = RandomFeatures(width=24, activation="hermite2", weight_covariance=gamma.numpy())
    c = custom.fit(task, rng=np.random.default_rng(1))
    assert c.diagnostics["population_risk"] == pytest.approx(a.diagnostics["population_risk"],
                                                             rel=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="width"):
        RandomFeatures(width=0)
    with pytest.raises(ValueError, match="ridge"):
        RandomFeatures(ridge=-1.0)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        RandomFeatures(activation="nope")
    with pytest.raises(ValueError, match="biases"):
        RandomFeatures(biases="uniform")
    with pytest.raises(ValueError, match="weight_covariance"):
        RandomFeatures(weight_covariance="best")
    with pytest.raises(TypeError):
        RandomFeatures(10)   # keyword-only
    data = _task().sample(20, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="weight_covariance='optimal'"):
        RandomFeatures(weight_covariance="optimal").fit(data, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="weight_covariance='optimal'"):
        RandomFeatures(weight_covariance="optimal").fit(_task(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="weight_covariance must have shape"):
        RandomFeatures(weight_covariance=np.eye(3)).fit(data, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        RandomFeatures().fit(data, rng=0)
    with pytest.raises(TypeError, match="Dataset or a task"):
        RandomFeatures().fit(data.x, rng=np.random.default_rng(0))


class _NoMoments:
    dim, has_moments = 3, False

    def sample(self, n, *, rng):
        return Dataset(torch.zeros(n, 3), torch.zeros(n))


def test_population_fit_on_a_task_without_moments_is_refused():
    with pytest.raises(ValueError, match="no population moments"):
        RandomFeatures().fit(_NoMoments(), rng=np.random.default_rng(0))


def test_returns_a_two_layer_with_numeric_diagnostics():
    model = RandomFeatures(width=5).fit(_task().sample(30, rng=np.random.default_rng(0)),
                                        rng=np.random.default_rng(0))
    assert isinstance(model, TwoLayer)
    assert all(isinstance(v, float) for v in model.diagnostics.values())


@pytest.mark.parametrize("n, offset, biases", [(80, True, False), (80, False, "gaussian"),
                                               (8, True, "gaussian")])
def test_ridge_path_equals_a_fit_per_ridge(n, offset, biases):
    # Same W from the same generator; heads from one eigendecomposition (primal for n = 80 ≥ N,
    # dual for n = 8) against a Cholesky per λ: both exact, agreeing to ~N·ε·cond ≲ 1e-10 here;
    # checked at 1e-8 relative on predictions. λ = 0 is the minimum-norm fit itself.
    task = _task(dim=5)
    data = task.sample(n, rng=np.random.default_rng(4))
    test = task.sample(200, rng=np.random.default_rng(5))
    ridges = [0.0, 1e-6, 1e-3, 1.0, 1e2]
    regime = RandomFeatures(width=12, offset=offset, biases=biases)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(6))
    for ridge, model in zip(ridges, path):
        single = RandomFeatures(width=12, offset=offset, biases=biases, ridge=ridge).fit(
            data, rng=np.random.default_rng(6))
        torch.testing.assert_close(model.weights, single.weights, rtol=0, atol=0)
        expected = single.predict(test.x)
        error = torch.linalg.vector_norm(model.predict(test.x) - expected)
        assert error <= 1e-8 * torch.linalg.vector_norm(expected), ridge
        assert model.diagnostics == {**single.diagnostics, "head_norm_max":
                                     model.diagnostics["head_norm_max"]}
    assert regime.fit_path(task, ridges, rng=np.random.default_rng(6)) is None  # n = ∞: refit


def test_device_is_validated_and_cpu_is_the_default_to_the_bit():
    with pytest.raises(ValueError, match="device"):
        RandomFeatures(device="tpu")
    data = _task().sample(50, rng=np.random.default_rng(0))
    default = RandomFeatures(width=7, ridge=1e-3).fit(data, rng=np.random.default_rng(1))
    named = RandomFeatures(width=7, ridge=1e-3, device="cpu").fit(data,
                                                                  rng=np.random.default_rng(1))
    torch.testing.assert_close(named.head, default.head, rtol=0, atol=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_a_cuda_fit_without_cuda_is_a_clear_error():
    data = _task().sample(20, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="CUDA is not available"):
        RandomFeatures(device="cuda").fit(data, rng=np.random.default_rng(0))


def _device_fits(monkeypatch, device="cpu"):
    """In memory, streamed (block rows that do not divide n), a ridge path and n = ∞."""
    task = _task(dim=5)
    data = task.sample(3000, rng=np.random.default_rng(4))
    regime = RandomFeatures(width=30, ridge=1e-4, biases="gaussian", device=device)
    fits = [regime.fit(data, rng=np.random.default_rng(5))]
    fits += regime.fit_path(data, [1e-6, 1e-2], rng=np.random.default_rng(5))
    fits.append(regime.fit(task, rng=np.random.default_rng(5)))
    with monkeypatch.context() as patch:
        patch.setattr(rf_module, "STREAMING_ENTRIES", 1000)
        patch.setattr(rf_module, "_BLOCK_ROWS_ENTRIES", 30 * 512)
        fits.append(regime.fit(data, rng=np.random.default_rng(5)))
    return fits


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fits_match_the_cpu_and_come_back_on_it(monkeypatch):
    """Every sample route on the GPU against the CPU: the same W and b (drawn on the CPU), heads
    within 1e-8 relative (the same float64 normal equations, summed in another order)."""
    for gpu, cpu in zip(_device_fits(monkeypatch, "cuda"), _device_fits(monkeypatch)):
        assert gpu.head.device.type == gpu.offset.device.type == "cpu"
        assert gpu.diagnostics.get("streamed") == cpu.diagnostics.get("streamed")
        torch.testing.assert_close(gpu.weights, cpu.weights, rtol=0, atol=0)
        gap = torch.linalg.vector_norm(gpu.head - cpu.head)
        assert gap <= 1e-8 * torch.linalg.vector_norm(cpu.head)
        torch.testing.assert_close(gpu.offset, cpu.offset, rtol=1e-8, atol=1e-10)
