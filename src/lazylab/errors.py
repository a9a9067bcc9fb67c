"""Exceptions shared across lazylab.

This module sits at the bottom of the import graph so that every layer (solvers, models,
experiments) can raise or catch these without importing anything above itself.
"""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(RuntimeError):
    """Training diverged: the loss or the parameters became non-finite or exceeded a bound.

    Regimes raise it instead of returning a predictor with NaN parameters. The experiment
    runner records such a run with status ``"diverged"`` and the exception text, never as a
    number. Optional ``step`` records the iteration at which divergence was detected (it is
    stored as the ``steps_to_divergence`` diagnostic).
    """

    def __init__(self, message: str, *, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step
