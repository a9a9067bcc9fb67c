"""Shards: one sweep split over independent jobs (machines, array-job tasks), merged afterwards.

A sweep's runs are independent (a run's selection grids and their extensions are done inside the
run), so a sweep can be split into ``count`` shards that run anywhere, each into its own store,
with no communication, and the stores merged afterwards (:meth:`Store.merge
<lazylab.experiments.store.Store.merge>`, ``lazylab merge``). Every job computes the same
assignment from the sweep alone, never from a store. The cost estimate orders runs well within a
kind of run (:func:`lazylab.experiments.resources.run_kind`) but its size can be off by 10–100×
between kinds and by a few times within one, so the split trusts only the order, and splits each
kind on its own: its runs, most expensive first, are dealt to the shards in snake order (1, 2,
…, N, N, …, 2, 1, 1, 2, …), starting one shard further on for each kind. Each shard then holds
an equal share (± 1 run) of every kind and of every cost level within it. Measured on
xie-semirandom's paper scale (390 runs, 1,657 CPU-seconds, the real time of each run): the
busiest of 2 / 3 / 4 shards holds 1.06 / 1.03 / 1.02 × the mean, where longest processing time
first over the estimate's sizes (Graham 1969; all kinds together, as a first version did) gave
1.22 / 1.27 / 1.25 ×, and by kind 1.15 / 1.04 / 1.17 ×.

Typical use (a SLURM array of 8 tasks, then one merge)::

    lazylab run sweep.toml --shard $SLURM_ARRAY_TASK_ID/8 --store part-$SLURM_ARRAY_TASK_ID.sqlite
    lazylab merge sweep.sqlite part-*.sqlite
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Shard", "parse_shard", "shard_runs"]

_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1 ≤ index ≤ count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for name in ("index", "count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"shard {name}={value!r} must be an integer")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 1 ≤ K ≤ N in K/N")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` → :class:`Shard` (K counts from 1, as array-job task ids usually do).

    Raises:
        ValueError: not of the form K/N with 1 ≤ K ≤ N.
    """
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"shard {text!r} must be K/N, e.g. 1/4")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_runs(runs: Sequence[Any], shard: Shard, cost: Callable[[Any], float],
               kind: Callable[[Any], str] | None = None) -> list[Any]:
    """The runs of ``shard``, in their given order.

    Args:
        runs: every run of the sweep (objects with a ``run_id``); the same in every job.
        shard: which share to return.
        cost: ``run -> estimated seconds``, a function of the run alone (so that every job
            computes the same assignment), e.g. :func:`lazylab.experiments.resources.run_seconds`.
        kind: ``run -> name`` of the runs whose costs compare (module docstring), e.g.
            :func:`lazylab.experiments.resources.run_kind`; None: one kind.
    Returns:
        The runs assigned to ``shard``; the shards partition ``runs`` (a duplicated run id is
        assigned once, with its first copy).
    """
    costs: dict[str, float] = {}
    kinds: dict[str, list[str]] = {}
    for run in runs:
        if run.run_id in costs:
            continue
        value = float(cost(run))
        if not value >= 0.0 or value == float("inf"):
            raise ValueError(f"cost of run {run.run_id} is {value!r}; a finite number ≥ 0 "
                             "is required")
        costs[run.run_id] = value
        kinds.setdefault("" if kind is None else str(kind(run)), []).append(run.run_id)
    mine = set()
    for turn, name in enumerate(sorted(kinds)):
        ordered = sorted(kinds[name], key=lambda key: (-costs[key], key))
        for position, run_id in enumerate(ordered):
            lap, step = divmod(position, shard.count)
            dealt = step if lap % 2 == 0 else shard.count - 1 - step
            if (dealt + turn) % shard.count == shard.index - 1:
                mine.add(run_id)
    out = []
    for run in runs:
        if run.run_id in mine:
            mine.discard(run.run_id)
            out.append(run)
    return out
