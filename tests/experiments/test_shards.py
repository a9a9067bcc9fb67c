"""Shards (one sweep split over independent jobs) and merging their stores."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from lazylab.cli import main
from lazylab.experiments import (DIVERGED, DONE, FAILED, MergeCounts, RunOutcome, Shard,
                                 SpecError, Store, parse_shard, shard_runs)
from lazylab.experiments.runs import make_run


def _run(seed=0):
    return make_run("linear", {"dim": 2}, "flaky", {"marker": "m"}, 10, 20, seed)


def _outcome(run, status=DONE, host="host", **metrics):
    return RunOutcome(run.run_id, status, metrics, None if status == DONE else "boom",
                      {"fit": 1}, host, "2026-01-01T00:00:00", "2026-01-01T00:00:01")


def _fake_runs(costs):
    return [SimpleNamespace(run_id=f"{i:04x}", cost=c) for i, c in enumerate(costs)]


def test_parse_shard_accepts_k_of_n_and_refuses_the_rest():
    assert parse_shard("2/5") == Shard(2, 5) and str(parse_shard(" 1 / 1 ")) == "1/1"
    for text in ("0/3", "4/3", "1/0", "a/3", "1/3/4", "-1/3", ""):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(text)
    with pytest.raises(ValueError, match="integer"):
        Shard(True, 2)


def test_shards_partition_the_runs_and_keep_their_order():
    runs = _fake_runs([5, 1, 1, 1, 3, 2, 2, 8, 1, 0.5])
    parts = [shard_runs(runs, Shard(k, 3), lambda r: r.cost) for k in (1, 2, 3)]
    ids = [r.run_id for part in parts for r in part]
    assert sorted(ids) == sorted(r.run_id for r in runs)          # each run once
    for part in parts:                                              # in the given order
        positions = [runs.index(r) for r in part]
        assert positions == sorted(positions)
    # one kind, dealt in snake order by cost 8, 5, 3 | 2, 2, 1 | 1, 1, 1 | 0.5 to shards
    # 1, 2, 3 | 3, 2, 1 | 1, 2, 3 | 3: equal counts ± 1, each cost level spread
    assert [sorted(r.cost for r in part) for part in parts] == [[1, 1, 8], [1, 2, 5],
                                                               [0.5, 1, 2, 3]]


def test_each_kind_of_run_is_split_on_its_own():
    # One run of kind A and two of kind B: dealt as one kind (A's estimate first) in snake order
    # 1, 2, 2, shard 2 holds both B runs, and if B's estimate is 100× too low (estimates compare
    # within a kind only) nearly all the work. Split by kind, each shard holds one B, the
    # second kind's deal starting at shard 2.
    runs = [SimpleNamespace(run_id=i, cost=c, kind=k)
            for i, c, k in (("a", 10.0, "A"), ("b1", 5.0, "B"), ("b2", 5.0, "B"))]
    one = [[r.run_id for r in shard_runs(runs, Shard(k, 2), lambda r: r.cost)] for k in (1, 2)]
    assert one == [["a"], ["b1", "b2"]]
    split = [[r.run_id for r in shard_runs(runs, Shard(k, 2), lambda r: r.cost,
                                           lambda r: r.kind)] for k in (1, 2)]
    assert split == [["a", "b2"], ["b1"]]


def test_the_split_depends_on_the_runs_alone_not_their_order():
    runs = _fake_runs([3, 3, 2, 2, 1, 1, 1])
    forward = {r.run_id for r in shard_runs(runs, Shard(2, 2), lambda r: r.cost)}
    backward = {r.run_id for r in shard_runs(runs[::-1], Shard(2, 2), lambda r: r.cost)}
    assert forward == backward and 0 < len(forward) < len(runs)


def test_duplicated_runs_are_assigned_once_and_bad_costs_refused():
    runs = _fake_runs([1, 2])
    doubled = runs + [runs[0]]
    parts = [shard_runs(doubled, Shard(k, 2), lambda r: r.cost) for k in (1, 2)]
    assert sorted(r.run_id for part in parts for r in part) == ["0000", "0001"]
    assert shard_runs(runs, Shard(3, 3), lambda r: r.cost) == []   # more shards than runs
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="finite number"):
            shard_runs(runs, Shard(1, 2), lambda r, bad=bad: bad)


def test_merge_adds_missing_runs_and_keeps_the_better_status(tmp_path):
    runs = [_run(seed) for seed in range(5)]
    with Store(tmp_path / "target.sqlite") as target:
        target.write(runs[0], _outcome(runs[0], DONE, test_risk=0.5))
        target.write(runs[1], _outcome(runs[1], FAILED))
        target.write(runs[2], _outcome(runs[2], DONE, test_risk=0.25))
        target.write(runs[3], _outcome(runs[3], DIVERGED))
    with Store(tmp_path / "source.sqlite", provenance={"git_commit": "feed"}) as source:
        source.write(runs[0], _outcome(runs[0], FAILED))                    # worse: kept
        source.write(runs[1], _outcome(runs[1], DONE, test_risk=0.75))      # better: replaced
        source.write(runs[2], _outcome(runs[2], DONE, test_risk=0.375))     # tie, other metrics
        source.write(runs[3], _outcome(runs[3], FAILED))                    # worse: kept
        source.write(runs[4], _outcome(runs[4], DONE, "other-host", test_risk=1.0))  # added
    with Store(tmp_path / "target.sqlite") as target:
        counts = target.merge(tmp_path / "source.sqlite")
        rows = {row["run_id"]: row for row in target.rows()}
    assert counts == MergeCounts(added=1, replaced=1, kept=3, differing=1) and counts.total == 5
    assert [rows[r.run_id]["status"] for r in runs] == [DONE, DONE, DONE, DIVERGED, DONE]
    assert rows[runs[1].run_id]["metrics"] == {"test_risk": 0.75}
    assert rows[runs[2].run_id]["metrics"] == {"test_risk": 0.25}          # the target's
    added = rows[runs[4].run_id]                                            # provenance kept
    assert (added["host"], added["git_commit"]) == ("other-host", "feed")
    with Store(tmp_path / "target.sqlite") as target:                       # idempotent
        assert target.merge(tmp_path / "source.sqlite") == MergeCounts(kept=5, differing=1)
    with Store(tmp_path / "again.sqlite") as again:     # run 0 again: another wall time only
        again.write(runs[0], _outcome(runs[0], DONE, test_risk=0.5, wall_time=9.0))
    with Store(tmp_path / "target.sqlite") as target:
        assert target.merge(tmp_path / "again.sqlite") == MergeCounts(kept=1)


def test_merge_refuses_missing_self_foreign_and_edited_stores(tmp_path):
    run = _run()
    with Store(tmp_path / "source.sqlite") as source:
        source.write(run, _outcome(run, DONE, test_risk=0.5))
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE t(x)").connection.commit()
    with Store(tmp_path / "target.sqlite") as target:
        with pytest.raises(SpecError, match="does not exist"):
            target.merge(tmp_path / "missing.sqlite")
        with pytest.raises(SpecError, match="is the target"):
            target.merge(tmp_path / "target.sqlite")
        with pytest.raises(SpecError, match="not a lazylab database"):
            target.merge(foreign)
    connection = sqlite3.connect(tmp_path / "source.sqlite")
    connection.execute("UPDATE runs SET spec_json = replace(spec_json, '\"seed\":0', '\"seed\":7')")
    connection.commit()
    connection.close()
    with Store(tmp_path / "target.sqlite") as target:
        with pytest.raises(SpecError, match="not the digest of its spec"):
            target.merge(tmp_path / "source.sqlite")
        assert target.rows() == []                                          # nothing merged


def test_merge_command_reports_counts_and_refuses_bad_sources(tmp_path, capsys):
    runs = [_run(seed) for seed in range(3)]
    for name, chosen in (("a.sqlite", runs[:2]), ("b.sqlite", runs[1:])):
        with Store(tmp_path / name) as store:
            for run in chosen:
                store.write(run, _outcome(run, DONE, test_risk=0.5))
    target = tmp_path / "all.sqlite"
    assert main(["merge", str(target), str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "a.sqlite: 2 runs: 2 added, 0 replaced" in out and "b.sqlite: 2 runs: 1 added" in out
    with Store(target, readonly=True) as store:
        assert len(store.rows()) == 3
    assert main(["merge", str(target), str(tmp_path / "nope.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_shards_then_merge_equal_one_run(tmp_path, capsys):
    spec = tmp_path / "toy.toml"
    spec.write_text(
        'name = "toy"\n[task]\nname = "quadratic"\ndim = 6\n'
        '[[regime]]\nname = "random_features"\nactivation = "hermite2"\n'
        '[sweep]\nwidth = [2, 4, 8]\nn_train = "population"\nn_test = 10\nseeds = 2\n')
    base = ["run", str(spec), "--executor", "inprocess", "-q"]
    assert main([*base, "--store", str(tmp_path / "one.sqlite")]) == 0
    for k in (1, 2):
        assert main([*base, "--shard", f"{k}/2", "--store", str(tmp_path / f"p{k}.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "(shard 1/2): 3 runs: 3 done" in out and "(shard 2/2): 3 runs: 3 done" in out
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "p1.sqlite"),
                 str(tmp_path / "p2.sqlite")]) == 0
    assert "p2.sqlite: 3 runs: 3 added" in capsys.readouterr().out
    with Store(tmp_path / "one.sqlite", readonly=True) as one, \
            Store(tmp_path / "all.sqlite", readonly=True) as merged:
        def results(store):   # every metric but the run's wall time
            return {row["run_id"]: {k: v for k, v in row["metrics"].items() if k != "wall_time"}
                    for row in store.rows()}
        metrics = results(one)
        assert results(merged) == metrics
    assert len(metrics) == 6
    assert main([*base, "--shard", "2"]) == 2
    assert "--shard: shard '2' must be K/N" in capsys.readouterr().err
