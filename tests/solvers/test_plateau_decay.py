"""Learning-rate decay on a plateau of the criterion (``schedule="plateau"``).

Adam at a constant rate on minibatches of a fixed data set stalls at a noise floor: its
full-batch loss jitters by a few per cent between checks, so the full-batch criterion (relative
change over 3 checks ≤ tol) is never met. Halving the rate whenever the full-batch loss makes no
new low lets the same certificate, at the same tolerance, be met.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.solvers.convergence import CONSECUTIVE_CHECKS, PlateauDecay
from lazylab.solvers.training import full_batch_loss, minibatches, train
from lazylab.tasks import Dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _noisy_regression(n=200, d=10, seed=0):
    g = np.random.default_rng(seed)
    x = torch.from_numpy(g.standard_normal((n, d)))
    y = x @ torch.from_numpy(g.standard_normal(d)) + torch.from_numpy(g.standard_normal(n))
    return Dataset(x, y)


def _adam(data, schedule, tol):
    w = torch.zeros(data.dim, dtype=torch.float64, requires_grad=True)
    loss = lambda x, y: torch.mean((y - x @ w) ** 2)  # noqa: E731
    result = train([w], loss, minibatches(data, 10, rng=np.random.default_rng(1)),
                   learning_rate=0.05, optimizer="adam", max_steps=20_000, tol=tol, window=50,
                   schedule=schedule)
    return w, loss, result


def test_plateau_decay_certifies_a_fit_that_jitters_at_a_constant_rate():
    """Noisy least squares, n = 200, d = 10, batches of 10, Adam η = 0.05, tol = 1e-3: at the
    constant rate the full-batch loss still changes by > 1 % per check after 20 000 steps; with
    the plateau decay the same criterion meets 1e-3, and the loss is within 1 % of the
    least-squares residual (the true minimum of the objective)."""
    data, tol = _noisy_regression(), 1e-3
    _, _, constant = _adam(data, "constant", tol)
    assert constant.stop_reason == "budget" and not constant.converged
    assert constant.criterion > 10 * tol and constant.decays == 0
    w, loss, plateau = _adam(data, "plateau", tol)
    assert plateau.converged and plateau.stop_reason == "tolerance"
    assert plateau.criterion <= tol and plateau.criterion_name == "full_loss_change"
    assert 1 <= plateau.decays <= 8 and plateau.steps < 20_000
    least = torch.linalg.lstsq(data.x, data.y[:, None]).solution[:, 0]
    minimum = float(torch.mean((data.y - data.x @ least) ** 2))
    assert minimum <= full_batch_loss(loss, data.x, data.y) <= (1 + 1e-2) * minimum


def test_the_multiplier_never_increases_and_waits_for_fresh_checks():
    """Random losses (∞ first: a diverged check is ignored): the multiplier is non-increasing,
    equals factor^decays, decays ≤ max_decays, and two decays are ≥ CONSECUTIVE_CHECKS checks
    apart (every change in the window was then made at the current rate)."""
    g = np.random.default_rng(3)
    losses = [math.inf] * 3 + list(g.uniform(0.0, 1.0, 400))
    decay = PlateauDecay(factor=0.5, max_decays=6)
    multipliers = [decay.observe(c) for c in losses]
    assert all(b <= a for a, b in zip([1.0] + multipliers, multipliers))
    assert decay.decays == 6 and multipliers[-1] == pytest.approx(0.5 ** 6, rel=0, abs=0)
    drops = [k for k, (a, b) in enumerate(zip([1.0] + multipliers, multipliers)) if b < a]
    assert len(drops) == 6 and min(np.diff(drops)) >= CONSECUTIVE_CHECKS
    assert multipliers[:3] == [1.0] * 3  # no decay on a non-finite loss


def test_a_falling_loss_is_never_decayed():
    """A loss making a new low at every check keeps the rate (a steady slow descent is not a
    plateau: decaying it would only shrink the relative changes the certificate measures)."""
    decay = PlateauDecay()
    assert [decay.observe(c) for c in 1.0 / np.arange(1.0, 200.0)] == [1.0] * 199
    assert decay.observe(1.0) == 0.5 and decay.decays == 1  # no new low: a plateau
    assert decay.observe(1e-9) == 0.5  # a new low never raises the rate back


@pytest.mark.parametrize("options", [dict(factor=1.0), dict(factor=0.0), dict(max_decays=-1),
                                     dict(max_decays=1.5)])
def test_bad_plateau_options_are_refused(options):
    with pytest.raises(ValueError):
        PlateauDecay(**options)


def test_an_unknown_schedule_name_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        _adam(_noisy_regression(20, 2), "cosine", 1e-3)
