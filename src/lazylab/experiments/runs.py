"""One run of a sweep: its identity, canonical JSON, run id and seed streams.

Identity. A run is (task name and explicit parameters, regime name and explicit parameters,
n_train, n_test, seed, and — only for a run with a selected field, :mod:`.selection` —
validation_size). Its canonical JSON (sorted keys, no whitespace, ``"population"`` for
n = ∞) hashes (SHA-256, first 20 hex digits) to the run id. Only parameters written in the spec
enter the identity, so adding a field with a default to a regime does not orphan stored runs;
the lazylab version and git commit stored with each row record which code produced it.

Seed streams. Each run draws from independent named streams, each a
``numpy.random.SeedSequence`` whose entropy is (spec seed, stream name, the part of the run the
stream may depend on), hashed to 32-bit words:

==========  ==========================================  =====================================
stream      depends on                                  so that
==========  ==========================================  =====================================
task        seed, task                                  all regimes/widths of a seed share
                                                        one task instance (e.g. one matrix B)
test        seed, task                                  the test set is fixed across a sweep
data        seed, task, n_train                         all regimes/widths see the same data
fit         seed, the whole run                         initialization and training noise
validation  seed, task                                  the validation set (model selection)
                                                        is fixed across a sweep and
                                                        independent of the test set
==========  ==========================================  =====================================

A stream's seed depends only on its own name and key, so adding the ``validation`` stream left
the seeds of the other four, and every run without a selected field, unchanged.

Nothing depends on the position of a run in the grid, so adding seeds, widths or regimes never
changes a run already done; the same run gives the same streams on any machine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazylab._checks import POPULATION
from lazylab.experiments.selection import Selection, as_selection

__all__ = ["Run", "STREAMS", "canonical_json", "make_run", "stream_seed_sequence",
           "stream_generators", "stream_entropy", "task_generator"]

STREAMS = ("task", "test", "data", "fit", "validation")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, tuples as lists."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def _words(text: str) -> list[int]:
    """SHA-256 of ``text`` as eight 32-bit words (SeedSequence entropy)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]


@dataclass(frozen=True)
class Run:
    """One point of a sweep (hashable, picklable, JSON-able).

    Attributes:
        task: task name.
        task_params: explicit builder parameters as sorted (name, value) pairs.
        regime: regime name.
        regime_params: explicit regime fields as sorted (name, value) pairs.
        n_train: training samples, or None for the population (n = ∞).
        n_test: test samples.
        seed: the spec seed this run belongs to.
        validation_size: validation samples, for a run with a selected field (else None).
    """

    task: str
    task_params: tuple[tuple[str, Any], ...]
    regime: str
    regime_params: tuple[tuple[str, Any], ...]
    n_train: int | None
    n_test: int
    seed: int
    validation_size: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Run":
        """Inverse of :meth:`to_dict`."""
        task, regime = dict(data["task"]), dict(data["regime"])
        n_train = data["n_train"]
        return cls(task=task.pop("name"), task_params=_freeze(task),
                   regime=regime.pop("name"), regime_params=_freeze(regime),
                   n_train=None if n_train == POPULATION else int(n_train),
                   n_test=int(data["n_test"]), seed=int(data["seed"]),
                   validation_size=_optional_int(data.get("validation_size")))

    def task_dict(self) -> dict[str, Any]:
        return {"name": self.task, **_thaw(self.task_params)}

    def regime_dict(self) -> dict[str, Any]:
        return {"name": self.regime, **_thaw(self.regime_params)}

    def to_dict(self) -> dict[str, Any]:
        """The run as plain JSON data (``n_train`` is ``"population"`` for n = ∞)."""
        out = {"task": self.task_dict(), "regime": self.regime_dict(),
               "n_train": POPULATION if self.n_train is None else self.n_train,
               "n_test": self.n_test, "seed": self.seed}
        if self.validation_size is not None:
            out["validation_size"] = self.validation_size
        return out

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def run_id(self) -> str:
        """First 20 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:20]

    def stream_key(self, stream: str) -> str:
        """The canonical JSON of what ``stream`` depends on (see the module docstring)."""
        task = self.task_dict()
        keys = {"task": {"task": task}, "test": {"task": task}, "validation": {"task": task},
                "data": {"task": task, "n_train": self.to_dict()["n_train"]},
                "fit": self.to_dict()}
        if stream not in keys:
            raise ValueError(f"stream={stream!r} is not a seed stream; allowed: {', '.join(STREAMS)}")
        return canonical_json(keys[stream])


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _freeze(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, _freeze_value(v, k)) for k, v in params.items()))


def _freeze_value(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):  # a selection table (the only table a field may hold)
        return as_selection(name, value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(v) for v in value)
    return value


def _thaw(params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: _thaw_value(v) for k, v in params}


def _thaw_value(value: Any) -> Any:
    if isinstance(value, Selection):
        return value.to_json()
    if isinstance(value, tuple):
        return [_thaw_value(v) for v in value]
    return value


def make_run(task: str, task_params: dict[str, Any], regime: str, regime_params: dict[str, Any],
             n_train: int | None, n_test: int, seed: int,
             validation_size: int | None = None) -> Run:
    """Build a :class:`Run` from plain dictionaries (``validation_size`` only with a selection)."""
    return Run(task, _freeze(task_params), regime, _freeze(regime_params), n_train, n_test, seed,
               validation_size)


def stream_seed_sequence(run: Run, stream: str) -> np.random.SeedSequence:
    """The SeedSequence of one named stream of a run."""
    return _sequence(run.seed, stream, run.stream_key(stream))


def _sequence(seed: int, stream: str, key: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *_words(stream), *_words(key)])


def task_generator(task: str, task_params: dict[str, Any], seed: int) -> np.random.Generator:
    """The ``task`` stream of every run of ``seed`` with this task (what :func:`execute_run` uses)."""
    key = canonical_json({"task": {"name": task, **_thaw(_freeze(task_params))}})
    return np.random.Generator(np.random.PCG64(_sequence(seed, "task", key)))


def stream_generators(run: Run) -> dict[str, np.random.Generator]:
    """Fresh ``numpy.random.Generator`` (PCG64) for every stream of a run."""
    return {s: np.random.Generator(np.random.PCG64(stream_seed_sequence(run, s))) for s in STREAMS}


def stream_entropy(run: Run) -> dict[str, int]:
    """A compact record of each stream's seed (first state word), for the store's seeds column.

    The ``validation`` stream is recorded only for runs with a selected field (the only ones that
    draw from it), so the record of every other run is what it was before that stream existed.
    """
    streams = STREAMS if run.validation_size is not None else STREAMS[:-1]
    return {s: int(stream_seed_sequence(run, s).generate_state(1, np.uint32)[0]) for s in streams}
