"""The Ghorbani et al. studies end to end at the smoke scale: files, points, separations, store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lazylab.studies import STUDIES, reproduce

NAMES = ("ghorbani-fig1", "ghorbani-fig2")


@pytest.fixture(scope="module", params=NAMES)
def finished(request, tmp_path_factory):
    output = tmp_path_factory.mktemp(request.param)
    result = reproduce(request.param, scale="smoke", executor="inprocess", output_dir=output,
                       quiet=True)
    return request.param, output, result


def test_every_output_is_written(finished):
    name, output, result = finished
    assert result["runs"]["failed"] == 0 and result["runs"]["diverged"] == 0
    assert result["runs"]["executed"] == result["runs"]["total"] == result["runs"]["done"]
    assert {p.suffix for p in result["figures"]} == {".png", ".pdf"}
    for path in [*result["figures"], result["csv"], result["summary"], *result["specs"]]:
        assert path.exists() and path.stat().st_size > 0
    assert (output / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_points_have_every_series_with_finite_values(finished):
    name, _, result = finished
    table = pd.read_csv(result["csv"])
    expected = {"rf_isotropic", "nt_isotropic", "nn"} | ({"rf_optimal"} if name.endswith("1")
                                                         else set())
    assert set(table.loc[table["panel"] == "left", "series"]) == expected
    assert set(table.loc[table["panel"] == "right", "series"]) == {"nn", "nt_sgd", "nt_ridge"}
    assert set(table.loc[table["panel"] == "limit", "series"]) == {"nt_isotropic", "nn"}
    assert np.all(np.isfinite(table["mean"])) and (table["mean"] >= -1e-9).all()
    left = table[table["panel"] == "left"]
    assert np.all(np.isfinite(left["theory"]))
    assert np.allclose(left["gap"], left["mean"] - left["theory"])
    assert (table["count"] >= 3).all(), table[["series", "x", "count"]]


def test_every_width_has_nn_and_nt_dots_including_n_at_least_d(finished):
    _, _, result = finished
    table = pd.read_csv(result["csv"])
    left = table[table["panel"] == "left"]
    dim = int(left["dim"].iloc[0])
    for series in ("nn", "nt_isotropic"):
        widths = set(left.loc[left["series"] == series, "x"])
        assert any(w < dim for w in widths) and any(w >= dim for w in widths), (series, widths)
    assert (left.loc[left["series"].isin(["nn", "nt_isotropic"]), "unconverged"] == 0).all()


def test_nn_below_nt_below_rf_at_widths_below_d(finished):
    _, _, result = finished
    table = pd.read_csv(result["csv"])
    left = table[(table["panel"] == "left") & (table["x"] < table["dim"])]
    means = left.pivot_table(index="x", columns="series", values="mean")
    means = means[["nn", "nt_isotropic", "rf_isotropic"]].dropna()
    assert len(means) >= 2
    assert (means["nn"] < means["nt_isotropic"]).all()
    assert (means["nt_isotropic"] < means["rf_isotropic"]).all()
    summary = result["summary"].read_text()
    assert f"holds at {len(means)} of {len(means)} widths N < d" in summary
    assert summary.count("supported**") >= 5 and "Unconverged n = ∞ fits: 0" in summary


def test_network_reaches_the_theorem_minimum(finished):
    """Population gradient descent on the NN reaches the global minimum of Theorem 3 / 6."""
    name, _, result = finished
    table = pd.read_csv(result["csv"])
    nn = table[(table["series"] == "nn") & (table["panel"].isin(["left", "limit"]))]
    if name == "ghorbani-fig1":     # Theorem 3's minimum 2Σ_{i>N} λ_i(B)² is exact at any d
        assert np.all(np.abs(nn["gap"]) < 1e-3), nn[["x", "mean", "theory"]]
        assert "within 1e-3 — **supported**" in result["summary"].read_text()
    else:                           # Theorem 6 holds up to o_d(1): only the trend is tested
        left = nn[nn["panel"] == "left"].sort_values("x")
        assert (left["mean"] < 1).all() and (np.diff(left["mean"]) < 0).all()


def test_neural_tangent_is_exact_at_n_at_least_d_and_near_its_finite_d_mean(finished):
    name, _, result = finished
    table = pd.read_csv(result["csv"])
    nt = table[(table["series"] == "nt_isotropic") & (table["panel"] == "left")]
    wide = nt[nt["x"] >= nt["dim"]]
    if name == "ghorbani-fig1":     # NT contains f* at N >= d (THEORY §1.4): risk 0
        assert np.all(wide["mean"] < 1e-6), wide
        narrow = nt[nt["x"] < nt["dim"]]   # Weingarten: the exact mean over W and B
        assert np.all(np.abs(narrow["reference_gap"]) <= 4 * narrow["sem"] + 1e-3), narrow
    else:                           # Theorem 5 at N >= d: 1/(1 + ||Δ||²/2) up to o_d(1)
        assert np.all(np.abs(wide["gap"]) < 0.1), wide


def test_right_panel_has_validated_ridges_and_reference_lines(finished):
    name, _, result = finished
    table = pd.read_csv(result["csv"])
    ridge = table[table["series"] == "nt_ridge"]
    assert np.all(np.isfinite(ridge["selected_ridge"])) and (ridge["selected_ridge"] > 0).all()
    assert "Validated ridge of NT least squares" in result["summary"].read_text()
    if name == "ghorbani-fig2":     # the printed eq. (17) lies above eq. (15) at every width
        rf = table[table["series"] == "rf_isotropic"]
        assert np.all(rf["reference"] > rf["theory"])


def test_rerun_reads_everything_from_the_store(finished):
    name, output, first = finished
    csv_before = pd.read_csv(first["csv"])
    again = reproduce(name, scale="smoke", executor="pool", output_dir=output, quiet=True)
    assert again["runs"]["executed"] == 0
    assert again["runs"]["done"] == first["runs"]["done"]
    pd.testing.assert_frame_equal(pd.read_csv(again["csv"]), csv_before)


def test_scales_are_documented_with_sizes():
    for name in NAMES:
        study = STUDIES[name]
        assert set(study.scales) == {"smoke", "default", "paper"}
        assert "d = 450" in study.scales["default"] and "4500" in study.scales["default"]
        assert "d = 450" in study.scales["paper"]
