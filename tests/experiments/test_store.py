"""The SQLite results store: schema, identity checks, upserts, read-only access."""

from __future__ import annotations

import sqlite3

import pytest

from lazylab.experiments import DONE, FAILED, RunOutcome, SpecError, Store
from lazylab.experiments.runs import make_run
from lazylab.experiments.store import APPLICATION_ID


def _run(seed=0):
    return make_run("linear", {"dim": 2}, "flaky", {"marker": "m"}, 10, 20, seed)


def _outcome(run, status=DONE, **metrics):
    return RunOutcome(run.run_id, status, metrics, None if status == DONE else "boom",
                      {"fit": 1}, "host", "2026-01-01T00:00:00", "2026-01-01T00:00:01")


def test_new_store_schema_and_pragmas(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path, provenance={"lazylab_version": "9.9", "git_commit": "abc"}) as store:
        run = _run()
        store.write(run, _outcome(run, test_risk=0.5))
        assert store.integrity_check() == "ok"
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    row = connection.execute("SELECT run_id, spec_json, status, metrics_json, lazylab_version, "
                             "git_commit, host FROM runs").fetchone()
    assert row == (run.run_id, run.to_json(), "done", '{"test_risk":0.5}', "9.9", "abc", "host")
    assert dict(connection.execute("SELECT key, value FROM meta"))["format"] == "lazylab-store"


def test_write_replaces_a_row_instead_of_duplicating(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        run = _run()
        store.write(run, _outcome(run, FAILED))
        store.write(run, _outcome(run, DONE, test_risk=1.0))
        rows = store.rows()
    assert len(rows) == 1 and rows[0]["status"] == DONE and rows[0]["metrics"] == {"test_risk": 1.0}
    assert rows[0]["spec"]["seed"] == 0 and rows[0]["error"] is None


def test_status_check_constraint_rejects_unknown_status(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        run = _run()
        with pytest.raises(sqlite3.IntegrityError):
            store.write(run, _outcome(run, "maybe"))
        assert store.rows() == []


def test_mismatched_outcome_is_rejected(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match="does not match"):
            store.write(_run(0), _outcome(_run(1)))


def test_readonly_missing_store_is_empty_and_not_created(tmp_path):
    path = tmp_path / "absent.sqlite"
    with Store(path, readonly=True) as store:
        assert store.statuses() == {} and store.rows() == []
        with pytest.raises(RuntimeError, match="read-only"):
            store.write(_run(), _outcome(_run()))
    assert not path.exists()


def test_empty_sqlite_file_is_adopted(tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()  # zero-byte file
    with Store(path) as store:
        store.write(_run(), _outcome(_run()))
        assert list(store.statuses().values()) == [DONE]


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE runs(x)")
    connection.commit()
    connection.close()
    for readonly in (False, True):
        with pytest.raises(SpecError, match="not a lazylab database") as error:
            Store(path, readonly=readonly)
        assert error.value.field == "<store>"


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path):
        with pytest.raises(SpecError, match="another lazylab process is writing"):
            Store(path)
        with Store(path, readonly=True) as reader:  # readers are always welcome
            assert reader.statuses() == {}
    with Store(path) as store:
        store.write(_run(), _outcome(_run()))
