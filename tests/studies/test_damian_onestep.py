"""damian-onestep: smoke end to end (3 seeds), the separations it asserts, and its helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lazylab.studies import STUDIES, reproduce
from lazylab.studies._damian import slope_interval, target_energies, target_function
from lazylab.studies.damian_onestep import FLOOR, THRESHOLD, _floors, samples_needed, sweeps


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("damian")
    return reproduce("damian-onestep", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


@pytest.fixture(scope="module")
def curves(smoke):
    table = pd.read_csv(smoke["csv"])
    return table[table["panel"] == "excess_risk"]


def _dot(curves, target, dim, method, n):
    row = curves[(curves["target"] == target) & (curves["dim"] == dim)
                 & (curves["method"] == method) & (curves["x"] == n)]
    assert len(row) == 1, (target, dim, method, n)
    return float(row["y"].iloc[0]), float(row["sem"].iloc[0]), int(row["count"].iloc[0])


def test_smoke_writes_every_output(smoke):
    assert "damian-onestep" in STUDIES
    assert smoke["runs"]["failed"] == 0 and smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    text = smoke["summary"].read_text()
    assert "n needed" in text and "3 seeds" in text and "Unconverged fits: 0" in text


def test_kernels_use_validation_and_onestep_its_own_split():
    for spec in sweeps("smoke"):
        for regime in spec["regime"]:
            if regime["name"] == "kernel":
                assert regime["ridge"]["select"] == "validation"
                assert min(regime["ridge"]["grid"]) <= 1e-8
            else:  # one grid value = a tuple: OneStep's internal 20 % split chooses
                assert len(regime["ridge"]) == 1 and min(regime["ridge"][0]) <= 1e-8


def test_one_step_goes_below_the_degree_four_floor(curves):
    # two-index, d = 16, n = 16d²: OneStep (width 256) below 0.25 by > 3 s.e. (3 seeds; at
    # 8d² it is 0.22 ± 0.02, not yet); both kernels at their largest n (4d²) are above it
    # (the degree-4 energy plus the 1-homogeneity floors: theory 0.33 at d = 16)
    one, sem, count = _dot(curves, "two-index", 16, "one_step", 16 * 16**2)
    assert count == 3 and one + 3 * max(sem, 0.005) < FLOOR
    for kind in ("kernel_ntk", "kernel_rf"):
        kernel, kernel_sem, _ = _dot(curves, "two-index", 16, kind, 4 * 16**2)
        assert kernel > one + 3 * math.hypot(sem, kernel_sem)


def test_kernels_stay_above_their_homogeneity_floor(curves):
    # no n removes the floor of 1-homogeneous predictors (He₂/√2: ≈ 0.16 at d = 8, 0.086 at 16)
    for dim in (8, 16):
        floor = _floors("single-he2", dim)[2]
        for kind in ("kernel_ntk", "kernel_rf"):
            risk, sem, _ = _dot(curves, "single-he2", dim, kind, 4 * dim**2)
            assert risk > floor - 3 * max(sem, 0.005)
        one, sem, _ = _dot(curves, "single-he2", dim, "one_step", 16 * dim**2)
        assert one < floor            # OneStep has biases: no such floor
        assert one < THRESHOLD


def test_samples_needed_interpolates_and_censors():
    assert samples_needed([10, 1000], [1.0, THRESHOLD ** 2]) == pytest.approx(100.0)
    assert samples_needed([10, 1000], [1.0, 0.9]) == math.inf


def test_slope_interval_recovers_a_power_law():
    dims = np.repeat([8.0, 16.0, 32.0], 3)
    rng = np.random.default_rng(0)
    values = 3 * dims**2 * np.exp(0.05 * rng.standard_normal(dims.size))
    slope, half, points = slope_interval(dims, values)
    assert points == 9 and abs(slope - 2) < half < 0.2
    assert slope_interval([8, 8], [1.0, 2.0]) is None
    assert slope_interval([8, 16], [1.0, 4.0])[1] == math.inf


def test_target_energies_and_functions_agree():
    z = np.random.default_rng(1).standard_normal((400000, 2))
    energies = target_energies("two-index")
    assert energies == pytest.approx([0.0, 0.25, 0.5, 0.0, 0.25])
    for degree in (1, 2, 4):   # Monte Carlo: E g_k² within 4 s.e. (He₄ part: sd ≈ 6/√N·…)
        values = target_function("two-index", degree)(z) ** 2
        assert values.mean() == pytest.approx(energies[degree],
                                              abs=4 * values.std() / math.sqrt(z.shape[0]))
