"""Selection grids that grow past the end their choice sits at (``extend = K``).

A fixed grid whose choice is at an end says only that the optimum may lie outside it. With
``extend = K`` (:mod:`lazylab.experiments.selection`), the grid instead grows past that end by
its own ratio there, one value at a time, the other selected fields held at their choice, until
a new value does not beat the choice (the choice is then bracketed by a worse neighbour on
each side, the case ``selection_at_edge = 0`` means), the regime rejects the value, or K
values have been added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Trials", "check_extensible", "beyond", "extend_grid"]


@dataclass
class Trials:
    """The selection's running state: the chosen predictor and its key (unconverged, risk,
    grid index), counts of diverged and unconverged fits, and of values added."""

    best: Any
    key: tuple
    diverged: int
    unconverged: int
    extended: int = 0


def check_extensible(grid: Any, extend: Any) -> None:
    """Raise ValueError unless ``extend`` is a positive integer and ``grid`` (None: a default
    grid, log-spaced by construction) holds ≥ 2 distinct positive numbers in increasing order."""
    if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
        raise ValueError(f"extend={extend!r} must be a non-negative integer")
    if grid is None:
        return
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in grid)
    if not (numbers and len(grid) >= 2 and grid[0] > 0
            and all(a < b for a, b in zip(grid, grid[1:]))):
        raise ValueError(f"extend needs a grid of at least two increasing positive numbers, got "
                         f"{list(grid)!r}")


def beyond(grid: tuple, side: int) -> float:
    """The next value past an end of ``grid`` at its ratio there: side −1 below, +1 above."""
    if side < 0:
        return float(grid[0]) * float(grid[0]) / float(grid[1])
    return float(grid[-1]) * float(grid[-1]) / float(grid[-2])


def extend_grid(name: str, budget: int, grids: dict[str, tuple], trials: Trials,
                refit: Callable[[dict], tuple[float, Any]],
                unconverged: Callable[[Any], bool]) -> dict[str, tuple]:
    """Grow ``name``'s grid past the end ``trials``' choice sits at (module docstring).

    ``refit(values)`` fits the regime at ``values`` (every selected field) and returns (risk,
    predictor or None when it diverged). Updates ``trials`` in place; returns the grids with
    ``name``'s grown by the values tried (the chosen index shifted when it grew below).
    """
    names = list(grids)
    axis = names.index(name)
    for _ in range(budget):
        grid, index = grids[name], list(trials.key[2])
        side = -1 if index[axis] == 0 else 1 if index[axis] == len(grid) - 1 else 0
        if side == 0 or len(grid) < 2:
            break
        value = beyond(grid, side)
        values = {n: grids[n][i] for n, i in zip(names, index)}
        try:
            risk, predictor = refit({**values, name: value})
        except ValueError:       # the regime rejects the value (e.g. outside its range)
            break
        grids = {**grids, name: (value, *grid) if side < 0 else (*grid, value)}
        trials.extended += 1
        trials.diverged += predictor is None or risk == math.inf
        trials.unconverged += unconverged(predictor)
        if side < 0:             # every index along this axis moved up by one
            index[axis] += 1
        new_index = list(index)
        new_index[axis] = 0 if side < 0 else len(grid)
        key = (unconverged(predictor), risk, tuple(new_index))
        trials.key = (*trials.key[:2], tuple(index))
        if not (risk < math.inf and key[:2] < trials.key[:2]):
            break
        trials.best, trials.key = predictor, key
    return grids
