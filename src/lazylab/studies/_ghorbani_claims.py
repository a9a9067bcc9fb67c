"""The summaries of the two Ghorbani et al. (2019) studies: each claim of the paper the figure
addresses, "supported" or "not supported", with the numbers behind the verdict.

Computed from the points table of :func:`lazylab.studies._ghorbani.series_points` (one row per
curve and x: mean and standard error over seeds, the theory and reference values, the number of
fits that missed their tolerance, the selected ridge and edge selections).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Claim", "separation_claim", "gap_claim", "seed_counts", "certificate_lines",
           "gap_table", "summary_text"]


@dataclass(frozen=True)
class Claim:
    """One statement of the paper, the verdict of the data, and the numbers."""

    statement: str
    supported: bool
    numbers: str

    def line(self) -> str:
        verdict = "**supported**" if self.supported else "**not supported**"
        return f"* {self.statement} — {verdict}: {self.numbers}"


def _where(row: pd.Series) -> str:
    if row["panel"] == "limit":
        return "n = ∞"
    return f"N = {int(row['x'])}" if row["panel"] == "left" else f"n/d = {row['x']:g}"


def separation_claim(points: pd.DataFrame, order: Sequence[str],
                     labels: Mapping[str, str]) -> Claim:
    """mean[order[0]] < mean[order[1]] < … at every width N < d where all have dots; each
    difference with its standard error √(s.e.₁² + s.e.₂²); the smallest z-score is reported."""
    left = points[(points["panel"] == "left") & (points["x"] < points["dim"])]
    means = left.pivot_table(index="x", columns="series", values="mean")
    sems = left.pivot_table(index="x", columns="series", values="sem")
    chain = " < ".join(labels[k] for k in order)
    if any(k not in means for k in order):
        return Claim(f"{chain} below N = d", False, "not every curve has dots at N < d")
    means = means[list(order)].dropna()
    sems = sems[list(order)].reindex(means.index)
    differences = np.diff(means[list(order)].to_numpy(), axis=1)
    errors = np.sqrt(sems[list(order)].to_numpy()[:, 1:] ** 2
                     + sems[list(order)].to_numpy()[:, :-1] ** 2)
    z = differences / np.maximum(errors, 1e-12)
    ok = np.all(differences > 0, axis=1)
    worst = np.unravel_index(np.argmin(z), z.shape)
    pair = f"{labels[order[worst[1]]]} → {labels[order[worst[1] + 1]]}"
    numbers = (f"holds at {int(ok.sum())} of {ok.size} widths N < d "
               f"(N = {', '.join(str(int(x)) for x in means.index)}); smallest margin "
               f"{differences[worst]:.4f} ± {errors[worst]:.4f} (s.e.; z = {z[worst]:.1f}) for "
               f"{pair} at N = {int(means.index[worst[0]])}")
    if not ok.all():
        numbers += "; fails at " + ", ".join(f"N = {int(x)}" for x, g in zip(means.index, ok)
                                             if not g)
    return Claim(f"{chain} below N = d", bool(ok.all() and np.min(z) > 2), numbers)


def gap_claim(points: pd.DataFrame, series: str, statement: str, *, panels=("left",),
              column: str = "gap", tolerance: float = 0.0, sems: float = 0.0,
              allowance: pd.Series | None = None, where=None) -> Claim:
    """Supported when every |gap| ≤ tolerance + sems × s.e. (+ ``allowance`` per point, e.g. a
    known finite-d correction). ``where``: an optional boolean mask function of the rows."""
    rows = points[(points["series"] == series) & points["panel"].isin(panels)]
    rows = rows[np.isfinite(rows[column])]
    if where is not None:
        rows = rows[where(rows)]
    if rows.empty:
        return Claim(statement, False, "no points")
    extra = 0.0 if allowance is None else allowance.reindex(rows.index).fillna(0.0).abs()
    bound = tolerance + sems * rows["sem"] + extra
    ok = rows[column].abs() <= bound
    worst = rows.loc[rows[column].abs().idxmax()]
    numbers = (f"max |gap| {abs(worst[column]):.2e} at {_where(worst)} (s.e. "
               f"{worst['sem']:.1e}, {int(worst['count'])} seeds) over {len(rows)} points; "
               f"within {'the bound' if ok.all() else 'the bound at ' + str(int(ok.sum()))}"
               f"{'' if ok.all() else ' of ' + str(len(rows))}")
    return Claim(statement, bool(ok.all()), numbers)


def seed_counts(points: pd.DataFrame) -> str:
    """How many seeds each dot averages, per panel."""
    parts = []
    for panel, rows in points.groupby("panel", sort=False):
        low, high = int(rows["count"].min()), int(rows["count"].max())
        parts.append(f"{panel}: {low}" + (f"–{high}" if high != low else "") + " seeds")
    return "Seeds (draws of W and of the task instance) per dot: " + "; ".join(parts) + "."


def certificate_lines(points: pd.DataFrame) -> list[str]:
    """Unconverged n = ∞ fits (the goal is 0) and edge selections of the validated ridge."""
    exact = points[points["panel"].isin(["left", "limit"])]
    certified = exact[np.isfinite(exact["unconverged"])]
    missed = certified[certified["unconverged"] > 0]
    lines = [f"Unconverged n = ∞ fits: {int(certified['unconverged'].sum())} (in "
             f"{len(missed)} of the {len(certified)} dots with a convergence certificate"
             + ("" if missed.empty else "; at " + ", ".join(
                 f"{r['label']} {_where(r)}" for _, r in missed.iterrows())) + ")."]
    ridge = points[np.isfinite(points["selected_ridge"])]
    if not ridge.empty:
        edges = ridge[ridge["selection_at_edge"] > 0]
        lines.append(
            f"Validated ridge of NT least squares: geometric-mean selections "
            + ", ".join(f"{r['selected_ridge']:.1e} (n/d = {r['x']:g})" for _, r in
                        ridge.iterrows())
            + f"; edge selections: {int(ridge['selection_at_edge'].sum())} of "
            f"{int(ridge['count'].sum())} fits"
            + ("" if edges.empty else " (at n/d = " + ", ".join(f"{x:g}" for x in edges["x"])
               + ": the validation risk is flat at the small end of the grid when n ≫ Nd, "
                 "where no ridge is needed)") + ".")
    return lines


def gap_table(points: pd.DataFrame) -> list[str]:
    """Mean and max |gap| to the theory (and to the reference formula, where one is drawn)."""
    lines = ["| curve | formula | points | mean abs. gap | max abs. gap (at) | median gap/s.e. |",
             "|---|---|---|---|---|---|"]
    for (series, panel), rows in points.groupby(["series", "panel"], sort=False):
        for column, name in (("gap", "theory_name"), ("reference_gap", "reference_name")):
            finite = rows[np.isfinite(rows[column])]
            if finite.empty:
                continue
            gaps = finite[column].abs()
            worst = finite.loc[gaps.idxmax()]
            ratio = (finite[column] / finite["sem"].where(finite["sem"] > 1e-9)).abs().dropna()
            lines.append(f"| {finite['label'].iloc[0]}{' (n = ∞)' if panel == 'limit' else ''}"
                         f" | {finite[name].iloc[0]} | {len(finite)} | {gaps.mean():.4f} | "
                         f"{gaps.max():.4f} ({_where(worst)}) | "
                         f"{'–' if ratio.empty else f'{ratio.median():.1f}'} |")
    return lines


def summary_text(points: pd.DataFrame, shows: str, claims: Sequence[Claim],
                 notes: Sequence[str]) -> str:
    """Markdown: what the figure shows, the claims with verdicts, certificates, gap table."""
    return "\n".join([
        shows, "", "## Claims", "", *(c.line() for c in claims), "",
        "## Seeds and certificates", "", f"* {seed_counts(points)}",
        *(f"* {line}" for line in certificate_lines(points)), "",
        "## Observed gaps between simulation and theory", "",
        "Gap = simulated mean − formula, on the normalized risk R/R₀; formulas evaluated on the "
        "simulated instances (B or Δ of each seed) and averaged over the same seeds.", "",
        *gap_table(points), "", "## Notes", "", *(f"* {n}" for n in notes)])
