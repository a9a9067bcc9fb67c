"""Model selection: grids with a rule, chosen on the validation stream or the population risk."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest

import lazylab.experiments.execute as execute_module
from experiments import minilab
from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab.experiments import default_catalog
from lazylab.models import REGIMES
from lazylab.risk import population_risk
from lazylab.tasks import TASKS
from lazylab.experiments import (DONE, FAILED, Store, execute_run, load_sweep, results_frame,
                                 run_sweep)
from lazylab.experiments.runs import make_run, stream_entropy, stream_generators
from lazylab.experiments.selection import (Criterion, Selection, default_ridge_grid,
                                           fit_with_selection)
from lazylab.experiments.spec import SpecError

GRID = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
TASK = {"dim": 4, "noise": 0.2}


def _selected_run(grid=GRID, rule="validation", n_train=30, validation_size=50, width=8):
    params = {"width": width, "activation": "relu", "ridge": {"grid": list(grid), "select": rule}}
    return make_run("linear", TASK, "ridge_features", params, n_train, 100, 0, validation_size)


def _fit_stream(run):
    return stream_generators(run)["fit"]


def _brute_force(run, grid, score):
    """Fit every grid value independently; return the risks (the argmin is the choice)."""
    streams = stream_generators(run)
    task = minilab.linear(rng=streams["task"], **TASK)
    train = task if run.n_train is None else task.sample(run.n_train, rng=streams["data"])
    risks = []
    for ridge in grid:
        model = minilab.RidgeFeatures(width=8, ridge=ridge).fit(train, rng=_fit_stream(run))
        risks.append(score(task, streams, model))
    return np.array(risks)


def _validation_score(run):
    def score(task, streams, model):
        validation = task.sample(run.validation_size, rng=stream_generators(run)["validation"])
        return minilab.empirical_risk(model, validation)
    return score


def test_chosen_ridge_is_the_argmin_of_independent_validation_risks():
    run = _selected_run()
    outcome = execute_run(run, catalog=CATALOG)
    assert outcome.status == DONE, outcome.error
    risks = _brute_force(run, GRID, _validation_score(run))
    best = int(np.argmin(risks))
    assert outcome.metrics["selected_ridge"] == GRID[best]
    assert outcome.metrics["selection_risk"] == pytest.approx(risks[best], rel=1e-12)
    assert outcome.metrics["selection_at_edge"] == float(best in (0, len(GRID) - 1))
    assert outcome.metrics["ridge_grid_scale"] == 1.0
    assert "validation" in outcome.seeds
    # what is measured is the model fitted at the chosen value (the run's own fit stream)
    streams = stream_generators(run)
    task = minilab.linear(rng=streams["task"], **TASK)
    model = minilab.RidgeFeatures(width=8, ridge=GRID[best]).fit(
        task.sample(30, rng=streams["data"]), rng=_fit_stream(run))
    test = task.sample(100, rng=streams["test"])
    assert outcome.metrics["test_risk"] == minilab.empirical_risk(model, test)


def test_a_grid_on_the_wrong_side_is_flagged_at_its_edge():
    outcome = execute_run(_selected_run(grid=[10.0, 100.0, 1000.0]), catalog=CATALOG)
    assert outcome.metrics["selected_ridge"] == 10.0
    assert outcome.metrics["selection_at_edge"] == 1.0


@dataclass(frozen=True, kw_only=True)
class _Quadratic:
    """A fake regime whose fitted 'risk' is (value − 3)² + offset² (for the generic loop)."""

    value: float = 0.0
    offset: float = 0.0

    def fit(self, data, *, rng):
        return (self.value - 3.0) ** 2 + self.offset ** 2 + 0.0 * rng.standard_normal()


@pytest.mark.parametrize("grid, chosen, edge", [
    ([1.0, 2.0, 3.0, 4.0, 5.0], 3.0, 0.0), ([4.0, 5.0, 6.0], 4.0, 1.0), ([3.0], 3.0, 1.0)])
def test_generic_loop_and_edge_flag(grid, chosen, edge):
    def build(params):
        return _Quadratic(**params)
    predictor, metrics = fit_with_selection(
        build, {"offset": 0.5}, {"value": Selection(tuple(grid), "validation")}, None,
        fit_rng=lambda: np.random.default_rng(0), criterion=Criterion(float, None))
    assert predictor == (chosen - 3.0) ** 2 + 0.25
    assert metrics["selected_value"] == chosen and metrics["selection_at_edge"] == edge


class _TestSetTouched(AssertionError):
    pass


@dataclass(frozen=True)
class _TrapData:
    """A test set that raises on any use until selection has ended."""

    data: minilab.Dataset
    state: dict

    def __getattr__(self, name):
        if not self.state["selection_over"]:
            raise _TestSetTouched(f"test set read ({name}) before the selection ended")
        return getattr(self.data, name)


def _trap_catalog(state):
    @dataclass(frozen=True)
    class TrapTask(minilab.LinearTask):
        def sample(self, n, *, rng):
            data = super().sample(n, rng=rng)
            if n == 100:  # n_test
                state["events"].append("test drawn")
                return _TrapData(data, state)
            return data

    def build(*, rng, dim: int = 4, noise: float = 0.1):
        return TrapTask(**dataclasses.asdict(minilab.linear(rng=rng, dim=dim, noise=noise)))

    return dataclasses.replace(CATALOG, tasks={"linear": build})


@dataclass(frozen=True, kw_only=True)
class _PathRidgeFeatures(minilab.RidgeFeatures):
    """minilab's ridge features with a ``fit_path`` (every ridge from a copy of one generator)."""

    paths = []  # class attribute, not a field: the grid sizes fit_path was called with

    def fit_path(self, data, ridges, *, rng):
        self.paths.append(len(ridges))
        return [dataclasses.replace(self, ridge=r).fit(data, rng=copy.deepcopy(rng))
                for r in ridges]


@pytest.mark.parametrize("closes, path", [(True, False), (False, False), (True, True),
                                          (False, True)])
def test_the_test_set_is_not_read_before_the_choice(monkeypatch, closes, path):
    state = {"selection_over": False, "events": []}
    real = execute_module.fit_with_selection

    def watched(*args, **kwargs):
        result = real(*args, **kwargs)
        state["events"].append("selection over")
        state["selection_over"] = closes
        return result

    monkeypatch.setattr(execute_module, "fit_with_selection", watched)
    monkeypatch.setattr(_PathRidgeFeatures, "paths", [])
    catalog = _trap_catalog(state)
    if path:
        catalog = dataclasses.replace(catalog, regimes={"ridge_features": _PathRidgeFeatures})
    outcome = execute_run(_selected_run(), catalog=catalog)
    assert _PathRidgeFeatures.paths == ([len(GRID)] if path else [])
    if closes:
        assert outcome.status == DONE, outcome.error
        assert state["events"] == ["selection over", "test drawn"]
        assert math.isfinite(outcome.metrics["test_risk"])
    else:  # the trap works: a test set read while selection is still open fails the run
        assert outcome.status == FAILED and "_TestSetTouched" in outcome.error


def test_runs_without_selection_keep_their_identity_seeds_and_numbers():
    # values computed with the code before selection existed (commit 7c31a47); the risk to
    # 1e-12, not bit for bit: another BLAS or thread count rounds it differently (torch 2.11
    # with 16 threads on the GPU machine: ...825 against ...819)
    run = make_run("linear", TASK, "ridge_features",
                   {"width": 8, "activation": "relu", "ridge": 1e-3}, 30, 100, 0)
    assert run.run_id == "a2229d3ebadb1ce7c6e3"
    assert stream_entropy(run) == {"task": 2041952632, "test": 488763130, "data": 234160146,
                                   "fit": 3606444185}
    outcome = execute_run(run, catalog=CATALOG)
    assert outcome.metrics["test_risk"] == pytest.approx(0.08228668657488819, rel=1e-12)
    assert outcome.metrics["population_risk"] == 0.09571594875819162
    assert outcome.metrics["train_risk"] == 0.04890051237593857
    population = make_run("quadratic", {"dim": 8}, "random_features", {"width": 16}, None, 1000, 3)
    assert population.run_id == "773a689d00938a357d04"
    assert stream_entropy(population) == {"task": 3913302381, "test": 3868614046,
                                          "data": 1555536099, "fit": 2085375531}


def test_validation_size_enters_only_the_identity_of_selected_runs(write_spec):
    plain = load_sweep(write_spec(BASE_SPEC, "plain.toml"), CATALOG)
    sized = load_sweep(write_spec(BASE_SPEC.replace("n_test = 100", "n_test = 100\n"
                                                    "validation_size = 40"), "sized.toml"), CATALOG)
    assert [r.run_id for r in plain.runs] == [r.run_id for r in sized.runs]
    selected = _selected_run(validation_size=40)
    assert selected.to_dict()["validation_size"] == 40
    assert selected.run_id != _selected_run(validation_size=50).run_id


SELECTION_SPEC = """
[task]
name = "linear"
dim = 4
noise = 0.2

[[regime]]
name = "ridge_features"
width = 8
ridge = RIDGE

[sweep]
n_train = [30, "population"]
n_test = 100
validation_size = 50
seeds = [0, 1]
"""


def test_chosen_value_is_in_the_results_frame_and_csv(write_spec, tmp_path):
    spec = SELECTION_SPEC.replace("RIDGE", "{ grid = [1e-6, 1e-3, 1.0] }")
    sweep = load_sweep(write_spec(spec), CATALOG)
    assert "selected_ridge" in sweep.metrics and "selection_at_edge" in sweep.metrics
    with Store(tmp_path / "s.sqlite") as store:
        run_sweep(sweep, store, run_function=lambda r: execute_run(r, catalog=CATALOG))
        frame = results_frame(sweep, store)
    assert len(frame) == 4 and set(frame["status"]) == {DONE}
    assert set(frame["selected_ridge"]) <= {1e-6, 1e-3, 1.0}
    assert frame["ridge"].map(str).str.contains("grid").all()
    frame.to_csv(tmp_path / "out.csv", index=False)
    assert "selected_ridge" in (tmp_path / "out.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("ridge, n_train, field, message", [
    ('{ grid = [1e-3], select = "population" }', "[30]", "regime[0].ridge", "population"),
    ('{ grid = [1e-3], pick = "validation" }', "[30]", "regime[0].ridge", "unknown key 'pick'"),
    ('{ grid = [1e-3], select = "test" }', "[30]", "regime[0].ridge", "allowed: validation"),
    ('{ grid = [1e-3, -1.0] }', "[30]", "regime[0].ridge", "ridge=-1.0"),
    ('{ grid = [] }', "[30]", "regime[0].ridge", "non-empty"),
    ('{ grid = ["big"] }', "[30]", "regime[0].ridge", "not allowed"),
])
def test_malformed_selections_are_spec_errors(write_spec, ridge, n_train, field, message):
    spec = SELECTION_SPEC.replace("RIDGE", ridge).replace('[30, "population"]', n_train)
    with pytest.raises(SpecError, match=message) as error:
        load_sweep(write_spec(spec), CATALOG)
    assert error.value.field == field


def test_task_fields_cannot_be_selected(write_spec):
    spec = SELECTION_SPEC.replace("RIDGE", "1e-3").replace("noise = 0.2", "noise = { grid = [0.1] }")
    with pytest.raises(SpecError, match="only regime fields") as error:
        load_sweep(write_spec(spec), CATALOG)
    assert error.value.field == "task.noise"


def test_default_ridge_grid_is_log_spaced_and_relative():
    grid = default_ridge_grid(2.5)
    assert len(grid) == 11
    assert np.allclose(np.log10(grid), np.log10(2.5) + np.arange(-8, 3), rtol=0, atol=1e-12)
    assert len(default_ridge_grid(1.0, per_decade=2)) == 21
    with pytest.raises(ValueError, match="scale"):
        default_ridge_grid(0.0)


def test_auto_grid_scale_is_the_mean_squared_feature_norm():
    params = {"width": 8, "activation": "relu", "ridge": {"grid": "default"}}
    run = make_run("linear", TASK, "ridge_features", params, 30, 100, 0, 50)
    outcome = execute_run(run, catalog=CATALOG)
    assert outcome.status == DONE, outcome.error
    streams = stream_generators(run)
    task = minilab.linear(rng=streams["task"], **TASK)
    train = task.sample(30, rng=streams["data"])
    model = minilab.RidgeFeatures(width=8, ridge=1.0).fit(train, rng=_fit_stream(run))
    scale = float((model.features(train.x) ** 2).sum(1).mean())
    assert outcome.metrics["ridge_grid_scale"] == pytest.approx(scale, rel=1e-12)
    assert outcome.metrics["selected_ridge"] in default_ridge_grid(scale)


def test_population_selection_is_the_argmin_of_exact_population_risks():
    grid = [1e-8, 1e-5, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    params = {"width": 12, "activation": "relu", "ridge": {"grid": grid}}
    run = make_run("quadratic", {"dim": 6}, "random_features", params, None, 200, 0, 200)
    outcome = execute_run(run, catalog=default_catalog())
    assert outcome.status == DONE, outcome.error
    streams = stream_generators(run)
    task = TASKS["quadratic"](rng=streams["task"], dim=6)
    risks = [float(population_risk(REGIMES["random_features"](width=12, ridge=r).fit(
        task, rng=_fit_stream(run)), task)) for r in grid]
    best = int(np.argmin(risks))
    assert outcome.metrics["selected_ridge"] == grid[best]
    assert outcome.metrics["population_risk"] == pytest.approx(risks[best], rel=1e-10)
    assert outcome.metrics["selection_risk"] == pytest.approx(min(risks), rel=1e-10)


@pytest.mark.parametrize("regime, params, n_train", [
    (name, params, n_train) for name, params in (
        ("random_features", {"width": 10}), ("neural_tangent", {"width": 5}),
        ("semi_random", {"width": 5}), ("kernel", {"kind": "ntk"}))
    for n_train in (40, None) if not (name == "kernel" and n_train is None)])  # kernel: no n = inf
def test_auto_selection_runs_for_every_ridge_regime(regime, params, n_train):
    run = make_run("quadratic", {"dim": 4}, regime, {**params, "ridge": {"grid": "default"}},
                   n_train, 100, 1, 100)
    outcome = execute_run(run, catalog=default_catalog())
    assert outcome.status == DONE, outcome.error
    scale = outcome.metrics["ridge_grid_scale"]
    assert scale > 0 and scale != 1.0
    assert outcome.metrics["selected_ridge"] in default_ridge_grid(scale)


def test_auto_means_the_default_grid_only_where_the_field_rejects_the_string(write_spec):
    spec = """
    [task]
    name = "quadratic"
    dim = 4

    [[regime]]
    name = "random_features"
    width = 6
    ridge = "auto"

    [[regime]]
    name = "one_step"
    width = 6
    ridge = "auto"

    [sweep]
    n_train = 40
    n_test = 50
    """
    sweep = load_sweep(write_spec(spec), default_catalog())
    ridges = {run.regime: run.regime_dict()["ridge"] for run in sweep.runs}
    assert ridges == {"random_features": {"grid": "default"}, "one_step": "auto"}
    sizes = {run.regime: run.validation_size for run in sweep.runs}
    assert sizes == {"random_features": 50, "one_step": None}
    assert sweep.metrics[-2:] == ("selected_ridge", "selection_at_edge")


def test_a_selection_in_the_sweep_section_applies_to_every_regime_declaring_it(write_spec):
    spec = SELECTION_SPEC.replace("ridge = RIDGE\n", "").replace(
        "seeds = [0, 1]", "seeds = [0, 1]\nridge = { grid = [1e-3, 1e-1] }")
    sweep = load_sweep(write_spec(spec), CATALOG)
    assert all(run.regime_dict()["ridge"] == {"grid": [1e-3, 1e-1]} for run in sweep.runs)
    assert {run.validation_size for run in sweep.runs} == {50}


def test_a_non_numeric_grid_records_the_index_of_the_choice(write_spec):
    spec = SELECTION_SPEC.replace("RIDGE", "1e-3").replace(
        "width = 8", 'width = 8\nactivation = { grid = ["relu", "tanh", "quadratic"] }')
    sweep = load_sweep(write_spec(spec), CATALOG)
    assert sweep.metrics[-2:] == ("selected_activation_index", "selection_at_edge")
    run = sweep.runs[0]
    outcome = execute_run(run, catalog=CATALOG)
    assert outcome.status == DONE, outcome.error
    streams = stream_generators(run)
    task = minilab.linear(rng=streams["task"], **TASK)
    train = task if run.n_train is None else task.sample(run.n_train, rng=streams["data"])
    validation = task.sample(50, rng=streams["validation"])
    risks = [minilab.empirical_risk(minilab.RidgeFeatures(width=8, activation=a, ridge=1e-3).fit(
        train, rng=_fit_stream(run)), validation) for a in ("relu", "tanh", "quadratic")]
    assert outcome.metrics["selected_activation_index"] == float(np.argmin(risks))


# --- ridge paths: one factorization for the whole ridge grid -------------------------------------

PATH_CASES = [  # (regime, params, n_train): Kernel (exact), RF (primal and dual), NT (direct)
    ("kernel", {"kind": "ntk"}, 150), ("random_features", {"width": 20}, 60),
    ("random_features", {"width": 40, "offset": False}, 15), ("neural_tangent", {"width": 3}, 40)]
PATH_GRID = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]


def _refitting(catalog, name):
    """The catalog with regime ``name`` stripped of its path: selection refits every value."""
    stripped = dataclasses.make_dataclass(
        "Refit", [], bases=(catalog.regimes[name],), frozen=True, kw_only=True,
        namespace={"fit_path": None})
    return dataclasses.replace(catalog, regimes={**catalog.regimes, name: stripped})


def _counting_fits(monkeypatch, regime_class):
    calls = []
    real = regime_class.fit

    def counted(self, *args, **kwargs):
        calls.append(self.ridge)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(regime_class, "fit", counted)
    return calls


@pytest.mark.parametrize("regime, params, n_train", PATH_CASES)
def test_the_ridge_path_chooses_as_refitting_does(monkeypatch, regime, params, n_train):
    # Both routes solve the same exact systems (per-value agreement to ≤ 1e-8 relative is
    # tested in tests/models and tests/solvers), so the choice, the edge flag and the risks agree;
    # risks to 1e-8 relative. The path does no per-value fit at all.
    catalog = default_catalog()
    run = make_run("quadratic", {"dim": 4}, regime, {**params, "ridge": {"grid": PATH_GRID}},
                   n_train, 200, 2, 100)
    calls = _counting_fits(monkeypatch, catalog.regimes[regime])
    path = execute_run(run, catalog=catalog)
    assert calls == [] and path.status == DONE, path.error
    refit = execute_run(run, catalog=_refitting(catalog, regime))
    assert calls == PATH_GRID and refit.status == DONE, refit.error
    for metric in ("selected_ridge", "selection_at_edge", "ridge_grid_scale",
                   "selection_diverged"):
        assert path.metrics[metric] == refit.metrics[metric], metric
    for metric in ("selection_risk", "test_risk", "train_risk"):
        assert path.metrics[metric] == pytest.approx(refit.metrics[metric], rel=1e-8), metric


def test_the_path_along_another_selected_field_and_the_default_grid(monkeypatch):
    # width × ridge jointly: one path per width; "auto" ridge: one reference fit for the scale.
    catalog = default_catalog()
    params = {"width": {"grid": [5, 20]}, "ridge": {"grid": "default"}}
    run = make_run("quadratic", {"dim": 4}, "random_features", params, 60, 200, 0, 100)
    calls = _counting_fits(monkeypatch, catalog.regimes["random_features"])
    path = execute_run(run, catalog=catalog)
    assert path.status == DONE, path.error
    assert len(calls) == 1  # the reference fit that measures the grid's scale
    refit = execute_run(run, catalog=_refitting(catalog, "random_features"))
    assert len(calls) == 1 + 1 + 2 * 11
    for metric in ("selected_ridge", "selected_width", "selection_at_edge", "ridge_grid_scale"):
        assert path.metrics[metric] == refit.metrics[metric], metric
    assert path.metrics["test_risk"] == pytest.approx(refit.metrics["test_risk"], rel=1e-8)


@pytest.mark.parametrize("n_train", [60, None])
@pytest.mark.parametrize("regime, params", [
    ("neural_tangent", {"width": 3, "train_head": True, "ridge": {"grid": "default"}}),
    ("semi_random", {"width": 3, "degree": 1, "ridge": {"grid": "default"}})])
def test_the_tangent_grid_scale_comes_from_the_unfitted_model_as_from_a_reference_fit(
        monkeypatch, n_train, regime, params):
    # NT's feature scale mean ‖φ(x)‖² depends on W and x alone, and initial_model draws W as
    # fit does: the same scale to round-off with no fit at all (fig1's paper NT least squares
    # spent ≈ 44 s per seed on the reference fit at n = 112,500). Without initial_model the
    # reference ridge is fitted, and the choice and risks are the same.
    # SemiRandom's units are gated features too, with the same initial model.
    catalog = default_catalog()
    run = make_run("quadratic", {"dim": 4}, regime, params, n_train, 200, 2, 100)
    calls = _counting_fits(monkeypatch, catalog.regimes[regime])
    unfitted = execute_run(run, catalog=catalog)
    assert unfitted.status == DONE, unfitted.error
    fitted_ridges = list(calls)
    assert len(fitted_ridges) == (0 if n_train else 11)   # the path on samples; 11 refits at ∞
    stripped = dataclasses.make_dataclass(
        "Fitted", [], bases=(catalog.regimes[regime],), frozen=True, kw_only=True,
        namespace={"initial_model": None})
    reference = execute_run(run, catalog=dataclasses.replace(
        catalog, regimes={**catalog.regimes, regime: stripped}))
    assert reference.status == DONE, reference.error
    assert calls[len(fitted_ridges)] == 1.0       # the reference fit, first
    assert unfitted.metrics["ridge_grid_scale"] == pytest.approx(
        reference.metrics["ridge_grid_scale"], rel=1e-14)
    assert unfitted.metrics["selected_ridge"] == reference.metrics["selected_ridge"]
    assert unfitted.metrics["test_risk"] == pytest.approx(reference.metrics["test_risk"],
                                                          rel=1e-10)


def test_falkon_takes_the_path_and_population_fits_refit_every_value(monkeypatch):
    # FALKON's grid is one Kernel.fit_path (solvers.falkon.falkon_path): no fit per value.
    catalog = default_catalog()
    kernel_calls = _counting_fits(monkeypatch, catalog.regimes["kernel"])
    path_calls, real_path = [], catalog.regimes["kernel"].fit_path

    def counted_path(self, data, ridges, *, rng):
        path_calls.append(list(ridges))
        return real_path(self, data, ridges, rng=rng)

    monkeypatch.setattr(catalog.regimes["kernel"], "fit_path", counted_path)
    run = make_run("quadratic", {"dim": 4}, "kernel",
                   {"kind": "ntk", "method": "falkon", "ridge": {"grid": [1e-4, 1e-2, 1.0]}},
                   150, 100, 0, 100)
    assert execute_run(run, catalog=catalog).status == DONE
    assert kernel_calls == [] and path_calls == [[1e-4, 1e-2, 1.0]]
    rf_calls = _counting_fits(monkeypatch, catalog.regimes["random_features"])
    run = make_run("quadratic", {"dim": 4}, "random_features",
                   {"width": 6, "ridge": {"grid": [1e-4, 1.0]}}, None, 100, 0, 100)
    assert execute_run(run, catalog=catalog).status == DONE
    assert rf_calls == [1e-4, 1.0]


@dataclass(frozen=True, kw_only=True)
class _Plateau:
    """A fake regime whose 'risk' is 0 at (ridge, value) ∈ {(2, 1), (1, 2)} and 1 elsewhere."""

    ridge: float = 1.0
    value: float = 1.0

    def fit(self, data, *, rng):
        return 0.0 if (self.ridge, self.value) in {(2.0, 1.0), (1.0, 2.0)} else 1.0

    def fit_path(self, data, ridges, *, rng):
        return [dataclasses.replace(self, ridge=r).fit(data, rng=rng) for r in ridges]


@pytest.mark.parametrize("path", [True, False])
def test_ties_go_to_the_first_combination_in_grid_order_with_or_without_a_path(path):
    # The path fits ridge innermost ((2, 1) before (1, 2)); grid order puts ridge first, so the
    # tie goes to ridge = 1, value = 2, exactly as refitting in grid order does.
    regime = _Plateau if path else dataclasses.make_dataclass(
        "NoPath", [], bases=(_Plateau,), frozen=True, kw_only=True, namespace={"fit_path": None})
    selected = {"ridge": Selection((1.0, 2.0, 3.0), "validation"),
                "value": Selection((1.0, 2.0), "validation")}
    predictor, metrics = fit_with_selection(
        lambda params: regime(**params), {}, selected, None,
        fit_rng=lambda: np.random.default_rng(0), criterion=Criterion(float, None))
    assert predictor == 0.0
    assert (metrics["selected_ridge"], metrics["selected_value"]) == (1.0, 2.0)


@dataclass(frozen=True)
class _Certified:
    """A fitted 'model': validation risk ``risk`` and a convergence certificate, under the
    name a conjugate-gradient fit uses when ``key`` says so."""

    risk: float
    converged: int
    key: str = "converged"

    @property
    def diagnostics(self):
        return {self.key: self.converged}


@dataclass(frozen=True, kw_only=True)
class _Stopped:
    """Fits whose certificate failed at step sizes 1 and 3 (the least risks of the grid)."""

    rate: float

    def fit(self, data, *, rng):
        return _Certified(risk=abs(self.rate - 2.0), converged=int(self.rate not in (1.0, 3.0)))


@pytest.mark.parametrize("grid, chosen, unconverged", [
    ((1.0, 5.0, 3.0), 5.0, 2.0),   # the certified fit wins although its risk is the largest
    ((1.0, 3.0), 1.0, 2.0),        # none certified: the least risk, first in grid order
    ((2.0, 5.0), 2.0, 0.0)])       # all certified: the least risk
def test_an_unconverged_fit_is_chosen_only_when_no_fit_converged(grid, chosen, unconverged):
    predictor, metrics = fit_with_selection(
        lambda params: _Stopped(**params), {}, {"rate": Selection(grid, "validation")}, None,
        fit_rng=lambda: np.random.default_rng(0),
        criterion=Criterion(lambda model: model.risk, None))
    assert metrics["selected_rate"] == chosen
    assert metrics["selection_unconverged"] == unconverged
    assert predictor.risk == abs(chosen - 2.0)


@dataclass(frozen=True, kw_only=True)
class _StoppedCG:
    """As _Stopped, with the certificate a conjugate-gradient fit reports (NT: cg_converged)."""

    rate: float

    def fit(self, data, *, rng):
        return _Certified(risk=abs(self.rate - 2.0), converged=int(self.rate != 1.0),
                          key="cg_converged")


def test_a_conjugate_gradient_certificate_counts_as_one():
    # NT's CG fits report cg_converged, not converged: they were never demoted before.
    predictor, metrics = fit_with_selection(
        lambda params: _StoppedCG(**params), {}, {"rate": Selection((1.0, 5.0), "validation")},
        None, fit_rng=lambda: np.random.default_rng(0),
        criterion=Criterion(lambda model: model.risk, None))
    assert metrics["selected_rate"] == 5.0 and metrics["selection_unconverged"] == 1.0
