"""The pure logic of benchmarks/bench_paper_scale.py: kinds, the ladder of timed sizes, and the
power-law projection (no run is executed here)."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_paper_scale as bench  # noqa: E402

from lazylab.experiments.runs import make_run  # noqa: E402


def _run(regime="random_features", width=10, n_train=None, seed=0, **params):
    return make_run("quadratic", {"dim": 20}, regime, {"width": width, **params}, n_train, 100,
                    seed)


def test_kind_separates_solver_and_population_but_not_sizes_or_seeds():
    runs = [_run(width=w, seed=s) for w in (10, 40) for s in (0, 1)]
    runs += [_run("network", training="online", steps=100), _run("network", training="population"),
             _run(n_train=500)]
    kinds = bench.group_kinds(runs)
    assert sorted(map(len, kinds.values())) == [1, 1, 1, 4]
    assert "quadratic/network/online n=inf" in kinds
    assert "quadratic/random_features n" in kinds


def test_ladder_spacing_floor_and_top():
    runs = [_run(width=w, seed=s) for w in (1, 2, 3, 5, 8, 20, 30, 100) for s in (0, 1)]
    cost = lambda r: float(dict(r.regime_params)["width"])  # noqa: E731
    rungs = bench.ladder(runs, cost, floor=2.0, spacing=8.0)
    # from the first size costing >= 2, each next >= 8x the previous, ending at the largest
    assert [cost(r) for r in rungs] == [2.0, 20.0, 100.0]
    assert all(r.seed == 0 for r in rungs)
    assert [cost(r) for r in bench.ladder(runs[:2], cost, floor=2.0)] == [1.0]


def test_projection_follows_the_fitted_power_law():
    # seconds = 0.5 * cost^1.5 at two rungs: the slope is 1.5, any cost is reproduced
    points = [(4.0, 0.5 * 8.0), (16.0, 0.5 * 64.0)]
    assert bench.slope(points) == pytest.approx(1.5)
    for model in (1.0, 10.0, 100.0):
        assert bench.projected_seconds(points, model) == pytest.approx(0.5 * model ** 1.5)
    # one rung: proportional to the model; slopes are clipped to [0.5, 2]
    assert bench.projected_seconds([(2.0, 3.0)], 8.0) == pytest.approx(12.0)
    assert bench.slope([(1.0, 1.0), (10.0, 1e4)]) == 2.0
    assert bench.slope([(1.0, 1.0), (10.0, 1.0)]) == 0.5
    assert bench.slope([(1.0, 1.0), (2.0, 8.0)]) == 1.0  # closer than 3x in cost: no slope
    assert math.isclose(bench.slope([(1.0, 1.0)]), 1.0)


def test_reduced_divides_steps_then_samples_then_width():
    online = bench.reduced(_run("network", training="online", steps=2000, n_train=400))
    assert dict(online.regime_params)["steps"] == 500 and online.n_train == 400
    assert bench.reduced(_run(n_train=400)).n_train == 100
    assert dict(bench.reduced(_run(width=4500)).regime_params)["width"] == 1125
    with pytest.raises(ValueError, match="reduce"):
        bench.reduced(_run(width=2))


def test_time_kind_times_the_ladder_then_the_reduced_top(monkeypatch):
    # a fake clock and cost model: model cost = width, CPU seconds = width² / 1000
    monkeypatch.setattr(bench, "run_seconds", lambda r: float(dict(r.regime_params)["width"]))
    monkeypatch.setattr(bench, "_rung_row", lambda case, run, *rest: run)

    def clock(run, cap):  # an idle core: CPU seconds = wall seconds
        seconds = float(dict(run.regime_params)["width"]) ** 2 / 1000
        return bench.Timing(seconds, seconds, "done") if seconds <= cap else \
            bench.Timing(cap, cap, "stopped")

    monkeypatch.setattr(bench, "timed", clock)

    def widths(rows):
        return [dict(r.regime_params)["width"] for r in rows]

    # every rung fits: slope 2 measured, any size is projected exactly
    rows, points, bound = bench.time_kind("case", [_run(width=w) for w in (2, 20, 200)],
                                          cap=100.0, rungs=3)
    assert widths(rows) == [2, 20, 200] and not bound
    assert bench.projected_seconds(points, 100.0) == pytest.approx(10.0)
    # the top (640: predicted 409 s) is skipped; it is timed reduced by 16 and 4 instead
    rows, points, bound = bench.time_kind("case", [_run(width=w) for w in (2, 20, 640)],
                                          cap=100.0, rungs=3)
    assert widths(rows) == [2, 20, 40, 160] and not bound
    assert bench.projected_seconds(points, 640.0) == pytest.approx(640.0 ** 2 / 1000)
    # a failed run is reported but is no timing
    monkeypatch.setattr(bench, "timed", lambda run, cap: bench.Timing(0.01, 0.01, bench.FAILED))
    rows, points, bound = bench.time_kind("case", [_run(width=w) for w in (2, 20)], cap=100.0,
                                          rungs=3)
    assert widths(rows) == [2, 20, 1, 5] and points == [] and not bound
    monkeypatch.setattr(bench, "timed", clock)
    # even the reduced top reaches the cap: the projection is a lower bound
    rows, points, bound = bench.time_kind("case", [_run(width=640)], cap=1.0, rungs=3)
    assert widths(rows) == [640, 40] and bound
    assert bench.projected_seconds(points, 640.0) <= 640.0 ** 2 / 1000


def test_reduced_keeps_the_falkon_ratio_of_centers_to_samples():
    run = bench.reduced(_run("kernel", n_train=32768, n_centers=8192), 16)
    assert run.n_train == 2048 and dict(run.regime_params)["n_centers"] == 512
