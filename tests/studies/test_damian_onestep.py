"""damian-onestep: smoke end to end and the samples-needed helper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lazylab.studies import STUDIES, reproduce
from lazylab.studies.damian_onestep import THRESHOLD, _reference, samples_needed


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("damian")
    return reproduce("damian-onestep", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def test_smoke_writes_every_output(smoke):
    assert "damian-onestep" in STUDIES
    assert smoke["runs"]["failed"] == 0 and smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    assert "n needed" in smoke["summary"].read_text()


def test_one_step_learns_where_lazy_methods_do_not(smoke):
    table = pd.read_csv(smoke["csv"])
    curves = table[(table["panel"] == "excess_risk") & (table["target"] == "single-he2")]
    assert np.isfinite(curves["y"]).all() and (curves["y"] > 0).all()
    for dim, group in curves.groupby("dim"):
        last = group.sort_values("x").groupby("regime").last()
        assert set(last.index) == {"one_step", "random_features", "kernel"}
        # smoke: OneStep ≈ 0.03 at n = 8 d², RF ≥ 0.5 there; at the NTK kernel's largest n
        # (≤ 600) its risk is ≥ 10× OneStep's; OneStep is below the threshold at n = 2 d²
        assert last.loc["one_step", "y"] < 0.15
        assert last.loc["random_features", "y"] > 0.4
        kernel_n = last.loc["kernel", "x"]
        one_step_there = group[(group["regime"] == "one_step") & (group["x"] == kernel_n)]["y"]
        assert last.loc["kernel", "y"] > 3 * float(one_step_there.iloc[0])
        two = group[(group["regime"] == "one_step") & (group["x"] == 2 * dim ** 2)]["y"]
        assert float(two.iloc[0]) < THRESHOLD
    needed = table[(table["panel"] == "n_needed") & (table["target"] == "single-he2")]
    one_step = needed[needed["regime"] == "one_step"]
    assert np.isfinite(one_step["y"]).all()


def test_samples_needed_interpolates_and_censors():
    assert samples_needed([10, 1000], [1.0, THRESHOLD ** 2]) == pytest.approx(100.0)
    assert samples_needed([10, 1000], [1.0, 0.9]) == math.inf


def test_reference_curves_have_the_theory_exponents():
    dims = np.array([16.0, 1024.0])
    one, kernel = _reference("two-index", dims, 16.0, 1000.0)
    assert one[0] == pytest.approx(1000.0) and kernel[0] == pytest.approx(1000.0)
    assert math.log(kernel[1] / kernel[0]) / math.log(64) == pytest.approx(4.0)
    assert 1.9 < math.log(one[1] / one[0]) / math.log(64) < 2.0     # d²r + dr^p → slope 2
