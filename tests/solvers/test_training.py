"""Trainers: update rules, batch sources, divergence, schedules, population descent (Theorem 3)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lazylab.errors import DivergenceError
from lazylab.models import TwoLayer
from lazylab.risk import population_risk
from lazylab.solvers import (fresh_batches, minibatches, paper_schedule, population_descent,
                             train)
from lazylab.solvers.convergence import DEFAULT_MAX_STEPS, POPULATION_TOLERANCE, SAMPLE_TOLERANCE
from lazylab.tasks import TASKS, Dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def _regression(seed=0, n=64, d=6):
    g = np.random.default_rng(seed)
    x = torch.from_numpy(g.standard_normal((n, d)))
    y = x @ torch.from_numpy(g.standard_normal(d)) + 0.1 * torch.from_numpy(g.standard_normal(n))
    return x, y


def _linear_loss(w):
    return lambda x, y: torch.mean((y - x @ w) ** 2)


def _repeat(x, y):
    while True:
        yield x, y


# ----------------------------------------------------------------------------- update rules

@pytest.mark.parametrize("optimizer, options", [("sgd", dict(momentum=0.9, weight_decay=0.01)),
                                                ("sgd", dict()),
                                                ("adam", dict(weight_decay=0.01))])
def test_updates_equal_torch_optim(optimizer, options):
    """The written-out SGD/Adam rules reproduce torch.optim step for step (float64)."""
    x, y = _regression()
    w0 = torch.from_numpy(np.random.default_rng(1).standard_normal(6))
    w = w0.clone().requires_grad_(True)
    train([w], _linear_loss(w), _repeat(x, y), learning_rate=0.01, steps=30,
          optimizer=optimizer, **options)
    reference = w0.clone().requires_grad_(True)
    kind = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = kind([reference], lr=0.01, **options)
    for _ in range(30):
        opt.zero_grad()
        _linear_loss(reference)(x, y).backward()
        opt.step()
    torch.testing.assert_close(w.detach(), reference.detach(), rtol=1e-12, atol=1e-14)


def test_gradient_scale_is_a_group_learning_rate_for_sgd():
    """Group multiplier g with rate η ≡ rate g·η (the mean-field multipliers of THEORY §1.7)."""
    x, y = _regression()
    start = torch.from_numpy(np.random.default_rng(2).standard_normal(6))
    scaled = start.clone().requires_grad_(True)
    train([{"params": [scaled], "gradient_scale": 4.0}], _linear_loss(scaled), _repeat(x, y),
          learning_rate=0.005, steps=25)
    plain = start.clone().requires_grad_(True)
    train([plain], _linear_loss(plain), _repeat(x, y), learning_rate=0.02, steps=25)
    torch.testing.assert_close(scaled.detach(), plain.detach(), rtol=1e-12, atol=1e-14)
    assert not torch.allclose(scaled.detach(), start)


@pytest.mark.parametrize("options", [dict(momentum=0.9), dict(momentum=0.9, weight_decay=0.01),
                                     dict(optimizer="adam")])
def test_gradient_scale_matches_a_multiplied_gradient(options):
    """With every optimizer (plain SGD folds g into the rate, the others multiply the gradient)
    a group multiplier g equals the loss multiplied by g, and the reported gradient norm is
    that of the multiplied gradient."""
    x, y = _regression()
    start = torch.from_numpy(np.random.default_rng(3).standard_normal(6))
    scaled = start.clone().requires_grad_(True)
    first = train([{"params": [scaled], "gradient_scale": 4.0}], _linear_loss(scaled),
                  _repeat(x, y), learning_rate=0.005, steps=25, **options)
    plain = start.clone().requires_grad_(True)
    second = train([plain], lambda a, b: 4.0 * _linear_loss(plain)(a, b), _repeat(x, y),
                   learning_rate=0.005, steps=25, **options)
    torch.testing.assert_close(scaled.detach(), plain.detach(), rtol=1e-12, atol=1e-14)
    assert first.gradient_norm == pytest.approx(second.gradient_norm, rel=1e-12)


def test_training_result_history_and_losses():
    x, y = _regression()
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    calls = []
    result = train([w], _linear_loss(w), _repeat(x, y), learning_rate=0.05, steps=2500,
                   progress=lambda step, loss: calls.append((step, loss)), progress_every=500)
    assert result.steps == 2500 and not result.diverged and result.diverged_at_step is None
    assert len(result.losses) <= 1001 and result.loss_steps[-1] == 2499
    assert result.loss_steps[0] == 0 and result.losses[0] == pytest.approx(result.initial_loss)
    assert result.final_loss < 0.05 * result.initial_loss
    least = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    torch.testing.assert_close(w.detach(), least, rtol=1e-6, atol=1e-8)
    assert [s for s, _ in calls] == [500, 1000, 1500, 2000, 2500]


def test_float32_trains():
    x, y = _regression()
    x32, y32 = x.float(), y.float()
    w = torch.zeros(6, dtype=torch.float32, requires_grad=True)
    result = train([w], _linear_loss(w), _repeat(x32, y32), learning_rate=0.05, steps=300,
                   optimizer="adam")
    assert w.dtype == torch.float32
    assert result.final_loss < 0.1 * result.initial_loss


# ----------------------------------------------------------------------------- divergence

def test_huge_learning_rate_is_reported_diverged_without_nan():
    x, y = _regression()
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    result = train([w], _linear_loss(w), _repeat(x, y), learning_rate=1e3, steps=1000)
    assert result.diverged and 0 < result.diverged_at_step < 1000
    assert result.steps == result.diverged_at_step
    assert all(math.isfinite(v) for v in (result.final_loss, result.recent_loss,
                                          result.initial_loss, *result.losses))


def test_non_finite_loss_stops_at_its_step():
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    counter = iter(range(100))

    def loss(x, y):
        step = next(counter)
        return (w ** 2).sum() * (math.inf if step == 3 else 1.0)

    result = train([w], loss, _repeat(torch.zeros(1, 2), torch.zeros(1)), learning_rate=0.01,
                   steps=10, divergence_threshold=None)
    assert result.diverged and result.diverged_at_step == 3 and result.steps == 3
    assert math.isfinite(result.final_loss)


# ----------------------------------------------------------------------------- batch sources

def test_fresh_batches_are_fresh_and_blocking_invariant():
    """Every batch is new data; the stream does not depend on the block size (noise-free)."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=5)
    small = fresh_batches(task, 7, rng=np.random.default_rng(3), block_size=7)
    large = fresh_batches(task, 7, rng=np.random.default_rng(3), block_size=10_000)
    first = [next(small) for _ in range(30)]
    second = [next(large) for _ in range(30)]
    for (x1, y1), (x2, y2) in zip(first, second):
        torch.testing.assert_close(x1, x2, rtol=0, atol=0)
        torch.testing.assert_close(y2, task.target(x2), rtol=1e-12, atol=1e-12)
    stacked = torch.cat([x for x, _ in first])
    assert stacked.shape == (210, 5)
    assert torch.unique(stacked[:, 0]).numel() == 210  # no sample repeated


def test_fresh_batches_statistics_match_task_moments():
    """Mean of y over 2·10⁴ fresh samples within 5 σ/√m of E y (failure prob. < 1e-6)."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, centered=False)
    stream = fresh_batches(task, 100, rng=np.random.default_rng(4), dtype=torch.float32)
    ys = torch.cat([next(stream)[1] for _ in range(200)]).double()
    assert ys.dtype == torch.float64 and ys.numel() == 20_000
    sd = math.sqrt(task.null_risk)
    assert abs(float(ys.mean()) - task.target_mean()) < 5 * sd / math.sqrt(20_000)


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_float32_fresh_batches_are_the_task_in_float32(noise):
    """float32 online draws (torch stream): x float32 ~ N(0, I) (mean and variance within 5 σ of
    the 2·10⁴ × 5 draws), y = f*(x) + noise·ξ with f* evaluated on those x (the residual's
    variance within 5 σ of noise²), and no sample repeated."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, noise=noise)
    stream = fresh_batches(task, 100, rng=np.random.default_rng(5), dtype=torch.float32)
    x, y = (torch.cat(parts) for parts in zip(*(next(stream) for _ in range(200))))
    assert x.dtype == y.dtype == torch.float32 and x.shape == (20_000, 5)
    m = x.numel()
    assert abs(float(x.double().mean())) < 5 / math.sqrt(m)
    assert abs(float(x.double().var()) - 1) < 5 * math.sqrt(2 / m)
    residual = (y.double() - task.target(x.double())).numpy()
    if noise == 0:
        assert np.abs(residual).max() < 1e-5 * float(task.target(x.double()).abs().max())
    else:
        assert abs(residual.var() / noise ** 2 - 1) < 5 * math.sqrt(2 / residual.size)
    assert torch.unique(x[:, 0]).numel() == 20_000


def test_minibatches_visit_every_sample_once_per_epoch_and_reshuffle():
    x = torch.arange(10, dtype=torch.float64)[:, None]
    data = Dataset(x, x[:, 0])
    batches = list(minibatches(data, 4, rng=np.random.default_rng(0), epochs=3))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2] * 3
    epochs = [torch.cat([b[1] for b in batches[3 * e:3 * e + 3]]) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])


def test_train_stops_when_the_batches_run_out():
    x, y = _regression(n=50)
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    result = train([w], _linear_loss(w), minibatches(Dataset(x, y), 20,
                                                     rng=np.random.default_rng(0), epochs=2),
                   learning_rate=0.01, steps=100)
    assert result.steps == 6 and result.stop_reason == "exhausted" and not result.converged


def test_minibatch_larger_than_data_is_rejected():
    data = Dataset(torch.zeros(5, 2), torch.zeros(5))
    with pytest.raises(ValueError, match="batch_size=6 exceeds .* n=5"):
        next(minibatches(data, 6, rng=np.random.default_rng(0)))


# ----------------------------------------------------------------------------- schedules

def test_paper_schedule_drops_at_the_papers_steps():
    """2·10⁵ steps: η/10 for the last 30 000–15 000 steps, η/15 for the last 15 000."""
    schedule = paper_schedule(200_000)
    assert schedule(0) == 1.0 and schedule(169_999) == 1.0
    assert schedule(170_000) == pytest.approx(0.1) and schedule(184_999) == pytest.approx(0.1)
    assert schedule(185_000) == pytest.approx(1 / 15) and schedule(199_999) == pytest.approx(1 / 15)


def test_schedule_multiplies_the_learning_rate():
    x, y = _regression()
    start = torch.zeros(6, dtype=torch.float64)
    halved = start.clone().requires_grad_(True)
    train([halved], _linear_loss(halved), _repeat(x, y), learning_rate=0.02, steps=20,
          schedule=lambda step: 0.5)
    plain = start.clone().requires_grad_(True)
    train([plain], _linear_loss(plain), _repeat(x, y), learning_rate=0.01, steps=20)
    torch.testing.assert_close(halved.detach(), plain.detach(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("options, message", [
    (dict(optimizer="rmsprop"), "optimizer must be one of sgd, adam"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=math.nan), "learning_rate"),
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(optimizer="adam", momentum=0.9), "momentum applies to optimizer='sgd' only"),
    (dict(momentum=-0.1), "momentum must be a finite number >= 0"),
])
def test_bad_arguments_name_the_field(options, message):
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    arguments = dict(learning_rate=0.1, steps=5) | options
    with pytest.raises(ValueError, match=message):
        train([w], _linear_loss(w), _repeat(torch.zeros(1, 2), torch.zeros(1)), **arguments)


def test_untrainable_tensor_is_rejected():
    with pytest.raises(ValueError, match="requires_grad"):
        population_descent([torch.zeros(2)], lambda: torch.zeros(()), learning_rate=0.1, steps=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=3)
    with pytest.raises(ValueError, match="CUDA is not available"):
        next(fresh_batches(task, 4, rng=np.random.default_rng(0), device="cuda"))


def _quadratic_fit(device: str, seed: int) -> float:
    """Population risk of xᵀWx + c trained by online SGD on fresh float32 batches on ``device``:
    2‖W_sym − B‖²_F + (Tr W + c − Tr B − b₀)² (Gaussian inputs)."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=3)
    stream = fresh_batches(task, 8, rng=np.random.default_rng(seed), device=device,
                           dtype=torch.float32)
    x, y = next(stream)
    assert x.device.type == device and y.device.type == device and y.dtype == torch.float32
    w = torch.zeros(3, 3, device=device, requires_grad=True)
    c = torch.zeros((), device=device, requires_grad=True)
    train([w, c], lambda x, y: torch.mean((y - ((x @ w) * x).sum(1) - c) ** 2), stream,
          learning_rate=0.02, steps=400)
    w_sym, b = (0.5 * (w + w.T)).detach().double().cpu(), task.matrix
    return float(2 * (w_sym - b).square().sum()
                 + (w_sym.trace() + float(c.detach()) - b.trace() - task.offset) ** 2) / task.null_risk


def test_fresh_float32_batches_train_the_quadratic_model():
    """The reference for the CUDA case below: the normalized risk falls from 1 to ≈ 6e-6."""
    assert max(_quadratic_fit("cpu", seed) for seed in range(3)) < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_and_training():
    """Batches drawn on the device train as on the CPU (the model xᵀWx + c: at w = 0 its loss
    can fall only by fitting the offset as well, so the model carries c)."""
    assert max(_quadratic_fit("cuda", seed) for seed in range(3)) < 1e-3


# ----------------------------------------------------------------------------- population

def test_tolerance_stops_population_descent_at_the_minimizer():
    """R(θ) = ‖Xθ − y‖²: GD to relative gradient 1e-9 stops converged near least squares.

    ‖θ − θ*‖ ≤ ‖∇R(θ)‖ / λ_min(2XᵀX) (strong convexity) bounds the distance to the minimizer.
    """
    x, y = _regression(n=20, d=4)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    result = population_descent([w], lambda: torch.sum((x @ w - y) ** 2), learning_rate=0.01,
                                steps=10_000, tol=1e-9)
    initial_gradient = float(torch.linalg.vector_norm(2 * x.T @ y))
    assert result.converged and result.stop_reason == "tolerance" and result.steps < 10_000
    assert result.criterion_name == "relative_gradient" and result.tolerance == 1e-9
    assert result.criterion == pytest.approx(result.gradient_norm / initial_gradient, rel=1e-12)
    assert result.criterion <= 1e-9
    least = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    bound = result.gradient_norm / float(torch.linalg.eigvalsh(2 * x.T @ x)[0])
    assert float(torch.linalg.vector_norm(w.detach() - least)) <= bound * (1 + 1e-6)  # rounding


# ----------------------------------------------------------------------------- certificates

def _ill_conditioned(seed=5, d=6):
    """R(w) = ½ (w − w*)ᵀH(w − w*) + 1, eigenvalues of H in [1, 10]: GD stable for η < 0.2."""
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.standard_normal((d, d)))
    h = torch.from_numpy((q * np.linspace(1.0, 10.0, d)) @ q.T)
    minimizer = torch.from_numpy(g.standard_normal(d))
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    return w, (lambda: 0.5 * (w - minimizer) @ h @ (w - minimizer) + 1), minimizer


def test_fixed_budget_short_of_tolerance_reports_unconverged():
    """steps alone is a fixed budget: 10 GD steps at κ = 10 leave ‖∇R‖ ≈ 0.9¹⁰ ≫ 1e-6."""
    w, risk, _ = _ill_conditioned()
    result = population_descent([w], risk, learning_rate=0.1, steps=10)
    assert result.steps == 10 and result.stop_reason == "budget" and not result.converged
    assert result.tolerance == POPULATION_TOLERANCE and result.criterion > result.tolerance
    with torch.no_grad():
        assert result.final_loss == pytest.approx(float(risk()), rel=1e-14)  # R at θ_10
    assert result.loss_steps[-1] == 10


def test_fixed_budget_meeting_tolerance_reports_converged():
    """600 steps at rate 0.1: error contracts by 0.9 per step, 0.9⁶⁰⁰ ≈ 1e-28 < 1e-6."""
    w, risk, minimizer = _ill_conditioned()
    result = population_descent([w], risk, learning_rate=0.1, steps=600)
    assert result.steps == 600 and result.stop_reason == "budget"
    assert result.converged and result.criterion <= result.tolerance
    torch.testing.assert_close(w.detach(), minimizer, rtol=1e-10, atol=1e-12)


def test_default_runs_to_tolerance_and_max_steps_is_a_budget():
    w, risk, minimizer = _ill_conditioned()
    result = population_descent([w], risk, learning_rate=0.1)
    assert result.stop_reason == "tolerance" and result.converged
    assert result.steps < DEFAULT_MAX_STEPS and result.criterion <= POPULATION_TOLERANCE
    w2, risk2, _ = _ill_conditioned()
    capped = population_descent([w2], risk2, learning_rate=0.1, max_steps=7, tol=1e-12)
    assert capped.steps == 7 and capped.stop_reason == "budget" and not capped.converged
    with pytest.raises(ValueError, match="steps .* or max_steps .* not both"):
        population_descent([w2], risk2, learning_rate=0.1, steps=5, max_steps=5)


def test_sgd_runs_to_a_stated_tolerance_on_the_windowed_loss():
    """Full-batch GD on least squares: window means settle; stop at tolerance near lstsq."""
    x, y = _regression()
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    result = train([w], _linear_loss(w), _repeat(x, y), learning_rate=0.05, max_steps=20_000,
                   tol=1e-10, window=50)
    assert result.stop_reason == "tolerance" and result.converged
    assert result.criterion <= 1e-10 and result.criterion_name == "loss_change"
    assert result.steps < 20_000 and result.steps % 50 == 49
    least = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    torch.testing.assert_close(w.detach(), least, rtol=1e-4, atol=1e-5)


def test_sgd_fixed_budget_reports_unconverged_and_validation_criterion():
    x, y = _regression()
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    short = train([w], _linear_loss(w), _repeat(x, y), learning_rate=0.05, steps=150)
    assert short.steps == 150 and short.stop_reason == "budget" and not short.converged
    assert short.criterion == math.inf and short.tolerance == SAMPLE_TOLERANCE  # < 4 windows
    held_x, held_y = _regression(seed=9)
    v = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    checked = train([v], _linear_loss(v), _repeat(x, y), learning_rate=0.05, max_steps=20_000,
                    tol=1e-9, window=25, validation=lambda: _linear_loss(v)(held_x, held_y))
    assert checked.stop_reason == "tolerance" and checked.criterion_name == "validation_change"
    assert checked.converged and checked.steps % 25 == 0


# ----------------------------------------------------------------------------- backtracking

def test_backtracking_recovers_from_a_too_large_learning_rate():
    """η = 1 > 2/λ_max = 0.2 diverges plain GD. Along H's top eigenvector the error grows by
    |1 − 10η| per step, the risk's excess by its square: 81× at η = 1, 16× at 0.5, 2.25× at 0.25
    (each passes 10× the lowest risk within a few steps), 0.0625× at 0.125: three halvings,
    then convergence to the minimizer w*."""
    w, risk, minimizer = _ill_conditioned()
    plain = population_descent([w], risk, learning_rate=1.0, steps=500)
    assert plain.diverged and plain.stop_reason == "diverged" and not plain.converged
    w, risk, minimizer = _ill_conditioned()
    result = population_descent([w], risk, learning_rate=1.0, backtracking=True, tol=1e-10)
    assert result.halvings == 3 and result.learning_rate == 0.125
    assert result.converged and not result.diverged and result.stop_reason == "tolerance"
    assert all(math.isfinite(v) for v in (result.final_loss, *result.losses))
    torch.testing.assert_close(w.detach(), minimizer, rtol=1e-8, atol=1e-9)


def test_backtracking_gives_up_after_max_halvings():
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(DivergenceError, match="halving the learning rate 2 times"):
        population_descent([w], lambda: torch.sum(w ** 2) ** 2, learning_rate=1e6,
                           backtracking=True, max_halvings=2)
    assert torch.equal(w.detach(), torch.ones(2, dtype=torch.float64))  # restored, finite
    with pytest.raises(DivergenceError, match="after halving the learning rate 0 times"):
        population_descent([w], lambda: torch.sum(w) * math.nan, learning_rate=0.1,
                           backtracking=True)  # nothing finite to go back to


def _theorem3_risk(task):
    """L(W, c) = 2‖B − WᵀW‖_F² + (Tr(B − WᵀW) + b0 − c)² for ŷ = Σ(w_i·x)² + c (Isserlis)."""
    b, b0 = task.matrix, task.offset

    def risk(w, c):
        m = b - w.T @ w
        return 2 * torch.sum(m * m) + (torch.trace(m) + b0 - c) ** 2

    return risk


@pytest.mark.slow
@pytest.mark.parametrize("width", [10, 25])
def test_population_gd_reaches_theorem3(width):
    """Heavy-ball GD on the exact risk of ŷ = Σ(w_i·x)² + c reaches 2Σ_{i>N} λ_i(B)² (Thm 3).

    d = 50, B = diag(Exp(1))/√d (the quadratic task's preset, PSD). The closed-form risk is the
    engine's ``population_risk`` of the same TwoLayer (checked at the start and the end to 1e-9
    relative), evaluated by Isserlis' formula so that 2000 steps take about a second.
    """
    dim = 50
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    risk = _theorem3_risk(task)
    weights = torch.from_numpy(np.random.default_rng(width).standard_normal((width, dim)))
    weights = (weights / math.sqrt(dim)).requires_grad_(True)
    offset = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def engine():
        model = TwoLayer("quadratic", weights.detach(), torch.ones(width, dtype=torch.float64),
                         offset=offset.detach())
        return float(population_risk(model, task))

    with torch.no_grad():
        assert float(risk(weights, offset)) == pytest.approx(engine(), rel=1e-9)
    result = population_descent([weights, offset], lambda: risk(weights, offset),
                                learning_rate=0.005, momentum=0.9, steps=2000)
    eigenvalues = torch.linalg.eigvalsh(task.matrix).flip(0)
    optimum = 2 * float(torch.sum(eigenvalues[width:] ** 2))
    final = engine()
    assert not result.diverged
    assert with_torch_no_grad(risk, weights, offset) == pytest.approx(final, rel=1e-9)
    assert abs(final - optimum) <= 1e-3 * optimum
    assert final >= optimum * (1 - 1e-9)  # the infimum cannot be beaten


def with_torch_no_grad(function, *args):
    with torch.no_grad():
        return float(function(*args))


def test_backtracking_ignores_round_off_noise_at_an_exact_optimum():
    """Near a reachable zero risk the evaluated risk is round-off noise (here a scripted
    1e-13·|sin k| on top of the exact risk): it rises far above 10× its lowest value, but stays
    below BACKTRACK_FLOOR·R(θ₀) and must not count as a divergence (before the floor, a
    one-neuron fit at risk ~1e-12 was halved until it was reported as diverged)."""
    target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    calls = itertools.count()

    def risk():
        return torch.sum((w - target) ** 2) + 1e-13 * abs(math.sin(next(calls)))

    result = population_descent([w], risk, learning_rate=0.1, steps=400, backtracking=True)
    assert result.halvings == 0 and not result.diverged
    assert max(result.losses[-50:]) <= 1e-13 < 1e-8 * float(torch.sum(target ** 2))
