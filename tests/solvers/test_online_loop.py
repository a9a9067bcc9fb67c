"""The stream loop of train(): losses read together at the checks, the same run as a per-step loop.

The reference below is the textbook per-step SGD loop (read the loss, backward, update); the
trainer keeps each step's loss on the device and reads them at the criterion's checks, so its
trajectory, history, criterion and progress calls must equal the reference's exactly, and a
divergence must still be reported at its own step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.models import Network
from lazylab.solvers import fresh_batches, train
from lazylab.solvers.convergence import WindowedCriterion
from lazylab.solvers.training import DEFERRED_STEPS
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(seed=0, n=120, d=5):
    g = np.random.default_rng(seed)
    x = torch.from_numpy(g.standard_normal((n, d)))
    return x, x @ torch.from_numpy(g.standard_normal(d)) + 0.3 * torch.from_numpy(
        g.standard_normal(n))


def _stream(x, y, batch=8):
    """Consecutive batches of (x, y), cycling: every step sees different samples."""
    n = x.shape[0]
    while True:
        for start in range(0, n - batch + 1, batch):
            yield x[start:start + batch], y[start:start + batch]


def _loss(w):
    return lambda x, y: torch.mean((y - x @ w) ** 2)


def _reference(w0, x, y, rate, steps):
    """Per-step SGD: (final parameters, the loss of every step)."""
    w, losses, batches = w0.clone().requires_grad_(True), [], _stream(x, y)
    for _ in range(steps):
        loss = _loss(w)(*next(batches))
        losses.append(float(loss.detach()))
        w.grad = None
        loss.backward()
        with torch.no_grad():
            w.add_(w.grad, alpha=-rate)
    return w.detach(), losses


@pytest.mark.parametrize("window, every, steps", [(30, 7, 250), (100, 1000, 1234),
                                                  (2000, 3000, 2500)])
def test_the_run_equals_the_per_step_loop(window, every, steps):
    """Parameters bit for bit, the recorded history, initial/final/recent losses, the windowed
    criterion and every progress call are those of the per-step loop (window and progress
    strides that do not divide each other; a window longer than DEFERRED_STEPS)."""
    x, y = _data()
    w0 = torch.from_numpy(np.random.default_rng(1).standard_normal(5))
    expected, losses = _reference(w0, x, y, 0.01, steps)
    w, calls = w0.clone().requires_grad_(True), []
    result = train([w], _loss(w), _stream(x, y), learning_rate=0.01, steps=steps, window=window,
                   progress=lambda step, loss: calls.append((step, loss)), progress_every=every)
    torch.testing.assert_close(w.detach(), expected, rtol=0, atol=0)
    assert result.losses == tuple(losses[s] for s in result.loss_steps)
    assert result.loss_steps[-1] == steps - 1 and result.steps == steps
    assert (result.initial_loss, result.final_loss) == (losses[0], losses[-1])
    assert result.recent_loss == pytest.approx(np.mean(losses[-100:]), rel=1e-15)
    monitor = WindowedCriterion(window)
    for value in losses:
        monitor.observe(value)
    assert result.criterion == monitor.value
    ticks = [s for s in range(1, steps + 1) if s % every == 0 or s == steps]
    assert calls == [(s, losses[s - 1]) for s in ticks]


@pytest.mark.parametrize("step, factor", [(37, math.inf), (58, 1e9), (1, math.nan)])
def test_a_divergence_inside_a_chunk_is_reported_at_its_own_step(step, factor):
    """A non-finite or exploding loss between two checks: reported at its step, with the
    history, final loss and criterion as they stood before it; the steps after it up to the
    next check (the window end, step 99) were taken, no more."""
    x, y = _data()
    w0 = torch.from_numpy(np.random.default_rng(2).standard_normal(5))
    _, losses = _reference(w0, x, y, 0.01, step)
    w, calls = w0.clone().requires_grad_(True), []

    def loss(xb, yb):
        calls.append(len(calls))
        return _loss(w)(xb, yb) * (factor if len(calls) - 1 == step else 1.0)

    result = train([w], loss, _stream(x, y), learning_rate=0.01, steps=1000, window=100)
    assert result.diverged and result.diverged_at_step == step == result.steps
    assert result.stop_reason == "diverged" and len(calls) == 100
    assert result.final_loss == losses[-1] and result.loss_steps[-1] == step - 1
    assert result.losses == tuple(losses[s] for s in result.loss_steps)
    assert all(math.isfinite(v) for v in (result.final_loss, result.recent_loss,
                                          result.initial_loss, *result.losses))
    assert result.gradient_norm is None and result.criterion == math.inf


def test_a_divergence_is_found_within_the_deferred_bound():
    """With no check for a long time (window and budget ≫ DEFERRED_STEPS), a NaN is still
    found within DEFERRED_STEPS steps."""
    x, y = _data()
    w, calls = torch.zeros(5, dtype=torch.float64, requires_grad=True), []

    def loss(xb, yb):
        calls.append(None)
        return _loss(w)(xb, yb) * (math.nan if len(calls) == 1500 else 1.0)

    result = train([w], loss, _stream(x, y), learning_rate=0.01, steps=100_000, window=50_000)
    assert result.diverged_at_step == 1499
    assert len(calls) - 1500 < DEFERRED_STEPS


def test_batches_running_out_after_a_divergence_report_the_divergence():
    x, y = _data(n=40)
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    counter = iter(range(100))

    def loss(xb, yb):
        return _loss(w)(xb, yb) * (math.inf if next(counter) == 3 else 1.0)

    finite = (pair for _, pair in zip(range(5), _stream(x, y)))
    result = train([w], loss, finite, learning_rate=0.01, steps=100)
    assert result.diverged_at_step == 3 and result.stop_reason == "diverged"


def test_online_network_equals_a_reference_sgd_of_its_loss():
    """Network online SGD (mean field, σ = u², float64) against the update written out: same
    initialization (``initialize``), same fresh batches, θ ← θ − η g_k ∇θ mean(y − f)² with the
    mean-field multiplier g = N on U and v; 230 steps cross two loss windows."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=4)
    net = Network(width=3, activation="quadratic", parameterization="mean_field",
                  training="online", batch_size=10, steps=230, learning_rate=0.003,
                  offset_init="zero", max_halvings=0)
    model = net.fit(task, rng=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    state = net.initialize(4, rng=rng)
    u, v, c = (t.clone().requires_grad_(True) for t in (state.raw.u, state.raw.v, state.raw.c))
    batches, losses = fresh_batches(task, 10, rng=rng), []
    for _ in range(230):
        x, y = next(batches)
        pre = x @ u.T
        residual = y - ((pre * pre) @ ((1.0 / 3) * v) + c)
        loss = torch.mean(residual * residual)
        losses.append(float(loss.detach()))
        u.grad = v.grad = c.grad = None
        loss.backward()
        with torch.no_grad():
            u.add_(u.grad, alpha=-0.003 * 3), v.add_(v.grad, alpha=-0.003 * 3)
            c.add_(c.grad, alpha=-0.003)
    torch.testing.assert_close(model.weights, u.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(model.head, (1.0 / 3) * v.detach(), rtol=1e-12, atol=1e-14)
    assert float(model.offset) == pytest.approx(float(c.detach()), rel=1e-12, abs=1e-14)
    assert model.diagnostics["final_train_loss"] == pytest.approx(np.mean(losses[-100:]),
                                                                  rel=1e-12)
    assert model.diagnostics["initial_train_loss"] == pytest.approx(losses[0], rel=1e-12)
