"""yehudai-shamir: the smoke scale end to end, with its separations asserted over seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from contracts import MACHINE_MEMORY_GB
from lazylab.experiments import load_sweep
from lazylab.studies import STUDIES, reproduce
from lazylab.studies import _yehudai_shamir
from lazylab.studies._yehudai_shamir import (FIT_GAP, absolute_epsilon, growth_fit, head_scales,
                                             minimal_head_scale, neuron_table, required_widths,
                                             requirement_means)
from lazylab.studies.base import spec_to_toml
from lazylab.studies.yehudai_shamir import SGD_TOL, SIZES, sweeps, width_grid


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("ys")
    result = reproduce("yehudai-shamir", scale="smoke", executor="inprocess", output_dir=out,
                       quiet=True)
    return result, pd.read_csv(result["csv"])


def test_smoke_writes_every_output(smoke):
    result, _ = smoke
    assert result["runs"]["failed"] == 0 and result["runs"]["diverged"] == 0
    assert result["runs"]["done"] == result["runs"]["total"] > 0
    for path in [*result["figures"], result["csv"], result["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    text = result["summary"].read_text()
    assert "k(ε) [95 % CI]" in text and "gradient methods learn a single neuron" in text


def test_required_width_grows_with_d_for_every_draw(smoke):
    _, table = smoke
    rf = table[table["panel"] == "rf_risk"][["dim", "width", "seed", "risk"]]
    needs = required_widths(rf, ["0.03", "absolute"])
    at = {(e, d): g["required"].to_numpy() for (e, d), g in needs.groupby(["epsilon", "dim"])}
    # every draw at d = 6 needs more features than every draw at d = 2 (smoke: ≈ 50 against 5)
    assert at[("0.03", 6)].min() > 3 * at[("0.03", 2)].max()
    # at the theorem's threshold d = 6 needs ≈ 2,900 features: beyond the smoke grid (256)
    assert np.all(np.isinf(at[("absolute", 6)])) and np.all(np.isfinite(at[("absolute", 4)]))


def test_measurements_follow_the_harmonic_count_theory(smoke):
    _, table = smoke
    means = table[(table["panel"] == "required_width") & (table["dim"] >= 4)
                  & np.isfinite(table["required"])]
    ratio = means["required"] / means["theory"]
    # the deterministic equivalent is asymptotic; smoke: 0.79–1.2 except ε = 0.1, d = 6 (0.54)
    strict = means["epsilon"].astype(str).isin(["0.03", "absolute"])
    assert np.all((ratio[strict] > 0.6) & (ratio[strict] < 1.6))
    assert np.all((ratio > 0.4) & (ratio < 2.5))


def test_minimal_heads_are_certified_and_below_the_ridge_path(smoke):
    _, table = smoke
    heads = table[table["panel"] == "minimal_head"]
    assert len(heads) >= 9 and np.isfinite(heads["upper"]).all()
    assert np.all(heads["lower"] <= heads["upper"])
    assert np.all(heads["upper"] <= heads["lower"] / (1 - 2e-2) * (1 + 1e-9))
    assert np.all(heads["ridge_lower"] <= heads["upper"] * (1 + 1e-9))
    assert np.all(heads["upper"] <= heads["ridge_upper"] * (1 + 1e-9))


def test_minimal_heads_are_kept_in_the_cache_file_and_computed_once(smoke, monkeypatch):
    """The figure's rebuild reads panel (c) back from its CSV (the smoke run wrote it); programs
    missing from it are solved in a spawned pool and appended, with the in-process values."""
    result, table = smoke
    cache = result["output_dir"] / "yehudai-shamir-minimal-heads.csv"
    stored = pd.read_csv(cache, dtype={"epsilon": str})
    heads = table[table["panel"] == "minimal_head"]
    assert len(stored) == len(heads.drop_duplicates(["epsilon", "dim", "width", "seed"]))
    means = pd.DataFrame({"epsilon": ["0.1", "0.05"], "dim": [8, 8],
                          "required": [60.0, 100.0]})
    monkeypatch.setattr(_yehudai_shamir, "_HEADS", {})
    monkeypatch.setattr(_yehudai_shamir, "POOL_MIN_WORK", 0.0)
    pooled = head_scales(means, [64, 128, 256], seeds=2, cap=256, cache=cache, workers=2)
    assert list(pooled["width"]) == [128, 128, 256, 256]
    assert len(pd.read_csv(cache)) == len(stored) + 4
    for row in pooled.itertuples(index=False):
        alone = minimal_head_scale(row.epsilon, row.dim, row.width, row.seed)
        assert row.upper == pytest.approx(alone["upper"], rel=1e-12)
    monkeypatch.setattr(_yehudai_shamir, "_HEADS", {})
    monkeypatch.setattr(_yehudai_shamir, "minimal_head_scale", None)   # any solve would fail
    again = head_scales(means, [64, 128, 256], seeds=2, cap=256, cache=cache)
    pd.testing.assert_frame_equal(again, pooled)
    # programs this process solved before a cache file existed are written to a new one
    fresh = cache.with_name("fresh.csv")
    head_scales(means, [64, 128, 256], seeds=2, cap=256, cache=fresh)
    assert len(pd.read_csv(fresh)) == 4


def test_one_neuron_learns_from_4d_samples_not_from_d(smoke):
    _, table = smoke
    neurons = table[table["panel"] == "neuron"]
    reached = neurons["risk"].to_numpy() <= neurons["dim"].map(absolute_epsilon).to_numpy()
    method, ratio = neurons["method"].to_numpy(), neurons["ratio"].to_numpy()
    assert reached[(method == "sgd") & (ratio == 4)].all()        # n = 4d: exact recovery
    assert not reached[(method == "sgd") & (ratio == 1)].any()    # n = d: under-determined
    gd = reached[method == "gd"]
    assert gd.sum() >= gd.size - 1            # one initialization may stay stuck (smoke: d = 2)


def test_every_neuron_fit_is_converged_and_4d_samples_are_fitted(smoke):
    """0 unconverged neuron runs (the panel's goal); at n = 4d every seed fits its samples (train
    loss below the certificate's L / Var y ≤ 1e-12, far below FIT_GAP); at n = d some seed
    stops at a spurious minimum (positive train loss, certified stationary) — more steps would
    not move it."""
    _, table = smoke
    neurons = table[table["panel"] == "neuron"]
    assert (neurons["outcome"] != "unconverged").all()
    four = neurons[(neurons["method"] == "sgd") & (neurons["ratio"] == 4)]
    assert (four["outcome"] == "fitted").all() and (four["train"] < 1e-12).all()
    stationary = neurons[neurons["outcome"] == "stationary"]
    assert (stationary["converged"] == 1).all() and (stationary["train"] > FIT_GAP).all()


def test_outcomes_follow_the_loss_then_the_certificate():
    frame = pd.DataFrame({"weight_norm": 4.0, "dim": 4, "seed": [0, 1, 2, 3], "n_train": 8,
                          "population_risk": 1.0, "converged": [0.0, 1.0, 1.0, 0.0],
                          "final_train_loss": [1e-30, 1e-30, 0.5, 0.5], "steps": 10.0})
    table = neuron_table({"ys-sgd-d4-n8": frame})
    assert list(table["outcome"]) == ["fitted", "fitted", "stationary", "unconverged"]
    assert np.allclose(table["train"], frame["final_train_loss"] / 8.0)


def test_sgd_runs_stop_on_tolerance_with_a_longer_budget_below_4d():
    sizes = SIZES["default"]
    regimes = {s["name"]: s["regime"][0] for s in sweeps("default") if "-sgd-" in s["name"]}
    assert regimes["ys-sgd-d8-n16"]["max_steps"] == sizes.sgd_few_steps
    assert regimes["ys-sgd-d8-n32"]["max_steps"] == sizes.sgd_steps
    assert all(r["tol"] == SGD_TOL and "steps" not in r for r in regimes.values())


def test_growth_fit_recovers_a_power_law_and_prefers_it():
    dims = np.array([4, 8, 12, 16, 20, 24])
    noise = np.array([1.05, 0.95, 1.02, 0.97, 1.04, 1.0])
    means = pd.DataFrame({"dim": dims, "required": 3.0 * dims ** 2.5 * noise})
    fit = growth_fit(means)
    assert fit["k"] == pytest.approx(2.5, abs=0.1) and fit["k_low"] < 2.5 < fit["k_high"]
    assert fit["k_high"] - fit["k_low"] < 0.5 and fit["rss_power"] < fit["rss_exponential"]
    needs = pd.DataFrame({"epsilon": "0.1", "dim": [4, 4], "seed": [0, 1],
                          "required": [10.0, math.inf], "max_width": [64, 64]})
    row = requirement_means(needs).iloc[0]
    assert math.isinf(row["required"]) and row["censored"] == 1


def test_width_grid_reaches_the_absolute_threshold_where_affordable():
    sizes = SIZES["default"]
    assert max(width_grid(6, sizes)) >= 2 * 2931 * 0.98       # theory at ε_abs(6) ≈ 2,931
    assert max(width_grid(24, sizes)) == sizes.max_width and max(width_grid(2, sizes)) == 64


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_every_scale_validates(scale, tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYLAB_MAX_MEMORY_GB", MACHINE_MEMORY_GB)  # not the free memory now
    assert "yehudai-shamir" in STUDIES
    sizes = SIZES[scale]
    assert sizes.rf_seeds >= 3 and sizes.nn_seeds >= 3
    dims = np.array(sizes.dims)
    assert scale == "smoke" or (dims[0] == 2 and dims[-1] >= 24 and len(set(np.diff(dims))) == 1)
    for spec in sweeps(scale):
        path = tmp_path / f"{spec['name']}.toml"
        path.write_text(spec_to_toml(spec))
        assert len(load_sweep(path).runs) > 0
