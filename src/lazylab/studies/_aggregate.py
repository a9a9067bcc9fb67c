"""The one seed aggregation of the studies: mean, standard error over seeds, number of seeds;
and the one account of unconverged runs (:func:`unconverged_text`).

Every study reduces its runs to dots with :func:`seed_statistics`; the standard error is the
sample standard deviation over seeds divided by √(number of seeds), 0 for a single seed
(DESIGN.md, experiment habits). It is :func:`lazylab.plots.aggregate`, the aggregation of
``lazylab plot``, so a study's dots and a plotted spec's dots are the same numbers.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from lazylab.plots import aggregate

__all__ = ["seed_statistics", "unconverged_text", "SETTLED_RISK"]


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


SETTLED_RISK = 1e-3
"""Normalized risk at or below which an unconverged run is reported as settled near 0."""


def unconverged_text(runs: pd.DataFrame, tol: float) -> str:
    """"Unconverged network runs: U of T (goal 0)", then where the U stopped.

    A run whose risk decays geometrically toward 0 keeps a constant relative change per window,
    so a relative-change tolerance is never met however small the risk gets: those with
    normalized risk ≤ :data:`SETTLED_RISK` are counted apart from the others, whose normalized
    risks and last criteria (against ``tol``) are given — their dots may lie above their limit.
    """
    if "converged" not in runs:
        return "Convergence not recorded."
    stopped = runs[runs["converged"] == 0]
    text = f"Unconverged network runs: {len(stopped)} of {len(runs)} (goal 0)"
    if stopped.empty:
        return text + "."
    settled = stopped["risk_normalized"] <= SETTLED_RISK
    parts = []
    if settled.any():
        parts.append(f"{int(settled.sum())} stopped at a normalized risk ≤ {SETTLED_RISK:g}, "
                     "still falling toward 0 (a relative change per window stays above tol "
                     "while the risk decays geometrically)")
    rest = stopped[~settled]
    if not rest.empty:
        low, high = rest["risk_normalized"].min(), rest["risk_normalized"].max()
        risks = f"{low:.2g}" if len(rest) == 1 else f"{low:.2g}–{high:.2g}"
        parts.append(f"{len(rest)} above it (normalized risk {risks}, last criterion up to "
                     f"{rest['criterion'].max():.2g} against tol {tol:g}): those dots may lie "
                     "above their limit")
    return f"{text}: {'; '.join(parts)}."
