"""DeepSemiRandom's convergence certificate (full-batch criterion on samples, a budget that is
judged honestly) and its restarts at half the learning rate after a divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.errors import DivergenceError
from lazylab.models import DeepSemiRandom
from lazylab.models._network_training import STOP_REASON_CODES
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=200):
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4)
    return task.sample(n, rng=np.random.default_rng(1))


def _training_loss(model, data):
    return float(torch.mean((model.predict(data.x) - data.y) ** 2))


def test_short_budget_reports_unconverged_with_the_criterion_at_its_last_step():
    """50 steps: one full-batch check (at step 50), so the loss change is still ∞ and the
    criterion is L(θ_50) / Var y, far above the default tolerance 1e-3."""
    data = _data()
    model = DeepSemiRandom(width=8, steps=50, batch_size=50).fit(data,
                                                                 rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert diagnostics["steps"] == 50 and diagnostics["stop_reason"] == STOP_REASON_CODES["budget"]
    assert diagnostics["converged"] == 0 and diagnostics["criterion"] > diagnostics["tolerance"]
    variance = float(torch.var(data.y, unbiased=False))
    assert diagnostics["criterion"] == pytest.approx(_training_loss(model, data) / variance,
                                                     rel=1e-10)
    assert diagnostics["tolerance"] == 1e-3 and diagnostics["halvings"] == 0
    assert diagnostics["learning_rate"] == 1e-3
    assert all(math.isfinite(v) for v in diagnostics.values())


def test_run_to_tolerance_meets_it_and_says_so():
    """Width 16 (≥ 300 trained parameters) on n = 40 samples interpolates: the run stops on
    the tolerance before its budget, with criterion ≤ tol."""
    data = _data(40)
    model = DeepSemiRandom(width=16, learning_rate=1e-2, max_steps=20_000, tol=1e-3,
                           batch_size=20).fit(data, rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert diagnostics["converged"] == 1 and diagnostics["stop_reason"] == 0
    assert diagnostics["criterion"] <= 1e-3 and diagnostics["steps"] < 20_000
    assert diagnostics["steps"] % 100 == 0                      # checks every W = 100 steps


def test_a_diverging_rate_is_halved_from_the_same_draws_and_recorded():
    """η = 3 explodes (0.3 does not); the retries restart from the same initialization and batches, so the
    kept fit equals a direct fit at the recorded rate η / 2^halvings."""
    data = _data()
    options = dict(width=8, steps=60, batch_size=50, optimizer="sgd")
    model = DeepSemiRandom(learning_rate=3.0, **options).fit(data, rng=np.random.default_rng(3))
    halvings = int(model.diagnostics["halvings"])
    assert halvings >= 1 and model.diagnostics["learning_rate"] == 3.0 / 2 ** halvings
    direct = DeepSemiRandom(learning_rate=3.0 / 2 ** halvings, **options).fit(
        data, rng=np.random.default_rng(3))
    torch.testing.assert_close(model.predict(data.x), direct.predict(data.x), rtol=0, atol=0)
    with pytest.raises(DivergenceError, match="after 0 halvings"):
        DeepSemiRandom(learning_rate=3.0, max_halvings=0, **options).fit(
            data, rng=np.random.default_rng(3))


@pytest.mark.parametrize("options, message", [
    (dict(steps=10, max_steps=10), "not both"), (dict(tol=0.0), "tol"),
    (dict(max_halvings=-1), "max_halvings"), (dict(max_steps=0), "max_steps")])
def test_bad_budget_fields_name_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        DeepSemiRandom(**options)


def test_the_plateau_schedule_certifies_a_fit_that_jitters_at_a_constant_rate():
    """Noisy labels (σ = 0.5), batches of 20, Adam η = 0.03: at the constant rate the full-batch
    loss still moves by > 10 % between checks after 4000 steps (criterion ≫ tol = 3e-3); halving
    the rate on each plateau meets the same criterion at the same tolerance, with a lower loss."""
    data = _data()
    noise = torch.from_numpy(np.random.default_rng(5).standard_normal(data.n_samples))
    data = type(data)(data.x, data.y + 0.5 * noise)
    fits = {schedule: DeepSemiRandom(width=8, learning_rate=0.03, tol=3e-3, max_steps=4000,
                                     batch_size=20, schedule=schedule).fit(
                                         data, rng=np.random.default_rng(0))
            for schedule in ("constant", "plateau")}
    constant, plateau = (fits[k].diagnostics for k in ("constant", "plateau"))
    assert constant["converged"] == 0 and constant["criterion"] > 10 * constant["tolerance"]
    assert constant["rate_decays"] == 0 and constant["steps"] == 4000
    assert plateau["converged"] == 1 and plateau["criterion"] <= plateau["tolerance"] == 3e-3
    assert 1 <= plateau["rate_decays"] <= 8 and plateau["learning_rate"] == 0.03
    assert _training_loss(fits["plateau"], data) < _training_loss(fits["constant"], data)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        DeepSemiRandom(schedule="cosine")


def test_criterion_rate_stretches_the_checks_of_a_slower_rate():
    """The interpolating fit of test_run_to_tolerance_meets_it_and_says_so, with criterion_rate
    = 3η: the same trajectory checked every 300 steps instead of 100, so it is certified (by
    interpolation, L ≤ tol·Var y, which the loss keeps meeting) at the first multiple of 300 at
    or after the step where the plain fit was (200)."""
    data = _data(40)
    options = dict(width=16, learning_rate=1e-2, max_steps=20_000, tol=1e-3, batch_size=20)
    plain = DeepSemiRandom(**options).fit(data, rng=np.random.default_rng(0)).diagnostics
    model = DeepSemiRandom(criterion_rate=3e-2, **options).fit(data, rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert plain["steps"] % 300 != 0
    assert diagnostics["converged"] == 1
    assert diagnostics["steps"] == 300 * math.ceil(plain["steps"] / 300)
    with pytest.raises(ValueError, match="criterion_rate"):
        DeepSemiRandom(criterion_rate=-1.0)
