"""What every task of TASKS with population moments must satisfy, parametrized over the registry.

Monte Carlo checks (convention of tests/tasks/__init__.py): a mean of m = 2·10⁵ iid samples is
compared with the exact value within k = 5 estimated standard errors σ̂/√m; the two-sided
failure probability of a correct formula is P(|Z| > 5) ≈ 5.7e-7 per checked number, so at most
(2 + d + 2N + N·d) · 5.7e-7 ≈ 2e-5 per task here (d ≤ 8, N = 3). Seeds are fixed.
Every entry needs a small configuration in tests/contracts/__init__.py (missing: the test fails).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from contracts import SMALL_TASKS, small_task
from lazylab.tasks import TASKS
from lazylab.tasks.single_neuron import single_neuron
from tasks import assert_mc_close, feature_samples, random_units, tangent_samples

SAMPLES = 200_000
WIDTH = 3


def registered():
    return sorted(TASKS)


def check_target_moments(task, data) -> None:
    assert_mc_close(task.target_mean(), data.y[:, None], label="E y")
    assert_mc_close(task.target_second_moment(), (data.y ** 2)[:, None], label="E y²")
    assert_mc_close(task.linear_moment(), data.y[:, None] * data.x, label="E y x")


def check_feature_moments(task, data) -> None:
    weights, biases = random_units(np.random.default_rng(3), WIDTH, task.dim)
    for activation, bias in (("relu", biases), ("tanh", biases), ("quadratic", None)):
        assert_mc_close(task.feature_moment(activation, weights, bias),
                        feature_samples(data, activation, weights, bias),
                        label=f"E y σ(w·x + b), {activation}")


def check_tangent_moments(task, data) -> None:
    weights, _ = random_units(np.random.default_rng(4), WIDTH, task.dim)
    for activation in ("relu", "tanh"):
        assert_mc_close(task.tangent_moment(activation, weights),
                        tangent_samples(data, activation, weights),
                        label=f"E y σ′(w·x) x, {activation}")


CHECKS = [check_target_moments, check_feature_moments, check_tangent_moments]


def run_contract(task, *, seed: int = 11) -> None:
    """Every Monte Carlo check on one task (noise included, so it is checked too)."""
    data = task.sample(SAMPLES, rng=np.random.default_rng(seed))
    assert data.x.dtype == torch.float64 and data.x.shape == (SAMPLES, task.dim)
    for check in CHECKS:
        check(task, data)


@pytest.mark.parametrize("name", registered())
def test_every_task_has_a_small_configuration(name):
    small_task(name)


@pytest.mark.parametrize("name", registered())
def test_task_moment_contract(name):
    task = small_task(name, noise=0.5) if "noise" in _parameters(name) else small_task(name)
    if not task.has_moments:
        assert task.bayes_risk is None or task.bayes_risk >= 0   # a data-set task: nothing exact
        return
    run_contract(task)


def _parameters(name):
    return inspect.signature(TASKS[name]).parameters


def test_a_toy_task_registered_at_run_time_is_checked(monkeypatch):
    def toy(*, rng: np.random.Generator, dim: int = 5, noise: float = 0.0):
        return single_neuron(rng=rng, dim=dim, noise=noise, activation="tanh", bias=-0.2)

    monkeypatch.setitem(TASKS, "toy", toy)
    assert "toy" in registered()
    with pytest.raises(pytest.fail.Exception, match="'toy' .* no small test configuration"):
        small_task("toy")
    monkeypatch.setitem(SMALL_TASKS, "toy", {"dim": 4})
    run_contract(small_task("toy", noise=0.3))


class _OffByAQuarter:
    """A task whose feature moment is 25 % too large (everything else delegated)."""

    def __init__(self, task):
        self._task = task

    def __getattr__(self, name):
        return getattr(self._task, name)

    def feature_moment(self, *args, **kwargs):
        return 1.25 * self._task.feature_moment(*args, **kwargs)


def test_the_contract_can_fail():
    task = small_task("single_neuron")
    data = task.sample(SAMPLES, rng=np.random.default_rng(11))
    with pytest.raises(AssertionError, match="E y σ"):
        check_feature_moments(_OffByAQuarter(task), data)
