"""lazy-rich, ReLU part: both ends of the α knob against the exact NT and the network value,
and the parameterizations' weight change against the width (smoke runs of lazy-rich)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lazylab.models import Network
from lazylab.models.population import optimal_tangent
from lazylab.studies import _lazy_rich_relu as relu
from lazylab.studies import reproduce
from lazylab.studies.lazy_rich import SIZES as QUADRATIC_SIZES
from lazylab.tasks import TASKS


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("lazy-rich-relu")
    return reproduce("lazy-rich", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def _points(smoke) -> pd.DataFrame:
    return pd.read_csv(smoke["csv"])


def _variance(task) -> float:
    return float(task.target_second_moment()) - float(task.target_mean()) ** 2


def test_smoke_writes_the_relu_figure_and_claims(smoke):
    assert smoke["runs"]["failed"] == smoke["runs"]["diverged"] == 0
    names = {path.name for path in smoke["figures"]}
    assert {"lazy-rich-relu.png", "lazy-rich-relu.pdf", "lazy-rich.png"} <= names
    text = smoke["summary"].read_text()
    assert "# ReLU network on a single ReLU neuron" in text
    relu = text.split("# ReLU network")[1]
    assert "α panels: Unconverged network runs: 0 of" in relu
    assert "Width panels: Unconverged network runs: 0 of" in relu
    series = set(_points(smoke)["series"])
    assert {"relu_risk", "relu_nt", "relu_nn", "relu_alpha_star", "width_change"} <= series


def test_quadratic_points_ignore_the_relu_sweeps(smoke):
    """lazy-rich's own series hold only its (d, N) cases, none of the ReLU part's dims."""
    points = _points(smoke)
    quadratic = points[points["series"] == "risk_normalized"]
    assert set(quadratic["dim"]) == {d for d, _ in QUADRATIC_SIZES["smoke"].cases}
    assert relu.SIZES["smoke"].dim not in set(quadratic["dim"])


def test_both_ends_of_the_knob(smoke):
    """α = max: the seed mean within 2 % of the seed mean of the exact NT on each run's own W₀;
    α = min: within 2 % of the NN–NT gap above the network value (0)."""
    points = _points(smoke)
    sizes = relu.SIZES["smoke"]
    risk = points[points["series"] == "relu_risk"]
    for width in sizes.widths:
        nt = float(points.query("series == 'relu_nt' and width == @width")["mean"].iloc[0])
        nn = float(points.query("series == 'relu_nn' and width == @width")["mean"].iloc[0])
        at = risk[risk["width"] == width].set_index("alpha")["mean"]
        assert abs(nn) < 1e-12                      # the teacher is a width-N network
        assert nt > 0.2                             # N ≪ d: the NT misses the even part
        assert at[max(sizes.alphas)] == pytest.approx(nt, rel=0.02)
        assert (at[min(sizes.alphas)] - nn) / (nt - nn) < 0.02
    assert "supported (criterion 2 %); α = " in smoke["summary"].read_text()


def test_large_alpha_meets_the_exact_tangent_of_the_same_init():
    """α = 1000 with the default settings, three seeds: the network's risk within 2 % of the
    exact NT (both layers) on its own W₀, redrawn from the same stream."""
    sizes = relu.SIZES["smoke"]
    for seed in range(3):
        task = TASKS["single_neuron"](rng=np.random.default_rng(10 + seed), dim=sizes.dim)
        params = {k: v for k, v in relu._network(sizes, 4, 1000.0).items() if k != "name"}
        network = Network(**params)
        fitted = network.fit(task, rng=np.random.default_rng(seed))
        state = network.initialize(task.dim, rng=np.random.default_rng(seed))
        weights = state.scales.input * state.raw.u
        tangent = optimal_tangent(task, "relu", weights, train_head=True)
        assert fitted.diagnostics["converged"] == 1
        assert fitted.diagnostics["population_risk"] == pytest.approx(
            tangent.diagnostics["population_risk"], rel=0.02)


def test_network_value_is_the_engine_risk_of_the_teacher():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=8)
    for width in (1, 3):
        assert abs(relu.network_value(task, width)) < 1e-12
    assert _variance(task) == pytest.approx(0.5 - 1 / (2 * np.pi), rel=1e-12)


def test_tangent_value_reproduces_the_runs_initialization():
    """tangent_value redraws W₀ from the run's fit stream: equal to the NT on the W₀ that
    Network.fit would draw from the same generator."""
    spec = relu.sweeps("smoke")[0]
    regime = spec["regime"][-1]
    value = relu.tangent_value(spec, regime, 0)
    assert 0.0 < value < 1.0
    assert relu.tangent_value(spec, regime, 0) == value
    assert relu.tangent_value(spec, regime, 1) != value


def test_parameterization_slopes(smoke):
    """Weight change against N at α = 1: NTK falls with the width, mean field does not, and
    NTK's slope lies below mean field's by at least 0.25 (theory: −1/2 against 0)."""
    points = _points(smoke)
    change = points[points["series"] == "width_change"]
    slopes = {}
    for name, part in change.groupby("parameterization"):
        part = part.sort_values("width")
        slopes[name] = float(np.polyfit(np.log(part["width"]), np.log(part["mean"]), 1)[0])
    assert slopes["ntk"] < -0.2
    assert abs(slopes["mean_field"]) < 0.3
    assert slopes["ntk"] < slopes["mean_field"] - 0.25


def test_transition_scale_interpolates_the_midpoint():
    alphas = [0.01, 1.0, 100.0]
    risks = [0.0, 0.25, 0.5]
    # midpoint 0.25 is reached exactly at α = 1
    assert relu.transition_scale(alphas, risks, 0.0, 0.5) == pytest.approx(1.0)
    assert np.isnan(relu.transition_scale(alphas, [0.5, 0.5, 0.5], 0.0, 0.5))
