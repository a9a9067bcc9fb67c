"""Selection grids that grow past the end their choice sits at (``extend = K``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from experiments.minilab import CATALOG
from lazylab.errors import DivergenceError
from lazylab.experiments import execute_run, load_sweep
from lazylab.experiments.resources import _grid_size
from lazylab.experiments.runs import make_run
from lazylab.experiments.selection import Criterion, Selection, as_selection, fit_with_selection
from lazylab.experiments.spec import SpecError

from experiments.test_selection import SELECTION_SPEC, TASK, _brute_force, _validation_score


@dataclass(frozen=True, kw_only=True)
class _Bowl:
    """A fake regime whose fitted 'risk' is (value − 3)²; it diverges above ``ceiling`` and
    rejects values above ``largest`` (ValueError, as a regime's field checks do)."""

    value: float
    ceiling: float = np.inf
    largest: float = np.inf

    def __post_init__(self):
        if self.value > self.largest:
            raise ValueError(f"value={self.value!r} must be <= {self.largest}")

    def fit(self, data, *, rng):
        if self.value > self.ceiling:
            raise DivergenceError("diverged")
        return (self.value - 3.0) ** 2


def _select(grid, extend, **fixed):
    return fit_with_selection(
        lambda params: _Bowl(**params), fixed, {"value": Selection(tuple(grid), None, extend)},
        None, fit_rng=lambda: np.random.default_rng(0), criterion=Criterion(float, None))


@pytest.mark.parametrize("grid, extend, chosen, added, edge", [
    ((4.0, 5.0, 6.0), 2, 3.2, 2, 0.0),     # 4·0.8 = 3.2 beats 4; 2.56 does not: bracketed
    ((4.0, 5.0, 6.0), 1, 3.2, 1, 1.0),     # the budget ends while still improving: at the edge
    ((0.1, 0.2), 3, 1.6, 3, 1.0),          # upward by ×2: 0.4, 0.8, 1.6, all better
    ((0.1, 0.2), 0, 0.2, 0, 1.0),          # no extension: the plain grid
    ((1.0, 3.0, 9.0), 4, 3.0, 0, 0.0)])    # an interior choice grows nothing
def test_the_grid_grows_past_the_end_the_choice_sits_at(grid, extend, chosen, added, edge):
    predictor, metrics = _select(grid, extend)
    assert metrics["selected_value"] == pytest.approx(chosen, rel=1e-12)
    assert predictor == pytest.approx((chosen - 3.0) ** 2, rel=1e-12)
    assert metrics["selection_extended"] == added and metrics["selection_at_edge"] == edge


def test_a_diverging_or_rejected_value_ends_the_extension():
    _, metrics = _select((0.5, 1.0), 3, ceiling=1.5)       # 2.0 diverges: 1.0 is bracketed
    assert metrics["selected_value"] == 1.0 and metrics["selection_at_edge"] == 0.0
    assert metrics["selection_diverged"] == 1.0 and metrics["selection_extended"] == 1.0
    _, metrics = _select((0.5, 1.0), 3, largest=1.5)       # 2.0 is rejected: nothing added
    assert metrics["selected_value"] == 1.0 and metrics["selection_at_edge"] == 1.0
    assert metrics["selection_extended"] == 0.0


def test_an_extended_ridge_is_the_argmin_of_independent_validation_risks():
    """The extension replayed by hand on independent refits: from the grid's choice, walk
    down by the grid's ratio (10) while the next value's validation risk is strictly lower,
    at most 6 values; the run must add exactly those values and choose the same ridge."""
    grid, budget = [10.0, 100.0, 1000.0], 6     # too large here: the risk falls below 10
    params = {"width": 8, "activation": "relu",
              "ridge": {"grid": grid, "select": "validation", "extend": budget}}
    run = make_run("linear", TASK, "ridge_features", params, 30, 100, 0, 50)
    below = [10.0 ** -k for k in range(budget)]                       # 1, 0.1, …, 1e-5
    risks = dict(zip(below + grid, _brute_force(run, below + grid, _validation_score(run))))
    assert min(grid, key=risks.get) == 10.0
    chosen, added = 10.0, 0
    for value in below:
        added += 1
        if not risks[value] < risks[chosen]:
            break
        chosen = value
    outcome = execute_run(run, catalog=CATALOG)
    assert outcome.metrics["selection_extended"] == added >= 1
    assert outcome.metrics["selected_ridge"] == pytest.approx(chosen, rel=1e-12)
    assert outcome.metrics["selection_risk"] == pytest.approx(risks[chosen], rel=1e-12)
    at_edge = chosen == below[added - 1] and added == budget
    assert outcome.metrics["selection_at_edge"] == float(at_edge)


def test_extend_enters_the_identity_only_when_given(write_spec):
    plain = load_sweep(write_spec(SELECTION_SPEC.replace("RIDGE", "{ grid = [1e-3, 1e-1] }"),
                                  "plain.toml"), CATALOG)
    grown = load_sweep(write_spec(SELECTION_SPEC.replace(
        "RIDGE", "{ grid = [1e-3, 1e-1], extend = 2 }"), "grown.toml"), CATALOG)
    zero = load_sweep(write_spec(SELECTION_SPEC.replace(
        "RIDGE", "{ grid = [1e-3, 1e-1], extend = 0 }"), "zero.toml"), CATALOG)
    ids = [[run.run_id for run in sweep.runs] for sweep in (plain, grown, zero)]
    assert ids[0] == ids[2] and not set(ids[0]) & set(ids[1])
    assert as_selection("ridge", {"grid": [1.0, 2.0], "extend": 2}).to_json()["extend"] == 2


@pytest.mark.parametrize("ridge, message", [
    ("{ grid = [1e-3, 1e-1], extend = -1 }", "non-negative integer"),
    ("{ grid = [1e-3, 1e-1], extend = 1.5 }", "non-negative integer"),
    ("{ grid = [1e-3], extend = 2 }", "at least two increasing positive"),
    ("{ grid = [1e-1, 1e-3], extend = 2 }", "at least two increasing positive"),
    ("{ grid = [0.0, 1e-3], extend = 2 }", "at least two increasing positive")])
def test_malformed_extensions_are_spec_errors(write_spec, ridge, message):
    with pytest.raises(SpecError, match=message):
        load_sweep(write_spec(SELECTION_SPEC.replace("RIDGE", ridge)), CATALOG)


def test_the_cost_estimate_counts_the_values_an_extension_may_add():
    options = {"ridge": Selection((1.0, 2.0, 3.0), None, 2),
               "learning_rate": {"grid": [0.1, 0.2], "extend": 1}, "width": 8}
    assert _grid_size(options) == 3 * 2 + 2 + 1
    assert _grid_size({"ridge": Selection((1.0, 2.0, 3.0))}) == 3
