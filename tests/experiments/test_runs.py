"""Run identity and the seed-stream scheme."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab.experiments import load_sweep
from lazylab.experiments.runs import Run, make_run, stream_generators, stream_seed_sequence


def _run(**changes):
    fields = dict(task="linear", task_params={"dim": 4, "noise": 0.2}, regime="ridge_features",
                  regime_params={"width": 8, "activation": "relu"}, n_train=30, n_test=100, seed=0)
    fields.update(changes)
    return make_run(**fields)


def _draw(run, stream):
    return stream_generators(run)[stream].standard_normal(5)


def test_canonical_json_round_trip_and_id():
    run = _run(n_train=None)
    data = json.loads(run.to_json())
    assert data == {"task": {"name": "linear", "dim": 4, "noise": 0.2},
                    "regime": {"name": "ridge_features", "width": 8, "activation": "relu"},
                    "n_train": "population", "n_test": 100, "seed": 0}
    assert Run.from_dict(data) == run and Run.from_dict(data).run_id == run.run_id
    assert len(run.run_id) == 20 and run.run_id != _run().run_id
    # key order in the spec does not matter
    swapped = _run(regime_params={"activation": "relu", "width": 8}, n_train=None)
    assert swapped.run_id == run.run_id


def test_streams_are_independent_and_reproducible():
    run = _run()
    draws = {s: _draw(run, s) for s in ("task", "test", "data", "fit", "validation")}
    assert all(not np.array_equal(draws[a], draws[b]) for a in draws for b in draws if a < b)
    assert all(np.array_equal(draws[s], _draw(_run(), s)) for s in draws)


@pytest.mark.parametrize("change, same, different", [
    ({"regime": "gradient_descent", "regime_params": {}}, ("task", "test", "data", "validation"),
     ("fit",)),
    ({"regime_params": {"width": 16, "activation": "relu"}},
     ("task", "test", "data", "validation"), ("fit",)),
    ({"n_train": 60}, ("task", "test", "validation"), ("data", "fit")),
    ({"seed": 1}, (), ("task", "test", "data", "fit", "validation")),
    ({"task_params": {"dim": 4, "noise": 0.3}}, (), ("task", "test", "data", "fit", "validation")),
])
def test_stream_dependencies(change, same, different):
    base, other = _run(), _run(**change)
    for stream in same:
        assert np.array_equal(_draw(base, stream), _draw(other, stream)), stream
    for stream in different:
        assert not np.array_equal(_draw(base, stream), _draw(other, stream)), stream


def test_unknown_stream_is_rejected():
    with pytest.raises(ValueError, match="stream='init'.*allowed: task, test, data, fit"):
        stream_seed_sequence(_run(), "init")


def test_adding_seeds_and_widths_keeps_existing_runs(write_spec):
    small = load_sweep(write_spec(BASE_SPEC, "small.toml"), CATALOG)
    grown = load_sweep(write_spec(BASE_SPEC.replace("width = [2, 4, 8]", "width = [8, 2, 16, 4]")
                                  .replace("seeds = [0, 1]", "seeds = [2, 0, 1]"), "big.toml"),
                       CATALOG)
    small_ids = {run.run_id: run for run in small.runs}
    grown_ids = {run.run_id: run for run in grown.runs}
    assert set(small_ids) < set(grown_ids)
    for run_id, run in small_ids.items():
        assert all(np.array_equal(_draw(run, s), _draw(grown_ids[run_id], s))
                   for s in ("task", "test", "data", "fit"))
