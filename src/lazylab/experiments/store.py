"""The results store: one SQLite file, WAL mode, one transaction per result.

Schema (``PRAGMA application_id`` = 0x4C5A4C42, "LZLB"; ``PRAGMA user_version`` = 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- format = lazylab-store, created_at
    runs(run_id TEXT PRIMARY KEY,               -- SHA-256 of the canonical run JSON
         spec_json TEXT NOT NULL,               -- the canonical run JSON
         status TEXT NOT NULL,                  -- done | failed | diverged
         error TEXT,                            -- exception text, NULL when done
         metrics_json TEXT NOT NULL,            -- {"test_risk": …, …}, finite numbers only
         seeds_json TEXT NOT NULL,              -- first state word of each seed stream
         lazylab_version TEXT, git_commit TEXT, host TEXT,
         started_at TEXT, finished_at TEXT)     -- ISO-8601 UTC

Only the process that owns a :class:`Store` writes; executors return outcomes to it, and a
writable store holds an exclusive advisory lock (``<store>.lock``) so a second writer is
refused. A result is one ``INSERT … ON CONFLICT(run_id) DO UPDATE`` in its own transaction, so a
process killed at any instant leaves every earlier result intact and no partial row. A pending
run is one without a row. Jobs that cannot share a file (shards on other machines,
:mod:`lazylab.experiments.shards`) each write their own store; :meth:`Store.merge` copies one
store's rows into another afterwards.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own locking still keeps the file sound
    fcntl = None

from lazylab.experiments.execute import (DIVERGED, DONE, FAILED, STATUSES, WALL_TIME,
                                        RunOutcome)
from lazylab.experiments.runs import Run, canonical_json
from lazylab.experiments.spec import SpecError

__all__ = ["Store", "MergeCounts", "APPLICATION_ID", "SCHEMA_VERSION"]

APPLICATION_ID = 0x4C5A4C42
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    error TEXT,
    metrics_json TEXT NOT NULL,
    seeds_json TEXT NOT NULL,
    lazylab_version TEXT,
    git_commit TEXT,
    host TEXT,
    started_at TEXT,
    finished_at TEXT
);
"""
_RANK = {FAILED: 0, DIVERGED: 1, DONE: 2}
"""Which of two rows of one run a merge keeps: the higher rank; the target's on a tie."""
COLUMNS = ("run_id", "spec_json", "status", "error", "metrics_json", "seeds_json",
           "lazylab_version", "git_commit", "host", "started_at", "finished_at")


@dataclass(frozen=True)
class MergeCounts:
    """What :meth:`Store.merge` did with one source's rows: ``added`` (runs the target lacked),
    ``replaced`` (the source's status ranks higher: done > diverged > failed), ``kept`` (the
    target's row stays) and, among ``kept``, ``differing``: both done with different metrics
    besides the wall time (the same run computed twice, e.g. on other hardware; the target's
    result stays)."""

    added: int = 0
    replaced: int = 0
    kept: int = 0
    differing: int = 0

    @property
    def total(self) -> int:
        """The source's rows: added + replaced + kept."""
        return self.added + self.replaced + self.kept


class Store:
    """A lazylab results database.

    Args:
        path: the SQLite file.
        readonly: open without creating or writing; a missing file reads as empty.
        provenance: ``lazylab_version`` and ``git_commit`` written with every result.

    Raises:
        SpecError: when the file exists but is not a lazylab database.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 provenance: dict[str, str | None] | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.provenance = dict(provenance or {})
        self._connection: sqlite3.Connection | None = None
        self._lock: Any = None
        self._check_file()
        existed = self.path.exists()
        try:
            self._open(existed)
        except (OSError, sqlite3.Error) as error:
            self.close()
            if not existed and not readonly:
                self._remove_leftovers()
            reason = getattr(error, "strerror", None) or str(error)
            verb = "read" if readonly else "write"
            raise SpecError(self.path, "<store>", f"cannot {verb} the store ({reason}); give "
                            f"--store a path lazylab can {verb}") from None

    def _remove_leftovers(self) -> None:
        """Remove what a failed creation left (the new file, its lock and journal files)."""
        for suffix in ("", ".lock", "-wal", "-shm", "-journal"):
            try:
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            except OSError:
                pass

    def _open(self, existed: bool) -> None:
        if existed and not (self.readonly and self.path.stat().st_size == 0):
            self._connection = self._connect()
            self._check_identity()
        elif not self.readonly:
            self._connection = self._connect()
            self._initialize()
        if self._connection is not None and not self.readonly:
            self._lock = self._acquire_writer_lock()
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")

    def _check_file(self) -> None:
        if not self.path.exists():
            if not self.readonly and not self.path.parent.is_dir():
                raise SpecError(self.path, "<store>", "the directory does not exist; "
                                "give --store a path in an existing directory")
            return
        if self.path.is_dir():
            raise SpecError(self.path, "<store>", "is a directory; a lazylab SQLite file is required")
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(len(_SQLITE_MAGIC))
        except OSError as error:
            raise SpecError(self.path, "<store>", f"cannot read the store ({error.strerror})") from None
        if header and header != _SQLITE_MAGIC:
            raise SpecError(self.path, "<store>", "not a lazylab database (not an SQLite file); "
                            "give --store a new path or a file written by lazylab")

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            uri = f"file:{self.path.resolve()}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        else:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        return connection

    def _check_identity(self) -> None:
        try:
            application = self._connection.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise SpecError(self.path, "<store>", f"not a lazylab database ({error})") from None
        if application == 0 and not self.readonly and self._is_empty():
            self._initialize()
            return
        if application != APPLICATION_ID:
            self.close()
            raise SpecError(self.path, "<store>", "not a lazylab database (foreign SQLite "
                            "file); give --store a new path or a file written by lazylab")

    def _is_empty(self) -> bool:
        count = self._connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return count == 0

    def _initialize(self) -> None:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            connection.execute(statement)
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        connection.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                               [("format", "lazylab-store"), ("created_at", created)])
        connection.execute("COMMIT")

    def _acquire_writer_lock(self) -> Any:
        """Hold an exclusive advisory lock on ``<store>.lock`` while this store is writable.

        The operating system releases it when the process ends, even by ``kill -9``.
        """
        if fcntl is None:  # not POSIX: SQLite's own locking still keeps the file sound
            return None
        handle = open(self.path.with_name(self.path.name + ".lock"), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            self.close()
            raise SpecError(self.path, "<store>", "another lazylab process is writing to this "
                            "store; wait for it to finish or give --store another path") from None
        return handle

    def close(self) -> None:
        """Close the connection and release the writer lock (idempotent)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def write(self, run: Run, outcome: RunOutcome) -> None:
        """Insert or replace the row of ``run`` with ``outcome``, in one transaction."""
        if self.readonly or self._connection is None:
            raise RuntimeError(f"store {self.path} is open read-only")
        if outcome.run_id != run.run_id:
            raise ValueError(f"outcome.run_id={outcome.run_id!r} does not match run {run.run_id!r}")
        row = (run.run_id, run.to_json(), outcome.status, outcome.error,
               canonical_json(outcome.metrics), canonical_json(outcome.seeds),
               self.provenance.get("lazylab_version"), self.provenance.get("git_commit"),
               outcome.host, outcome.started_at, outcome.finished_at)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        with self._connection:  # BEGIN … COMMIT, or ROLLBACK on error
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute(
                f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                f"ON CONFLICT(run_id) DO UPDATE SET {updates}", row)

    def statuses(self, run_ids: Iterable[str] | None = None) -> dict[str, str]:
        """run_id → status for the stored runs (restricted to ``run_ids`` when given)."""
        if self._connection is None:
            return {}
        rows = self._connection.execute("SELECT run_id, status FROM runs").fetchall()
        wanted = None if run_ids is None else set(run_ids)
        return {r: s for r, s in rows if wanted is None or r in wanted}

    def errors(self, run_ids: Iterable[str] | None = None, status: str = "failed"
               ) -> dict[str, str]:
        """run_id → error text of the stored runs with ``status`` (restricted to ``run_ids``)."""
        if self._connection is None:
            return {}
        rows = self._connection.execute("SELECT run_id, error FROM runs WHERE status = ?",
                                        (status,)).fetchall()
        wanted = None if run_ids is None else set(run_ids)
        return {r: e or "" for r, e in rows if wanted is None or r in wanted}

    def rows(self, run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored rows as dictionaries with ``spec``, ``metrics`` and ``seeds`` decoded."""
        if self._connection is None:
            return []
        cursor = self._connection.execute(f"SELECT {', '.join(COLUMNS)} FROM runs ORDER BY run_id")
        wanted = None if run_ids is None else set(run_ids)
        out = []
        for values in cursor.fetchall():
            row = dict(zip(COLUMNS, values))
            if wanted is not None and row["run_id"] not in wanted:
                continue
            row["spec"] = json.loads(row.pop("spec_json"))
            row["metrics"] = json.loads(row.pop("metrics_json"))
            row["seeds"] = json.loads(row.pop("seeds_json"))
            out.append(row)
        return out

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result ('ok' for a sound file)."""
        if self._connection is None:
            return "ok"
        return self._connection.execute("PRAGMA integrity_check").fetchone()[0]

    def merge(self, source: str | Path) -> MergeCounts:
        """Copy the rows of another store (e.g. a shard's, :mod:`lazylab.experiments.shards`).

        A run the target lacks is added with its provenance (version, commit, host, times) as
        stored; of two rows of one run the one with the better status (done > diverged >
        failed) stays, the target's on a tie. One transaction: an interrupted merge changes
        nothing. A row whose run id is not the digest of its spec is refused.

        Raises:
            SpecError: ``source`` is missing, is this store, is not a lazylab store, or holds a
                row whose run id does not match its spec.
        """
        if self.readonly or self._connection is None:
            raise RuntimeError(f"store {self.path} is open read-only")
        source = Path(source)
        if not source.is_file():
            raise SpecError(source, "<store>", "does not exist; give a store lazylab wrote")
        if source.resolve() == self.path.resolve():
            raise SpecError(source, "<store>", "is the target store; give another store")
        with Store(source, readonly=True) as other:
            rows = ([] if other._connection is None else other._connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM runs ORDER BY run_id").fetchall())
        for row in rows:
            digest = hashlib.sha256(row[1].encode("utf-8")).hexdigest()[:len(row[0])]
            if digest != row[0] or not row[0]:
                raise SpecError(source, "<store>", f"run {row[0]!r}: its id is not the digest of "
                                "its spec (an edited row); nothing was merged")
        return self._insert_merged(rows)

    def _insert_merged(self, rows: list[tuple]) -> MergeCounts:
        counts = dict(added=0, replaced=0, kept=0, differing=0)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        insert = (f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES "
                  f"({', '.join('?' * len(COLUMNS))}) ON CONFLICT(run_id) DO UPDATE SET {updates}")
        with self._connection:  # BEGIN … COMMIT, or ROLLBACK on error
            self._connection.execute("BEGIN IMMEDIATE")
            for row in rows:
                held = self._connection.execute(
                    "SELECT status, metrics_json FROM runs WHERE run_id = ?", (row[0],)).fetchone()
                if held is None or _RANK[row[2]] > _RANK[held[0]]:
                    counts["added" if held is None else "replaced"] += 1
                    self._connection.execute(insert, row)
                    continue
                counts["kept"] += 1
                if held[0] == row[2] == DONE and _results(held[1]) != _results(row[4]):
                    counts["differing"] += 1
        return MergeCounts(**counts)


def _results(metrics_json: str) -> dict[str, Any]:
    """A stored row's metrics without its wall time (which differs between any two runs)."""
    return {k: v for k, v in json.loads(metrics_json).items() if k != WALL_TIME}
