"""Progress bars for sweeps and for the steps of a single run."""

from __future__ import annotations

import io

from lazylab.experiments import BarProgress, NullProgress, RunOutcome
from lazylab.experiments.progress import step_bar


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
