"""Progress bars for sweeps and for the steps of a single run."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest

from lazylab.experiments import BarProgress, NullProgress, RunOutcome
from lazylab.experiments.progress import CostWeightedEta, format_seconds, step_bar


def test_sweep_bar_counts_runs_and_failures():
    stream = io.StringIO()
    bar = BarProgress("demo", stream=stream)
    bar.start(3)
    for status in ("done", "failed", "diverged"):
        bar.update(RunOutcome("id", status))
    bar.close()
    text = stream.getvalue()
    assert "demo" in text and "3/3" in text and "failed=1" in text and "diverged=1" in text


def test_nothing_pending_draws_nothing():
    stream = io.StringIO()
    bar = BarProgress("demo", stream=stream)
    bar.start(0)
    bar.close()
    quiet = NullProgress()
    quiet.start(5)
    quiet.update(RunOutcome("id", "done"))
    quiet.close()
    assert stream.getvalue() == ""


def test_step_bar_follows_steps_and_appears_only_when_used():
    stream = io.StringIO()
    progress, close = step_bar("fit", stream=stream, delay=0, mininterval=0)
    for step in range(1, 11):
        progress(step, 10)
    assert "10/10" in stream.getvalue() and "fit" in stream.getvalue()
    close()
    unused = io.StringIO()
    _, close_unused = step_bar("idle", stream=unused, delay=0)
    close_unused()
    assert unused.getvalue() == ""


def test_step_bar_stays_hidden_for_short_runs():
    stream = io.StringIO()
    progress, close = step_bar("fit", stream=stream, delay=60)
    for step in range(1, 11):
        progress(step, 10)
    close()
    assert stream.getvalue() == ""


class FakeClock:
    """Seconds that advance only when told (deterministic ETA tests)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cost_weighted_eta_is_elapsed_times_remaining_over_done_cost():
    clock = FakeClock()
    eta = CostWeightedEta({"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}, clock=clock)
    assert eta.remaining() is None                      # nothing finished: unknown
    clock.now += 8.0
    eta.finished("a")                                   # 4 of 10 units in 8 s: 2 s per unit
    assert eta.remaining() == pytest.approx(8.0 * 6.0 / 4.0)
    clock.now += 6.0
    eta.finished("b")
    assert eta.remaining() == pytest.approx(14.0 * 3.0 / 7.0)
    eta.finished("unknown")                             # counts as the mean cost, 2.5
    assert eta.remaining() == pytest.approx(14.0 * 0.5 / 9.5)
    eta.finished("c"), eta.finished("d")
    assert eta.remaining() == 0.0


def _simulated_sweep(costs, rng, workers=1):
    """Durations = cost × U(0.6, 1.6) noise; runs start in the given order on ``workers``
    slots. Returns (finish times in finishing order, ids in that order)."""
    slots = [0.0] * workers
    finishes = []
    for run_id, cost in costs.items():
        slot = min(range(workers), key=slots.__getitem__)
        slots[slot] += cost * rng.uniform(0.6, 1.6)
        finishes.append((slots[slot], run_id))
    return sorted(finishes)


@pytest.mark.parametrize("workers", [1, 4])
def test_weighted_eta_is_within_a_factor_two_after_ten_percent(workers):
    # A study-like sweep: widths 10 … 10⁴ (cost ∝ N²), expensive runs first (as reproduce
    # orders them); durations scatter by a factor up to 2.7 around the estimate. After 10 % of
    # the runs the weighted ETA must be within a factor 2 of the true remaining time, while
    # the count-based ETA (what tqdm shows) is off by far more.
    rng = np.random.default_rng(3)
    widths = np.repeat(np.geomspace(10, 1e4, 25), 4)[::-1]
    costs = {f"r{i}": 1e-6 * w ** 2 + 0.05 for i, w in enumerate(widths)}
    finishes = _simulated_sweep(costs, rng, workers)
    clock = FakeClock()
    start = clock.now
    eta = CostWeightedEta(costs, clock=clock)
    tenth = len(costs) // 10
    for time_done, run_id in finishes[:tenth]:
        clock.now = start + time_done
        eta.finished(run_id)
    true_remaining = finishes[-1][0] - finishes[tenth - 1][0]
    assert 0.5 <= eta.remaining() / true_remaining <= 2.0
    by_count = (clock.now - start) * (len(costs) - tenth) / tenth
    assert not 0.5 <= by_count / true_remaining <= 2.0


def test_bar_shows_the_weighted_eta():
    stream = io.StringIO()
    clock = FakeClock()
    runs = [SimpleNamespace(run_id=name) for name in ("big", "small")]
    bar = BarProgress("demo", stream=stream, clock=clock,
                      cost=lambda run: {"big": 9.0, "small": 1.0}[run.run_id])
    bar.start(2, runs)
    clock.now += 90.0
    bar.update(RunOutcome("big", "done"))
    bar._bar.refresh()
    assert "eta=10s" in stream.getvalue()               # 90 s for 9 units, 1 unit left
    bar.close()


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 12.4, 185, 3720)] == ["?", "12s", "3m05s", "1h02m"]


def test_eta_calibrates_each_kind_on_its_own_finished_runs():
    # The cost model says every run costs 1, but "gd" runs take 10 s and "solve" runs 1 s (the
    # studies' cost model is 10-100x off between kinds). After one run of each kind, on one
    # worker, the rest is 2 × 10 + 3 × 1 = 23 s; the uncalibrated formula says 11 × 5/2 = 27.5,
    # and gets worse the more the kinds' mix changes.
    clock = FakeClock()
    kinds = {"g1": "gd", "g2": "gd", "g3": "gd", "s1": "solve", "s2": "solve", "s3": "solve",
             "s4": "solve"}
    eta = CostWeightedEta(dict.fromkeys(kinds, 1.0), kinds=kinds, clock=clock)
    clock.now += 10.0
    eta.finished("g1", 10.0)
    assert eta.remaining() == pytest.approx(10.0 * 6.0)   # only one kind seen: its rate for all
    clock.now += 1.0
    eta.finished("s1", 1.0)
    assert eta.remaining() == pytest.approx(2 * 10.0 + 3 * 1.0)


def test_eta_divides_the_work_by_the_observed_parallelism():
    # Two workers: 20 run-seconds finished in 10 s of wall time; 30 run-seconds left -> 15 s.
    clock = FakeClock()
    eta = CostWeightedEta({"a": 1.0, "b": 1.0, "c": 3.0}, kinds=dict.fromkeys("abc", "k"),
                          clock=clock)
    clock.now += 10.0
    eta.finished("a", 10.0), eta.finished("b", 10.0)
    assert eta.remaining() == pytest.approx(15.0)


def test_eta_without_durations_keeps_the_cost_weighted_formula():
    clock = FakeClock()
    eta = CostWeightedEta({"a": 1.0, "b": 3.0}, kinds={"a": "x", "b": "y"}, clock=clock)
    clock.now += 4.0
    eta.finished("a")            # no duration: 4 s per unit of cost, 3 units left
    assert eta.remaining() == pytest.approx(12.0)


def test_bar_reads_durations_from_the_outcome_stamps():
    clock = FakeClock()
    runs = [SimpleNamespace(run_id=name, task="t", regime=name, regime_params=(), n_train=None)
            for name in ("slow", "fast", "slow2")]
    runs[2].regime = "slow"
    bar = BarProgress("demo", stream=io.StringIO(), clock=clock, cost=lambda run: 1.0)
    bar.start(3, runs)
    clock.now += 31.0
    bar.update(RunOutcome("slow", "done", started_at="2026-01-01T00:00:00+00:00",
                          finished_at="2026-01-01T00:00:30+00:00"))
    bar.update(RunOutcome("fast", "done", started_at="2026-01-01T00:00:30+00:00",
                          finished_at="2026-01-01T00:00:31+00:00"))
    assert bar._eta.remaining() == pytest.approx(30.0)   # one more "slow" run
    bar.close()


def test_eta_counts_the_kinds_it_has_not_timed_yet():
    clock = FakeClock()
    kinds = {"a": "x", "b": "y", "c": "y"}
    eta = CostWeightedEta(dict.fromkeys(kinds, 1.0), kinds=kinds, clock=clock)
    assert eta.untimed_kinds() == 2
    eta.finished("a", 1.0)
    assert eta.untimed_kinds() == 1                      # "x" is done and timed; "y" is not
    eta.finished("b", 5.0)
    assert eta.untimed_kinds() == 0
    bare = CostWeightedEta({"a": 1.0}, clock=clock)       # no kinds: nothing to say
    assert bare.untimed_kinds() == 0
