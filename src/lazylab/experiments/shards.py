"""Shards: one sweep split over independent jobs (machines, array-job tasks), merged afterwards.

A sweep's runs are independent (a run's selection grids and their extensions are done inside the
run), so a sweep can be split into ``count`` shards that run anywhere, each into its own store,
with no communication, and the stores merged afterwards (:meth:`Store.merge
<lazylab.experiments.store.Store.merge>`, ``lazylab merge``). Every job computes the same
assignment from the sweep alone, never from a store: the runs, most expensive first by the cost
estimate, each go to the shard with the least estimated work so far (longest processing time
first, Graham 1969: within 4/3 of the best balance for the estimate), ties broken by run id.

Typical use (a SLURM array of 8 tasks, then one merge)::

    lazylab run sweep.toml --shard $SLURM_ARRAY_TASK_ID/8 --store part-$SLURM_ARRAY_TASK_ID.sqlite
    lazylab merge sweep.sqlite part-*.sqlite
"""

from __future__ import annotations

import heapq
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


def shard_runs(runs: Sequence[Any], shard: Shard, cost: Callable[[Any], float]) -> list[Any]:
    """The runs of ``shard``, in their given order.

    Args:
        runs: every run of the sweep (objects with a ``run_id``); the same in every job.
        shard: which share to return.
        cost: ``run -> estimated seconds``, a function of the run alone (so that every job
            computes the same assignment), e.g. :func:`lazylab.experiments.resources.run_seconds`.
    Returns:
        The runs assigned to ``shard`` by longest-processing-time-first over ``cost``; the
        shards partition ``runs`` (duplicated run ids are assigned once, with their first copy).
    """
    costs: dict[str, float] = {}
    for run in runs:
        if run.run_id not in costs:
            value = float(cost(run))
            if not value >= 0.0 or value == float("inf"):
                raise ValueError(f"cost of run {run.run_id} is {value!r}; a finite number ≥ 0 "
                                 "is required")
            costs[run.run_id] = value
    loads = [(0.0, index) for index in range(1, shard.count + 1)]
    mine = set()
    for run_id in sorted(costs, key=lambda key: (-costs[key], key)):
        load, index = heapq.heappop(loads)
        if index == shard.index:
            mine.add(run_id)
        heapq.heappush(loads, (load + costs[run_id], index))
    out = []
    for run in runs:
        if run.run_id in mine:
            mine.discard(run.run_id)
            out.append(run)
    return out
