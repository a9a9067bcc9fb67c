"""The one seed aggregation of the studies: mean, standard error over seeds, number of seeds.

Every study reduces its runs to dots with :func:`seed_statistics`; the standard error is the
sample standard deviation over seeds divided by √(number of seeds), 0 for a single seed
(DESIGN.md, experiment habits). It is :func:`lazylab.plots.aggregate`, the aggregation of
``lazylab plot``, so a study's dots and a plotted spec's dots are the same numbers.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from lazylab.plots import aggregate

__all__ = ["seed_statistics"]


def seed_statistics(frame: pd.DataFrame, keys: Sequence[str],
                    value: str = "risk_normalized") -> pd.DataFrame:
    """Mean, standard error and count of ``value`` over the rows (seeds) of each ``keys`` group.

    Args:
        frame: one row per run (or per run and seed after a per-seed reduction).
        keys: the columns that identify one dot (at least one); value: the averaged column.
    Returns:
        one row per group, sorted by ``keys``: the keys, ``mean``, ``count``, ``sem``
        (std(ddof=1)/√count; 0 for one seed). Rows with a non-finite value are left out.
    """
    keys = list(keys)
    if not keys:
        raise ValueError("keys must name at least one column, got []")
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "mean", "count", "sem"])
    return aggregate(frame, keys[-1], value, keys[:-1])
