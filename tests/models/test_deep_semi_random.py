"""DeepSemiRandom's convergence certificate: the fixed step budget is judged honestly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazylab.models import DeepSemiRandom
from lazylab.models._network_training import STOP_REASON_CODES
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=200):
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4)
    return task.sample(n, rng=np.random.default_rng(1))


def test_short_budget_reports_budget_stop_and_no_criterion():
    """50 steps < 4 windows of 100: the windowed criterion is still ∞, so it is absent from the
    (finite) diagnostics and the run says converged 0, stop reason 1 (budget)."""
    model = DeepSemiRandom(width=8, steps=50, batch_size=50).fit(_data(),
                                                                 rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert diagnostics["steps"] == 50 and diagnostics["stop_reason"] == STOP_REASON_CODES["budget"]
    assert diagnostics["converged"] == 0 and "criterion" not in diagnostics
    assert diagnostics["tolerance"] == 1e-3 and diagnostics["halvings"] == 0
    assert diagnostics["learning_rate"] == 1e-3
    assert all(math.isfinite(v) for v in diagnostics.values())


def test_long_budget_reports_a_finite_criterion_judged_against_the_tolerance():
    """After 600 steps (6 windows) the criterion is finite and converged = [criterion ≤ tol]."""
    model = DeepSemiRandom(width=8, steps=600, batch_size=50).fit(_data(),
                                                                  rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert math.isfinite(diagnostics["criterion"]) and diagnostics["steps"] == 600
    assert diagnostics["converged"] == float(diagnostics["criterion"] <= diagnostics["tolerance"])
