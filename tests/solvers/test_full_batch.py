"""The full-batch criterion of minibatch training, and restarts at half the rate.

Minibatch SGD on a fixed data set is judged on the full-batch training loss L(θ) (its relative
change over 3 checks, or L / Var y: interpolation), evaluated every max(W, ⌈n/b⌉) steps and at
the last step (:mod:`lazylab.solvers.convergence`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.solvers.convergence import FULL_BATCH_SAMPLES, FullBatchCriterion, criterion_window
from lazylab.solvers.loop import TrainingResult
from lazylab.solvers.training import full_batch_loss, minibatches, retry_halving, train
from lazylab.tasks import Dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n, d, noise, seed=0):
    g = np.random.default_rng(seed)
    x = torch.from_numpy(g.standard_normal((n, d)))
    y = x @ torch.from_numpy(g.standard_normal(d)) + noise * torch.from_numpy(g.standard_normal(n))
    return Dataset(x, y)


def _fit(data, batch, **options):
    w = torch.zeros(data.dim, dtype=torch.float64, requires_grad=True)
    loss = lambda x, y: torch.mean((y - x @ w) ** 2)  # noqa: E731
    result = train([w], loss, minibatches(data, batch, rng=np.random.default_rng(1)), **options)
    return w, loss, result


def _variance(data):
    return float(torch.var(data.y, unbiased=False))


def test_criterion_on_known_sequences():
    criterion = FullBatchCriterion(reference=10.0)
    assert criterion.push(8.0) == pytest.approx(0.8) and criterion.name == "interpolation"
    for value in (4.0, 4.0):
        criterion.push(value)
    # changes 0.5, 0 (2 of 3): still ∞, so L / Var y = 0.4 decides
    assert criterion.value == pytest.approx(0.4) and criterion.name == "interpolation"
    assert criterion.push(4.0) == pytest.approx(0.4)  # max(0.5, 0, 0) = 0.5 > 0.4
    assert criterion.push(4.0) == 0.0 and criterion.name == "full_loss_change"
    assert FullBatchCriterion(reference=0.0).push(0.0) == 0.0


def test_an_interpolating_minibatch_fit_is_certified_on_the_full_batch():
    """d = 40 > n = 30, noisy labels: SGD on batches of 5 drives L → 0 (the minimum-norm
    interpolant). The full-batch criterion certifies L ≤ tol · Var y at a check (every W = 50
    steps, longer than the 6-step epoch); the window of minibatch losses (the old
    criterion) at the same budget stays above tol: its relative changes are meaningless as L → 0."""
    data, tol = _data(30, 40, noise=0.5), 1e-6
    w, loss, result = _fit(data, 5, learning_rate=0.02, max_steps=20_000, tol=tol, window=50)
    assert result.stop_reason == "tolerance" and result.converged
    assert result.criterion_name == "interpolation" and result.criterion <= tol
    assert result.steps % 50 == 0 and result.steps < 20_000
    assert full_batch_loss(loss, data.x, data.y) / _variance(data) == pytest.approx(
        result.criterion, rel=1e-12)
    _, _, old = _fit(data, 5, learning_rate=0.02, steps=result.steps, tol=tol, window=50,
                     full_batch=False)
    assert old.criterion_name == "loss_change" and not old.converged and old.criterion > tol


def test_a_plateau_is_certified_by_the_full_batch_loss_change():
    """n = 200 ≫ d = 5 with noise: L cannot fall below the residual of least squares (≈ 0.01 ≫
    tol · Var y); full-batch GD (b = n) stops on the loss change, near the least-squares w."""
    data = _data(200, 5, noise=0.1)
    w, _, result = _fit(data, 200, learning_rate=0.1, max_steps=50_000, tol=1e-10, window=20)
    assert result.converged and result.criterion_name == "full_loss_change"
    assert result.criterion <= 1e-10 and result.steps % 20 == 0
    least = torch.linalg.lstsq(data.x, data.y[:, None]).solution[:, 0]
    torch.testing.assert_close(w.detach(), least, rtol=1e-4, atol=1e-5)


def test_a_fixed_budget_is_judged_at_its_last_step_and_reports_unconverged():
    """35 steps: one check (step 35, not a multiple of the 50-step interval), so the change is
    still ∞ and the criterion is L(θ_35) / Var y, far above 1e-6."""
    data = _data(30, 40, noise=0.5)
    w, loss, result = _fit(data, 5, learning_rate=0.02, steps=35, tol=1e-6, window=50)
    assert result.steps == 35 and result.stop_reason == "budget" and not result.converged
    assert result.criterion_name == "interpolation" and result.criterion > 1e-6
    assert result.criterion == pytest.approx(full_batch_loss(loss, data.x, data.y)
                                             / _variance(data), rel=1e-12)


def test_checks_at_most_once_per_epoch():
    """b = 1, n = 120 > W = 50: the interval is the 120-step epoch."""
    data = _data(120, 3, noise=0.0)
    _, _, result = _fit(data, 1, learning_rate=0.01, max_steps=5000, tol=1e-8, window=50)
    assert result.converged and result.steps % 120 == 0


def test_above_the_limit_the_minibatch_window_is_kept():
    data = Dataset(torch.zeros(FULL_BATCH_SAMPLES + 1, 2, dtype=torch.float64),
                   torch.zeros(FULL_BATCH_SAMPLES + 1, dtype=torch.float64))
    _, _, result = _fit(data, 100, learning_rate=0.1, steps=3)
    assert result.criterion_name == "loss_change" and result.criterion == math.inf


def test_full_batch_loss_is_the_mean_over_blocks():
    data = _data(10_000, 3, noise=1.0)
    loss = lambda x, y: torch.mean((y - x.sum(1)) ** 2)  # noqa: E731
    assert full_batch_loss(loss, data.x, data.y, block=999) == pytest.approx(
        float(loss(data.x, data.y)), rel=1e-13)


def _attempt(stable_below):
    rates = []

    def attempt(rate):
        rates.append(rate)
        return rate, TrainingResult(steps=3, final_loss=1.0, recent_loss=1.0, initial_loss=1.0,
                                    loss_steps=(), losses=(), diverged=rate > stable_below,
                                    learning_rate=rate)
    return attempt, rates


def test_retry_halving_restarts_at_half_the_rate_and_records_it():
    """Diverges above 0.1: from 1, four halvings (1/16 = 0.0625) are needed."""
    attempt, rates = _attempt(0.1)
    fitted, result = retry_halving(attempt, 1.0, 10)
    assert rates == [1.0, 0.5, 0.25, 0.125, 0.0625] and fitted == 0.0625
    assert result.halvings == 4 and not result.diverged and result.learning_rate == 0.0625
    attempt, rates = _attempt(0.1)
    _, result = retry_halving(attempt, 1.0, 2)
    assert result.diverged and result.halvings == 2 and rates == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("rate, reference, window, expected", [
    (1e-3, None, 100, 100), (3e-2, 3e-2, 100, 100), (0.1, 3e-2, 100, 100),
    (1e-2, 3e-2, 100, 300), (3e-4, 3e-2, 100, 10_000), (7e-3, 1e-2, 50, 72)])
def test_criterion_window_spans_the_same_rate_times_steps(rate, reference, window, expected):
    """⌈W·η_c/η⌉ below η_c, W at or above it (and without a reference)."""
    assert criterion_window(rate, reference, window) == expected


@pytest.mark.parametrize("arguments", [(0.0, 1.0), (1e-3, 0.0), (1e-3, 1.0, 0), (1e-3, 1.0, 2.5)])
def test_criterion_window_refuses_bad_values(arguments):
    with pytest.raises(ValueError, match="must be"):
        criterion_window(*arguments)


def test_a_slow_rate_is_certified_early_unless_checks_span_the_same_rate_times_steps():
    """Full-batch GD on least squares (n = 200, d = 10, noise 0.5; Hessian 2XᵀX/n ≈ 2I, so the
    excess loss falls by ≈ e^{−4ηW} per check). At η = 2e-5 and W = 50 that is ≈ 0.4 % per
    check: the change criterion (tol 1e-2) passes at the 4th check with L still ≈ L₀, far from
    its minimum ≈ 0.24. Checked every W·η_c/η = 5000 steps (η_c = 2e-3) the same fit changes by
    ≈ 33 % per check and is not certified within 20 000 steps, while η_c itself, checked every
    50 steps, is certified near the minimum: one standard for both rates."""
    data = _data(200, 10, noise=0.5)
    initial = float(torch.mean(data.y ** 2))
    options = dict(max_steps=20_000, tol=1e-2)
    w, loss, early = _fit(data, 200, learning_rate=2e-5, window=50, **options)
    assert early.converged and early.steps == 200
    assert float(loss(data.x, data.y).detach()) > 0.9 * initial
    _, _, slow = _fit(data, 200, learning_rate=2e-5, window=criterion_window(2e-5, 2e-3, 50),
                      **options)
    assert not slow.converged and slow.steps == 20_000 and slow.criterion > 0.1
    w, loss, fast = _fit(data, 200, learning_rate=2e-3, window=criterion_window(2e-3, 2e-3, 50),
                         **options)
    assert fast.converged and fast.steps < 20_000
    assert float(loss(data.x, data.y).detach()) < 0.3
