"""Convergence criteria: their values on known sequences, and where population descent stops."""

import math

import pytest
import torch

from lazylab.solvers import population_descent
from lazylab.solvers.convergence import (PopulationCriterion, WindowedCriterion, relative_change,
                                         resolve_budget)


def test_criteria_on_known_sequences():
    windowed = WindowedCriterion(window=2)
    values = [windowed.observe(v) for v in (4.0, 4.0, 2.0, 2.0, 2.0, 2.0, 1.0, 3.0)]
    assert values[:-1] == [math.inf] * 7        # window means 4, 2, 2, 2: 3 changes need 4
    assert values[-1] == pytest.approx(0.5)     # max(|4−2|/4, 0, 0) = 0.5
    assert windowed.push(2.0) == pytest.approx(0.0)   # means 2, 2, 2, 2
    population = PopulationCriterion(window=2)
    assert population.observe(8.0, 4.0) == pytest.approx(1.0)
    assert population.observe(4.0, 1.0) == pytest.approx(0.25)
    assert population.observe(6.0, 4.0) == pytest.approx(0.25)   # change |8 − 6|/8 < 4/4
    assert population.name == "risk_change"
    assert relative_change(0.0, 0.0) == 0.0 and relative_change(-1.0, 1.0) == 2.0


def test_budget_resolution():
    assert resolve_budget(50, None, None) == (50, False)       # historical fixed budget
    assert resolve_budget(50, None, 1e-3) == (50, True)
    assert resolve_budget(None, 70, None) == (70, True)
    assert resolve_budget(None, None, None)[1] is True
    with pytest.raises(ValueError, match="not both"):
        resolve_budget(5, 5, None)


def test_risk_change_criterion_stops_on_a_plateau_at_the_predicted_step():
    """R(w) = 1 + w² from w = 1, η = 0.01: exactly w_t = ρᵗ, ρ = 0.98. The relative risk change
    over W = 10 steps, (ρ^{2(t−10)} − ρ^{2t})/(1 + ρ^{2(t−10)}), reaches 0.01 long before the
    relative gradient ρᵗ does: the run stops at the first t where the minimum is ≤ 0.01."""
    rho, window, tol = 0.98, 10, 0.01

    def criterion(t):
        old, new = 1 + rho ** (2 * (t - window)), 1 + rho ** (2 * t)
        return min(rho ** t, (old - new) / old if t >= window else math.inf)

    expected = next(t for t in range(10_000) if criterion(t) <= tol)
    w = torch.ones((), dtype=torch.float64, requires_grad=True)
    result = population_descent([w], lambda: 1 + w ** 2, learning_rate=0.01, tol=tol,
                                window=window)
    assert result.converged and result.criterion_name == "risk_change"
    assert result.steps == expected and result.criterion == pytest.approx(criterion(expected),
                                                                          rel=1e-9)
    assert rho ** expected > 0.1  # the gradient criterion alone would not have stopped
