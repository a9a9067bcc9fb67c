"""lazy-rich: the two ends of the α knob against NT and Theorem 3, α*, and the smoke outputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lazylab.models import Network, NeuralTangent
from lazylab.studies import STUDIES, reproduce
from lazylab.studies.base import sweep_task
from lazylab.studies._lazy_rich_measures import INCREMENTAL
from lazylab.studies.lazy_rich import SIZES, learning_rate, sweeps, transition_scale
from lazylab.theory import network_risk
from lazylab.theory.ghorbani_quadratic import neural_tangent_risk_for_weights


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("lazy-rich")
    return reproduce("lazy-rich", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def _points(smoke) -> pd.DataFrame:
    return pd.read_csv(smoke["csv"])


def test_smoke_writes_every_output_and_reports_alpha_star(smoke):
    assert "lazy-rich" in STUDIES
    assert smoke["runs"]["failed"] == smoke["runs"]["diverged"] == 0
    assert smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    text = smoke["summary"].read_text()
    assert "α* = " in text and "Unconverged network runs: 0 of" in text
    star = _points(smoke).query("series == 'alpha_star'")
    alphas = SIZES["smoke"].alphas
    assert len(star) == len(SIZES["smoke"].cases)
    # α* lies strictly inside the grid: the curve crosses its midpoint
    assert (10 ** star["mean"] > min(alphas)).all() and (10 ** star["mean"] < max(alphas)).all()


def test_small_alpha_meets_theorem_3_on_the_same_b(smoke):
    """α = 0.01: the seed mean within 2 % of the seed mean of Theorem 3 on each seed's B."""
    points = _points(smoke)
    rich = points.query("series == 'risk_normalized'")
    rich = rich[rich["alpha"] == min(SIZES["smoke"].alphas)]
    nn = points.query("series == 'nn'")
    for (d, n), value in rich.set_index(["dim", "width"])["mean"].items():
        line = float(nn[(nn["dim"] == d) & (nn["width"] == n)]["mean"].iloc[0])
        assert value == pytest.approx(line, rel=0.02)
        assert value >= line * (1 - 1e-6)        # Theorem 3 is a lower bound


def test_large_alpha_meets_the_exact_neural_tangent_of_the_same_init():
    """α = 1000 with the smoke settings: the network's risk within 2 % of the exact NT risk
    of its own W₀ (the NT class depends on W₀ only through its row span, so
    NeuralTangent drawn from the same stream is the same model)."""
    spec = sweeps("smoke")[0]
    network = next(r for r in spec["regime"] if r.get("laziness") == max(SIZES["smoke"].alphas))
    net = Network(**{k: v for k, v in network.items() if k != "name"})
    task = sweep_task(spec, 0)
    b = task.matrix.numpy()
    fitted = net.fit(task, rng=np.random.default_rng(11))
    assert fitted.diagnostics["converged"] == 1.0
    risk = fitted.diagnostics["population_risk"] / float(task.null_risk)
    w0 = net.initialize(task.dim, rng=np.random.default_rng(11)).raw.u.numpy()
    exact = neural_tangent_risk_for_weights(w0, b)
    engine = NeuralTangent(width=net.width, activation="quadratic").fit(
        task, rng=np.random.default_rng(11))
    assert float(engine.diagnostics["population_risk"]) / float(task.null_risk) == (
        pytest.approx(exact, rel=1e-6))
    assert risk == pytest.approx(exact, rel=0.02)
    # and it sits far above the rich end: the gap of Theorems 2–3 is what the knob spans
    assert risk > 1.5 * float(network_risk(net.width / task.dim, b))


def test_risk_rises_from_the_network_to_the_tangent(smoke):
    points = _points(smoke)
    risk = points.query("series == 'risk_normalized'").sort_values("alpha")
    for _, case in risk.groupby(["dim", "width"]):
        low, high = case["mean"].iloc[0], case["mean"].iloc[-1]
        # smoke: ≈ 0.27 at α = 0.01 and ≈ 0.72 at α = 1000; seeds' s.e. ≈ 0.05
        assert high - low > 3 * (case["sem"].iloc[0] + case["sem"].iloc[-1])
    change = points.query("series == 'weight_change'").sort_values("alpha")
    assert (np.diff(change["mean"].to_numpy()) < 0).all()     # features move less as α grows


def test_transition_scale_interpolates_in_log_alpha():
    alphas = [0.01, 0.1, 1.0, 10.0, 100.0]
    risks = [0.2, 0.2, 0.4, 0.8, 0.8]           # midpoint 0.5 between α = 1 (0.4) and 10 (0.8)
    expected = 10 ** (0.25)                     # a quarter of the way in log10 α
    assert transition_scale(alphas, risks, 0.2, 0.8) == pytest.approx(expected, rel=1e-12)
    assert transition_scale(alphas[::-1], risks[::-1], 0.2, 0.8) == pytest.approx(expected)
    assert math.isnan(transition_scale(alphas, [0.7] * 5, 0.2, 0.8))   # never reaches 0.5
    assert math.isnan(transition_scale(alphas, [0.3] * 5, 0.2, 0.8))   # below everywhere


def test_learning_rate_follows_the_final_curvature():
    sizes = SIZES["default"]
    eta = learning_rate(0.01, 100, 20, sizes)
    assert eta == pytest.approx(sizes.rate / (8 * (sizes.weight_scale ** 2 * 20 + 1000) + 2),
                                rel=1e-5)
    # lazy end: the rate saturates at c/(8 s_w² N + 8√d/α + 2) → c/(8 s_w² N + 2)
    assert learning_rate(1e9, 100, 20, sizes) == pytest.approx(
        sizes.rate / (8 * sizes.weight_scale ** 2 * 20 + 2), rel=1e-5)


def test_default_scale_has_the_issue_s_grid():
    sizes = SIZES["default"]
    assert min(sizes.alphas) == pytest.approx(1e-2) and max(sizes.alphas) == pytest.approx(1e3)
    assert sizes.seeds >= 3 and all(n < d and d >= 50 for d, n in sizes.cases)
    assert any(d >= 100 for d, _ in sizes.cases)
    assert len({n for d, n in sizes.cases if d == 100}) >= 3


# ----------------------------------------------------------------------------- measures

def _series(points: pd.DataFrame, name: str) -> pd.DataFrame:
    return points.query("series == @name").sort_values("alpha")


def test_alignment_starts_at_n_over_d_and_reaches_one_at_the_rich_end(smoke):
    """A₀ over all runs within 3 s.e. of N/d; α = 0.01: A > 0.99 (smoke: 0.99997); α = 1000:
    the first layer barely moves, |A − A₀| < 0.01 (smoke: 0.0008, same runs)."""
    points = _points(smoke)
    align, start = _series(points, "alignment"), _series(points, "alignment_initial")
    (d, n), = SIZES["smoke"].cases
    pooled = math.sqrt((start["sem"] ** 2).sum()) / len(start)    # s.e. of the mean of means
    assert abs(start["mean"].mean() - n / d) < 3 * pooled
    assert align["mean"].iloc[0] > 0.99
    assert abs(align["mean"].iloc[-1] - start["mean"].iloc[-1]) < 0.01


def test_kernel_change_scales_as_one_over_alpha_at_both_ends(smoke):
    """‖K_T − K₀‖/‖K₀‖ = ‖F‖_K/(α‖M₀‖_K) exactly: a decade of α is a decade of kernel change
    at the rich end (α = 0.01 → 0.1) and at the lazy end (100 → 1000), within 3 s.e. of the
    log ratio (different W₀ per run: the s.e. is the seeds' spread)."""
    change = _series(_points(smoke), "kernel_change").set_index("alpha")
    for low, high in ((0.01, 0.1), (100.0, 1000.0)):
        ratio = math.log10(change.loc[low, "mean"] / change.loc[high, "mean"])
        error = math.hypot(*(change.loc[a, "sem"] / change.loc[a, "mean"] for a in (low, high)))
        assert abs(ratio - 1.0) < 3 * error / math.log(10) + 0.02
    assert change.loc[0.01, "mean"] > 1e4 * change.loc[1000.0, "mean"]


def test_incremental_learning_follows_the_linearized_rate(smoke):
    """Per direction, the mean step grows with log(1/s²) at 1/(2 log(1 + 8ηλ_k)) per unit
    (the smallest against the largest init, within 3 s.e. of the difference + 3 %), and the
    directions are learned in the order of λ at every init."""
    steps = _points(smoke).query("series == 'learned_step'")
    sizes = INCREMENTAL["smoke"]
    span = math.log(max(sizes.inits) ** 2 / min(sizes.inits) ** 2)
    for k, part in steps.groupby("direction"):
        part = part.sort_values("init")
        lam = float(part["eigenvalue"].iloc[0])
        expected = span / (2 * math.log1p(8 * sizes.rate * lam))
        measured = part["mean"].iloc[0] - part["mean"].iloc[-1]
        error = math.hypot(part["sem"].iloc[0], part["sem"].iloc[-1])
        assert abs(measured - expected) < 3 * error + 0.03 * expected
    for _, part in steps.groupby("init"):
        assert (np.diff(part.sort_values("direction")["mean"].to_numpy()) > 0).all()
    assert "Claim 6" in smoke["summary"].read_text()
