"""The regime registry: every entry is a frozen keyword-only dataclass whose fit returns a
predictor with numeric diagnostics, on samples and (where defined) at n = ∞."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest
import torch

from lazylab.experiments.catalog import regime_parameters
from lazylab.models import REGIMES
from lazylab.risk import population_risk
from lazylab.tasks import TASKS

SMALL = {
    "random_features": {"width": 6},
    "neural_tangent": {"width": 3},
    "semi_random": {"width": 3, "degree": 1},
    "one_step": {"width": 6, "ridge": 1e-3},
    "kernel": {"kind": "ntk"},
    "network": {"width": 4, "steps": 5, "batch_size": 20, "training": "population"},
}
POPULATION = {"random_features", "neural_tangent", "semi_random", "one_step", "network"}


def test_registry_names():
    expected = {"random_features", "neural_tangent", "semi_random", "one_step", "kernel"}
    if importlib.util.find_spec("lazylab.models.network") is not None:
        expected.add("network")
    assert set(REGIMES) == expected


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_regime_is_a_frozen_keyword_only_dataclass(name):
    regime_class = REGIMES[name]
    assert dataclasses.is_dataclass(regime_class)
    regime = regime_class(**SMALL[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        regime.width = 2
    with pytest.raises(TypeError):
        regime_class(5)
    assert set(SMALL[name]) <= set(regime_parameters(regime_class))


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_fit_on_samples_and_population(name):
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=3, noise=0.1)
    data = task.sample(60, rng=np.random.default_rng(1))
    regime = REGIMES[name](**SMALL[name])
    sources = [data] + ([task] if name in POPULATION else [])
    for source in sources:
        model = regime.fit(source, rng=np.random.default_rng(2))
        prediction = model.predict(data.x)
        assert prediction.shape == (60,) and torch.all(torch.isfinite(prediction))
        assert all(isinstance(v, float) and math.isfinite(v) for v in model.diagnostics.values())
        if source is task and name != "network":
            assert model.diagnostics["population_risk"] == pytest.approx(
                float(population_risk(model, task)), rel=1e-8)


def test_iterative_regimes_report_progress():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=3)
    data = task.sample(200, rng=np.random.default_rng(1))
    calls = {}
    for name, regime, source in (
            ("nt population", REGIMES["neural_tangent"](width=3), task),
            ("nt cg", REGIMES["neural_tangent"](width=3, solver="cg"), data),
            ("deep", REGIMES["semi_random"](width=4, depth=2, steps=20), data)):
        seen = []
        regime.fit(source, rng=np.random.default_rng(2), progress=lambda s, t: seen.append((s, t)))
        calls[name] = seen
    assert calls["nt population"][0] == (1, None) and len(calls["nt population"]) > 1
    assert calls["nt cg"][-1][0] == len(calls["nt cg"])
    assert calls["deep"][-1] == (20, 20)
