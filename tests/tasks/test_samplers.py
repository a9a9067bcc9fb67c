"""The online-SGD samplers (``batch_sampler``): the numbers of ``sample`` in float64, the task's
distribution in float32 (moments against closed forms), one stream per seed.

Tolerances follow tests/tasks/__init__.py: a Monte Carlo estimate of m iid draws is within
K = 5 of its exact standard error (failure ≈ 5.7e-7 per number). For the variance of y the
standard error of the sample variance is √((μ₄ − σ⁴)/m) with μ₄ = κ₄ + 3κ₂² from the cumulants
of y − E y = Σ_i λ_i(g_i² − 1) + noise·ξ (λ = eig B, g_i iid N(0, 1)): κ₂ = 2Σλ² + noise²,
κ₄ = 48Σλ⁴ (χ²₁ has κ_n = 2^{n−1}(n − 1)!).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contracts import small_task
from lazylab.solvers import fresh_batches
from lazylab.tasks import TASKS, Dataset, Quadratic
from tasks import K_SIGMA

pytestmark = pytest.mark.usefixtures("one_thread")

M = 200_000
SAMPLING_TASKS = ["single_neuron", "quadratic", "gaussian_mixture", "multi_index"]


def _stream(draw, sizes) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [draw(n) for n in sizes]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


@pytest.mark.parametrize("noise", [0.0, 0.5])
@pytest.mark.parametrize("name", SAMPLING_TASKS)
def test_float64_sampler_gives_the_numbers_of_sample(name, noise):
    """Same seed, same sizes: bit for bit the x and y of ``task.sample`` (the random stream and
    the float64 results of NT online SGD and of float64 fresh batches do not move)."""
    task = small_task(name, noise=noise)
    draw = task.batch_sampler(rng=np.random.default_rng(11), dtype=torch.float64)
    reference = np.random.default_rng(11)
    for n in (1, 7, 100, 0, 33):
        x, y = draw(n)
        data = task.sample(n, rng=reference)
        assert x.dtype == y.dtype == torch.float64
        torch.testing.assert_close(x, data.x, rtol=0, atol=0)
        torch.testing.assert_close(y, data.y, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SAMPLING_TASKS)
def test_same_seed_same_stream(name, dtype):
    """Two samplers from equal seeds draw the same stream; another seed draws another."""
    task = small_task(name, noise=0.3)
    streams = []
    for seed in (5, 5, 6):
        draw = task.batch_sampler(rng=np.random.default_rng(seed), dtype=dtype)
        if draw is None:  # the mixture has no float32 sampler (fresh_batches converts float64)
            assert dtype == torch.float32 and name == "gaussian_mixture"
            return
        streams.append(_stream(draw, (3, 50, 8)))
    (x1, y1), (x2, y2), (x3, _) = streams
    assert x1.dtype == y1.dtype == dtype and x1.shape == (61, task.dim) and y1.shape == (61,)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.equal(x1, x3)


@pytest.mark.parametrize("name", ["single_neuron", "quadratic", "multi_index"])
def test_float32_sampler_is_the_target_on_its_inputs(name):
    """float32: y = f*(x) on the drawn x, to float32 round-off of f* (every Gaussian task,
    also those whose target keeps float64 constants: evaluated in float64, then cast)."""
    task = small_task(name)
    x, y = task.batch_sampler(rng=np.random.default_rng(2), dtype=torch.float32)(500)
    exact = task.target(x.double())
    scale = float(exact.abs().max()) + float((x.double() ** 2).sum(1).max())
    assert float((y.double() - exact).abs().max()) < 1e-6 * scale


def _quadratic_cumulants(task: Quadratic) -> tuple[float, float]:
    eigenvalues = torch.linalg.eigvalsh(task.matrix)
    return (2 * float((eigenvalues ** 2).sum()) + task.noise ** 2,
            48 * float((eigenvalues ** 4).sum()))


def _quadratic_tasks():
    rng = np.random.default_rng(3)
    diagonal = TASKS["quadratic"](rng=rng, dim=12, matrix="exp-diagonal", centered=False)
    dense = TASKS["quadratic"](rng=rng, dim=12, matrix="random-psd", centered=False, noise=0.4)
    return {"diagonal": diagonal, "dense": dense}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["diagonal", "dense"])
def test_quadratic_sampler_moments(kind, dtype):
    """E y = Tr B + b0 and Var y = 2‖B‖_F² + noise² within 5 standard errors (module docstring);
    x: each coordinate's mean 0 and second moment 1, the off-diagonal second moments 0, within
    5 standard errors (E x_i² x_j² = 1 + 2δ_ij, so Var(x_i x_j) = 1 + δ_ij)."""
    task = _quadratic_tasks()[kind]
    draw = task.batch_sampler(rng=np.random.default_rng(8), dtype=dtype)
    x, y = (t.double() for t in _stream(draw, [100] * (M // 100)))
    kappa2, kappa4 = _quadratic_cumulants(task)
    mean_error = math.sqrt(kappa2 / M)
    assert abs(float(y.mean()) - task.target_mean()) < K_SIGMA * mean_error
    variance_error = math.sqrt((kappa4 + 2 * kappa2 ** 2) / M)
    assert abs(float(y.var()) - task.null_risk) < K_SIGMA * variance_error
    assert kappa2 == pytest.approx(task.null_risk, rel=1e-12)
    second = x.T @ x / M
    identity = torch.eye(task.dim, dtype=torch.float64)
    assert torch.all((second - identity).abs() < K_SIGMA * torch.sqrt((1 + identity) / M))
    assert torch.all(x.mean(0).abs() < K_SIGMA / math.sqrt(M))


@pytest.mark.parametrize("delta", ["paper", "paper-rotated"])
def test_mixture_sampler_class_moments(delta):
    """Each class ±1 has probability ½ (within 5·√(1/4m)), mean 0 and covariance C± = I ∓ Δ:
    entry (i, j) of the class's second-moment matrix within 5·√((C_ii C_jj + C_ij²)/m_class)
    (the variance of x_i x_j under N(0, C))."""
    task = TASKS["gaussian_mixture"](rng=np.random.default_rng(4), dim=6, delta=delta)
    draw = task.batch_sampler(rng=np.random.default_rng(9), dtype=torch.float64)
    x, y = _stream(draw, [1000] * (M // 1000))
    assert set(torch.unique(y).tolist()) == {-1.0, 1.0}
    assert abs(float((y > 0).double().mean()) - 0.5) < K_SIGMA * math.sqrt(0.25 / M)
    for label, (_, covariance) in zip((1.0, -1.0), task.components):
        rows = x[y == label]
        m = rows.shape[0]
        assert torch.all(rows.mean(0).abs() < K_SIGMA * torch.sqrt(torch.diagonal(covariance) / m))
        spread = torch.sqrt((torch.outer(torch.diagonal(covariance), torch.diagonal(covariance))
                             + covariance ** 2) / m)
        assert torch.all((rows.T @ rows / m - covariance).abs() < K_SIGMA * spread)


def test_sampler_arguments_are_checked_once():
    task = small_task("quadratic")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        task.batch_sampler(rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="dtype"):
        task.batch_sampler(rng=np.random.default_rng(0), dtype=torch.float16)
    mixture = small_task("gaussian_mixture")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        mixture.batch_sampler(rng=0)


def test_float64_fresh_batches_are_the_task_sample_stream():
    """float64 online SGD batches are ``task.sample``'s numbers, in order (noise-free: the
    stream does not depend on the block size)."""
    task = small_task("quadratic")
    stream = fresh_batches(task, 25, rng=np.random.default_rng(12), block_size=100)
    x, y = (torch.cat(parts) for parts in zip(*(next(stream) for _ in range(12))))
    data = task.sample(300, rng=np.random.default_rng(12))
    torch.testing.assert_close(x, data.x, rtol=0, atol=0)
    torch.testing.assert_close(y, data.y, rtol=0, atol=0)


def test_float32_fresh_batches_are_the_sampler_stream():
    """float32 fresh batches are the float32 sampler's draws of whole blocks (here 20 batches
    of 10), cut into batches."""
    task = small_task("quadratic")
    stream = fresh_batches(task, 10, rng=np.random.default_rng(13), dtype=torch.float32,
                           block_size=200)
    x, y = (torch.cat(parts) for parts in zip(*(next(stream) for _ in range(40))))
    draw = task.batch_sampler(rng=np.random.default_rng(13), dtype=torch.float32)
    expected_x, expected_y = _stream(draw, (200, 200))
    torch.testing.assert_close(x, expected_x, rtol=0, atol=0)
    torch.testing.assert_close(y, expected_y, rtol=0, atol=0)


def test_dataset_check_by_sum_accepts_overflowing_finite_values():
    """The Dataset check reads a sum first; a finite data set whose sum overflows to ±inf is
    still accepted (the entrywise check decides), and one non-finite entry is still found."""
    big = torch.full((3, 2), 1e308, dtype=torch.float64)
    data = Dataset(big, torch.tensor([1e308, 1e308, -1e308], dtype=torch.float64))
    assert torch.isinf(data.x.sum()) and data.n_samples == 3
    for bad in (math.nan, math.inf, -math.inf):
        x = big.clone()
        x[1, 0] = bad
        with pytest.raises(ValueError, match="x has 1 NaN or infinite"):
            Dataset(x, torch.zeros(3))


@pytest.mark.parametrize("name", ["single_neuron", "multi_index"])
def test_float32_fresh_batches_of_tasks_with_float64_constants(name):
    """float32 online batches of targets whose constants are float64 (their float32 draws
    used to fail on mixed dtypes): y = f*(x) evaluated in float64 on the float32 x, cast."""
    task = small_task(name)
    x, y = next(fresh_batches(task, 50, rng=np.random.default_rng(14), dtype=torch.float32))
    assert x.dtype == y.dtype == torch.float32 and x.shape == (50, task.dim)
    torch.testing.assert_close(y, task.target(x.double()).float(), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["single_neuron", "quadratic", "multi_index"])
def test_float32_sampler_on_the_cpu_device_is_the_default_stream(name):
    """device="cpu" named explicitly draws the default float32 stream, number for number."""
    task = small_task(name)
    named = task.batch_sampler(rng=np.random.default_rng(14), dtype=torch.float32, device="cpu")
    default = task.batch_sampler(rng=np.random.default_rng(14), dtype=torch.float32)
    for got, expected in zip(_stream(named, (50, 70)), _stream(default, (50, 70))):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["single_neuron", "quadratic", "multi_index"])
def test_float32_draws_on_cuda_stay_there_and_follow_the_target(name):
    """On a GPU the float32 draws are made there (x, y on the device, whole blocks of the
    fresh-batch stream): y is f*(x) of the same x to float32 rounding (the quadratic task by
    its device constants, the others through the CPU float64 target)."""
    task = small_task(name)
    stream = fresh_batches(task, 10, rng=np.random.default_rng(15), device="cuda",
                           dtype=torch.float32, block_size=200)
    x, y = (torch.cat(parts) for parts in zip(*(next(stream) for _ in range(30))))
    assert x.device.type == y.device.type == "cuda" and x.dtype == y.dtype == torch.float32
    expected = task.target(x.cpu().double())
    torch.testing.assert_close(y.cpu().double(), expected, rtol=1e-5,
                               atol=1e-5 * float(expected.abs().max()))
