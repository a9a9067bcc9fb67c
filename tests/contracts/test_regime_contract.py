"""The regime registry contract, over every entry of ``REGIMES`` (one registered at run time too).

Every regime is a frozen keyword-only dataclass constructible with no arguments; its constructor
rejects a bad value of every field with a ValueError naming the field and the value; ``fit`` on a
small Dataset returns a predictor with ``predict`` ((n,), finite) and finite float diagnostics;
where the regime supports n = ∞ it fits a task too (exactly: the reported population risk is the
exact one), otherwise a task is refused with ValueError. A regime without a small configuration
here, or a field without a bad value, fails loudly instead of being skipped.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from lazylab.experiments.catalog import regime_parameters
from lazylab.models import REGIMES, TwoLayer
from lazylab.risk import population_risk
from lazylab.tasks import TASKS


@dataclass(frozen=True)
class Case:
    """A small configuration of one regime and what it does at n = ∞: "exact" (the reported
    population risk is exact), "trained" (fits a task by sampling or descent) or None (refuses)."""

    params: dict = field(default_factory=dict)
    population: str | None = "exact"


CASES = {
    "random_features": Case({"width": 6}),
    "neural_tangent": Case({"width": 3}),
    "semi_random": Case({"width": 3, "degree": 1}),
    "deep_semi_random": Case({"width": 4, "steps": 5, "batch_size": 20}, "trained"),
    "one_step": Case({"width": 6, "ridge": 1e-3}),
    "kernel": Case({"kind": "ntk"}, None),
    "network": Case({"width": 4, "steps": 5, "batch_size": 20, "training": "population"}),
}

BAD_VALUES = {
    "width": 0, "depth": 0, "degree": 2, "steps": 0, "batch_size": 0, "max_iter": 0,
    "n_centers": 0, "ridge": -1.0, "tol": 0.0, "learning_rate": 0.0, "momentum": -1.0,
    "weight_decay": -1.0, "first_step_size": -1.0, "bias_scale": -1.0, "weight_scale": -1.0,
    "head_scale": -1.0, "laziness": 0.0, "divergence_threshold": 0.0,
    "validation_fraction": 1.5, "activation": "nope", "kind": "nope", "method": "nope",
    "solver": "nope", "optimizer": "nope", "variant": "nope", "parameterization": "nope",
    "train": "nope", "training": "nope", "schedule": "nope", "head_init": "nope",
    "dtype": "nope", "device": "nope", "weight_covariance": "nope", "biases": "nope",
    "offset": "nope", "train_head": "nope", "sgd_tol": 0.0, "max_steps": 0, "max_halvings": -1,
    "rate_scaling": "nope", "offset_init": "nope", "track_every": 0, "criterion_rate": 0.0,
    "checkpoints": (0,),
}
"""field name → a value every regime with that field must reject (ValueError naming both)."""


def case(name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"regime {name!r} is registered in REGIMES but has no small test "
                    "configuration: add a Case to CASES in tests/contracts/test_regime_contract.py")
    return CASES[name]


def _task():
    return TASKS["single_neuron"](rng=np.random.default_rng(0), dim=3, noise=0.1)


def check_dataclass(regime_class: type, params: dict) -> None:
    assert dataclasses.is_dataclass(regime_class)
    assert regime_class.__dataclass_params__.frozen
    assert all(f.kw_only for f in dataclasses.fields(regime_class))
    regime_class()                                   # every field has a default
    regime = regime_class(**params)
    first = dataclasses.fields(regime_class)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(regime, first, getattr(regime, first))
    with pytest.raises(TypeError):
        regime_class(getattr(regime, first))
    assert set(params) <= set(regime_parameters(regime_class))


def check_bad_values(regime_class: type, params: dict) -> None:
    for name in regime_parameters(regime_class):
        if name not in BAD_VALUES:
            pytest.fail(f"{regime_class.__name__}.{name} has no bad value in BAD_VALUES")
        bad = BAD_VALUES[name]
        with pytest.raises(ValueError, match=re.escape(name)) as error:
            regime_class(**{**params, name: bad})
        assert repr(bad) in str(error.value), (name, str(error.value))


def check_fit(regime_class: type, spec: Case) -> None:
    task = _task()
    data = task.sample(60, rng=np.random.default_rng(1))
    regime = regime_class(**spec.params)
    sources = [data] if spec.population is None else [data, task]
    for source in sources:
        model = regime.fit(source, rng=np.random.default_rng(2))
        prediction = model.predict(data.x)
        assert prediction.shape == (60,) and torch.all(torch.isfinite(prediction))
        assert isinstance(model.diagnostics, dict)
        assert all(isinstance(v, float) and math.isfinite(v) for v in model.diagnostics.values())
        if source is task and spec.population == "exact":
            assert model.diagnostics["population_risk"] == pytest.approx(
                float(population_risk(model, task)), rel=1e-8)
    if spec.population is None:
        with pytest.raises(ValueError):
            regime.fit(task, rng=np.random.default_rng(2))


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_regime_is_a_frozen_keyword_only_dataclass(name):
    check_dataclass(REGIMES[name], case(name).params)


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_constructor_rejects_a_bad_value_of_every_field(name):
    check_bad_values(REGIMES[name], case(name).params)


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_fit_on_samples_and_at_infinity(name, one_thread):
    check_fit(REGIMES[name], case(name))


def test_registry_names():
    assert set(REGIMES) == {"random_features", "neural_tangent", "semi_random",
                            "deep_semi_random", "one_step", "kernel", "network"}


# ----------------------------------------------------------------------------- a toy regime

@dataclass(frozen=True, kw_only=True)
class ToyRegime:
    """f(x) = c·x₁ with c fitted by least squares; width is its only field."""

    width: int = 1

    def __post_init__(self):
        if self.width != 1:
            raise ValueError(f"width must be 1, got {self.width!r}")

    def fit(self, data_or_task, *, rng):
        data = data_or_task if hasattr(data_or_task, "x") else data_or_task.sample(
            100, rng=rng)
        x = data.x[:, :1]
        head = torch.linalg.lstsq(x, data.y[:, None]).solution[:, 0]
        model = TwoLayer("linear", torch.eye(1, data.x.shape[1], dtype=torch.float64), head)
        model.diagnostics = {"train_loss": float(torch.mean((x @ head - data.y) ** 2))}
        return model


def test_a_regime_registered_at_run_time_is_held_to_the_contract(monkeypatch, one_thread):
    monkeypatch.setitem(REGIMES, "toy", ToyRegime)
    with pytest.raises(pytest.fail.Exception, match="'toy' .* no small test configuration"):
        case("toy")
    monkeypatch.setitem(CASES, "toy", Case({}, "trained"))
    for name in sorted(REGIMES):                      # the toy is one of the entries now
        check_dataclass(REGIMES[name], case(name).params)
        check_bad_values(REGIMES[name], case(name).params)
    check_fit(ToyRegime, CASES["toy"])


def test_the_contract_catches_a_mutable_regime_and_a_silent_constructor():
    @dataclass(kw_only=True)
    class Mutable:
        width: int = 1

    with pytest.raises(AssertionError):
        check_dataclass(Mutable, {})

    @dataclass(frozen=True, kw_only=True)
    class Silent:
        width: int = 1

    with pytest.raises(pytest.fail.Exception):        # width=0 accepted: "DID NOT RAISE"
        check_bad_values(Silent, {})


def test_iterative_regimes_report_progress(one_thread):
    task = _task()
    data = task.sample(200, rng=np.random.default_rng(1))
    calls = {}
    for name, regime, source in (
            ("nt population", REGIMES["neural_tangent"](width=3), task),
            ("nt cg", REGIMES["neural_tangent"](width=3, solver="cg"), data),
            ("deep", REGIMES["deep_semi_random"](width=4, depth=2, steps=20), data)):
        seen = []
        regime.fit(source, rng=np.random.default_rng(2), progress=lambda s, t: seen.append((s, t)))
        calls[name] = seen
    assert calls["nt population"][0] == (1, None) and len(calls["nt population"]) > 1
    assert calls["nt cg"][-1][0] == len(calls["nt cg"])
    assert calls["deep"][-1] == (20, 20)
