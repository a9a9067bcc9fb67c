"""Properties every task shares: registry, builders, sampling statistics, vectorization."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest
import torch

from contracts import SMALL_TASKS, small_task
from lazylab.tasks import TASKS, Dataset, Task
from tasks import random_units

# Small configurations live in tests/contracts (one per registry entry; a missing one fails).
# The Monte Carlo moment checks of every task are in tests/contracts/test_task_contract.py.


def _has_moments(name) -> bool:
    """From the builder's return annotation (a class attribute), without building the task."""
    return bool(getattr(typing.get_type_hints(TASKS[name]).get("return"), "has_moments", False))


def build(name, **extra):
    return small_task(name, **extra)


MOMENT_TASKS = [name for name in sorted(TASKS) if _has_moments(name)]


def test_registry_names():
    assert set(TASKS) >= {"single_neuron", "quadratic", "gaussian_mixture", "multi_index"}
    assert set(MOMENT_TASKS) >= {"single_neuron", "quadratic", "gaussian_mixture", "multi_index"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builder_parameters_are_keyword_only_annotated_with_defaults(name):
    builder = TASKS[name]
    hints = typing.get_type_hints(builder)
    params = inspect.signature(builder).parameters
    assert "rng" in params
    if _has_moments(name):
        assert "dim" in params and "noise" in params
    for pname, parameter in params.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, pname
        assert pname in hints, pname
        if pname != "rng":
            assert parameter.default is not inspect.Parameter.empty, pname


@pytest.mark.parametrize("name", MOMENT_TASKS)
def test_task_protocol_and_components(name):
    task = build(name)
    assert isinstance(task, Task) and task.has_moments and task.dim == SMALL_TASKS[name]["dim"]
    probabilities = [p for p, _ in task.components]
    assert sum(probabilities) == pytest.approx(1.0)
    for _, covariance in task.components:
        assert covariance is None or covariance.shape == (task.dim, task.dim)
    assert task.null_risk == pytest.approx(task.target_second_moment() - task.target_mean() ** 2)
    assert 0 <= task.bayes_risk <= task.null_risk + 1e-12


@pytest.mark.parametrize("name", MOMENT_TASKS)
def test_builders_are_reproducible_from_rng(name):
    first, second = build(name), build(name)
    weights, biases = random_units(np.random.default_rng(1), 3, first.dim)
    assert torch.equal(first.feature_moment("relu", weights, biases),
                       second.feature_moment("relu", weights, biases))


@pytest.mark.parametrize("name", MOMENT_TASKS)
def test_samples_are_float64_of_the_right_shape(name):
    data = build(name, noise=0.5).sample(1000, rng=np.random.default_rng(11))
    assert isinstance(data, Dataset) and data.x.dtype == torch.float64
    assert data.n_samples == 1000 and data.dim == SMALL_TASKS[name]["dim"]


@pytest.mark.parametrize("name", MOMENT_TASKS)
def test_noise_adds_its_variance_only(name):
    clean, noisy = build(name), build(name, noise=0.5)
    assert noisy.target_second_moment() == pytest.approx(clean.target_second_moment() + 0.25)
    assert noisy.bayes_risk == pytest.approx(clean.bayes_risk + 0.25)
    weights, biases = random_units(np.random.default_rng(2), 4, clean.dim)
    assert torch.allclose(noisy.feature_moment("relu", weights, biases),
                          clean.feature_moment("relu", weights, biases), rtol=0, atol=0)


@pytest.mark.parametrize("name", MOMENT_TASKS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "hermite2"])
def test_vectorized_equals_one_unit_at_a_time(name, activation):
    task = build(name)
    weights, biases = random_units(np.random.default_rng(3), 5, task.dim)
    together = task.feature_moment(activation, weights, biases)
    tangent = task.tangent_moment(activation, weights)
    assert together.shape == (5,) and tangent.shape == (5, task.dim)
    for i in range(5):
        single = task.feature_moment(activation, weights[i:i + 1], biases[i:i + 1])
        assert torch.allclose(single, together[i:i + 1], rtol=1e-12, atol=1e-14)
        assert torch.allclose(task.tangent_moment(activation, weights[i:i + 1]), tangent[i:i + 1],
                              rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", MOMENT_TASKS)
def test_bad_unit_inputs_raise(name):
    task = build(name)
    weights, biases = random_units(np.random.default_rng(4), 3, task.dim)
    with pytest.raises(ValueError, match=r"weights must have shape \(N, "):
        task.feature_moment("relu", weights[:, :-1])
    with pytest.raises(ValueError, match=r"biases must have shape \(3,\)"):
        task.feature_moment("relu", weights, biases[:2])
    with pytest.raises(ValueError, match="activation: unknown activation 'rleu'"):
        task.feature_moment("rleu", weights)
    with pytest.raises(ValueError, match="Dirac derivative"):
        task.tangent_moment("step", weights)
    with pytest.raises(ValueError, match="Dirac derivative"):
        task.tangent_moment("sign", weights)
    with pytest.raises(ValueError, match="rows .* are zero"):
        task.tangent_moment("relu", torch.zeros(2, task.dim))
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        task.sample(-1, rng=np.random.default_rng(0))


@pytest.mark.parametrize("name", MOMENT_TASKS)
@pytest.mark.parametrize("field, value, message", [("dim", 0, "dim must be an integer >= 1, got 0"),
                                                   ("noise", -1.0, "noise must be a finite number >= 0, got -1.0")])
def test_builders_reject_bad_common_parameters(name, field, value, message):
    with pytest.raises(ValueError, match=message):
        build(name, **{field: value})


def test_dataset_converts_and_checks_shapes():
    data = Dataset(np.zeros((3, 2)), [1, 2, 3])
    assert data.x.dtype == torch.float64 and data.y.dtype == torch.float64
    assert (data.n_samples, data.dim) == (3, 2)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        Dataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\)"):
        Dataset(np.zeros(3), np.zeros(3))
