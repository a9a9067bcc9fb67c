"""xie-semirandom: smoke end to end, the digits task, and the kernel spectrum."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.studies import STUDIES, reproduce
from lazylab.experiments import Store, load_sweep, results_frame
from lazylab.studies import xie_semirandom as xie
from lazylab.studies._xie_measures import (interpolation_width, match_curves,
                                           trained_parameters, unit_sphere, units_to_match)
from lazylab.studies.xie_semirandom import kernel_spectrum
from lazylab.tasks import TASKS, Dataset


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("xie")
    return reproduce("xie-semirandom", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def test_smoke_writes_every_output(smoke):
    assert "xie-semirandom" in STUDIES
    assert smoke["runs"]["failed"] == 0 and smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    text = smoke["summary"].read_text()
    for heading in ("## Claims", "## Units needed to match", "1/γ_m", "%)"):
        assert heading in text


def _curve(table, data):
    part = table[table["data"] == data]
    return part.set_index(["series", "x"])


def test_every_dot_has_three_seeds_and_semi_random_beats_rf(smoke):
    table = pd.read_csv(smoke["csv"])
    risks = table[table["data"].isin(["synthetic", "digits"])]
    assert (risks["count"] >= 3).all() and np.isfinite(risks["y"]).all()
    for data in ("synthetic", "digits"):
        curve = _curve(table, data)
        widest = max(x for (s, x) in curve.index if s == "sr0")
        rf, sr0 = curve.loc[("rf", widest)], curve.loc[("sr0", widest)]
        # semi-random below RF at equal units by more than 3 standard errors of the gap
        assert rf["y"] - sr0["y"] > 3 * np.hypot(rf["sem"], sr0["sem"])


def test_classification_error_is_a_percentage_beside_the_risk(smoke):
    table = pd.read_csv(smoke["csv"])
    errors = table[table["data"] == "digits-error-percent"]
    assert set(errors["series"]) >= {"rf", "sr0", "sr1", "network", "sr0_deep", "sr1_deep"}
    assert ((errors["y"] >= 0) & (errors["y"] <= 100)).all()
    # semi-random classifies odd/even digits better than chance at its widest N
    widest = errors[errors["series"] == "sr0"]["x"].max()
    assert errors[(errors["series"] == "sr0") & (errors["x"] == widest)]["y"].item() < 25


def test_classification_error_is_the_stored_metric_of_every_digits_run(smoke):
    """The platform stores the test classification error of each digits run's own fit; the
    study reads it without refitting, and its dots are the seed means of those numbers."""
    frame = _digits_frame(smoke)
    errors = pd.to_numeric(frame["classification_error_percent"])
    assert errors.notna().all() and ((errors >= 0) & (errors <= 100)).all()
    # a sign error costs at least 1 in squared loss (|f − y| ≥ 1 when sign f ≠ y = ±1)
    test_count = xie.SIZES["smoke"].n_test
    assert (frame["test_risk"] >= errors / 100 * 1.0 - 1e-12).all()
    assert np.allclose(errors * test_count / 100, np.round(errors * test_count / 100))
    table = pd.read_csv(smoke["csv"])
    dots = table[table["data"] == "digits-error-percent"].set_index(["series", "x"])["y"]
    runs = frame.assign(series=xie._series(frame))
    means = runs.assign(e=errors).groupby(["series", "width"])["e"].mean()
    for (series, width), mean in means.items():
        assert dots[(series, width)] == pytest.approx(mean, rel=1e-12)


def _digits_frame(smoke):
    folder = smoke["csv"].parent
    return results_frame(load_sweep(folder / "specs" / "xie-digits.toml"),
                         Store(folder / "store.sqlite"))


def test_summary_states_the_certificates_of_the_trained_digits_fits(smoke):
    text = smoke["summary"].read_text()
    assert f"to tolerance {xie.DIGITS_TOL:g} of the full-batch criterion" in text
    assert "ReLU network (fully trained): converged" in text


def test_units_to_match_interpolates_a_power_law():
    widths = np.array([2.0, 8.0, 32.0])
    assert units_to_match(0.25, widths, 1 / widths) == pytest.approx(4.0, rel=1e-12)
    assert units_to_match(1.0, widths, 1 / widths) == 2.0
    assert units_to_match(0.01, widths, 1 / widths) == math.inf


def test_trained_parameter_counts():
    assert trained_parameters("rf", 10, 64) == 11
    assert trained_parameters("sr0", 10, 64) == trained_parameters("sr1", 10, 64) == 640
    assert trained_parameters("network", 10, 64) == 661
    assert trained_parameters("sr1_deep", 10, 64) == 640 + 100 + 31
    with pytest.raises(ValueError, match="series"):
        trained_parameters("kernel", 10, 64)


def test_interpolation_needs_as_many_parameters_as_samples():
    """N d < m cannot interpolate m generic points; N d ≥ 2m does (least squares, ridge ~ 0)."""
    rng = np.random.default_rng(4)
    x = unit_sphere(rng.standard_normal((40, 5)))
    data = Dataset(x, torch.as_tensor(rng.choice([-1.0, 1.0], 40)))
    for degree in (0, 1):
        width, risks = interpolation_width(data, (4, 16), degree=degree, seed=0)
        assert width == 16 and risks[0] > 0.05 and risks[1] < 1e-6
    assert torch.allclose(x.norm(dim=1), torch.ones(40, dtype=torch.float64))


def test_digits_task_splits_without_replacement():
    task = TASKS["digits"](rng=np.random.default_rng(3), label="parity")
    train, test = task.sample(1000, rng=np.random.default_rng(0)), task.sample(797, rng=None)
    rows = {tuple(r) for r in train.x.numpy().round(9)}
    assert not any(tuple(r) in rows for r in test.x.numpy().round(9))
    assert set(np.unique(train.y.numpy())) == {-1.0, 1.0}
    both = torch.cat([train.y, test.y])
    assert task.null_risk == pytest.approx(float(both.var(unbiased=False)))
    mean = torch.cat([train.x, test.x]).mean(0)
    assert torch.allclose(mean, torch.zeros(64, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds"):
        task.sample(1, rng=None)


def test_kernel_spectrum_matches_the_gram_trace():
    x = torch.as_tensor(np.random.default_rng(1).standard_normal((60, 5)))
    for kind, degree in (("semi_random", 0), ("semi_random", 1), ("rf", 0)):
        values = kernel_spectrum(x, kind, degree)
        gram = DualKernel(kind, "relu", degree)(x, x)
        assert np.all(np.diff(values) <= 1e-12) and values.min() >= 0
        assert values.sum() == pytest.approx(float(torch.trace(gram)) / 60, rel=1e-10)


@pytest.mark.parametrize("scale", list(xie.SIZES))
def test_depth_two_decays_on_a_plateau_at_the_unrelaxed_tolerance(scale):
    """Depth 2 halves its rate on a plateau of the full-batch loss; the certificate it must meet
    is the same tolerance as the network's (the schedule does not relax it)."""
    regimes = {r["name"]: r for r in xie.sweeps(scale)[1]["regime"]}
    deep, network = regimes["deep_semi_random"], regimes["network"]
    assert deep["schedule"] == "plateau" and deep["tol"] == network["tol"] == xie.DIGITS_TOL
    assert set(network["learning_rate"]["grid"]) <= set(deep["learning_rate"]["grid"])


def test_digits_matching_is_read_on_classification_error_not_heavy_tailed_risk():
    curves = pd.DataFrame({"data": ["synthetic", "digits"], "series": ["network", "network"],
                           "width": [4, 4], "mean": [0.3, 50.0], "sem": [0.0, 40.0],
                           "count": [3, 3]})
    errors = pd.DataFrame({"data": "digits", "series": "network", "width": 4,
                           "error_percent": [2.0, 3.0, 4.0]})
    measured = match_curves(curves, errors)
    digits = measured[measured["data"] == "digits"]
    assert list(digits["mean"]) == [3.0] and digits["sem"].iloc[0] == pytest.approx(1 / 3 ** 0.5)
    assert list(measured[measured["data"] == "synthetic"]["mean"]) == [0.3]
    assert match_curves(curves, pd.DataFrame()).equals(curves[curves["data"] == "synthetic"])
