"""Shared machinery of the two Ghorbani et al. (2019) studies: sizes, sweeps, series, points,
figure, summary. ``ghorbani_fig1`` and ``ghorbani_fig2`` import from here only.

Both figures have the same layout (THEORY.md §1.7):
* left panel — normalized risk R/R₀ against the width N (log axis, a line at N = d) at n = ∞,
  dots from the exact engine (mean ± standard error over draws of W, and of the task instance:
  every seed draws its own B or Δ), lines from :mod:`lazylab.theory` evaluated on the very
  instances the dots used and averaged over the same seeds;
* right panel — R/R₀ against n/d at a fixed N < d, the network trained by online SGD (one fresh
  sample per gradient term, n = steps × batch) and NT fitted on n samples, with the n = ∞ values
  of the same regimes (exact engine) as dashed lines and the theory values as dotted lines.
A :class:`Series` says which runs make one curve and which theory function goes with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lazylab.plots import plt, save_figure, set_axis_scale
from lazylab.studies._aggregate import seed_statistics
from lazylab.studies._ghorbani_layout import (Series, Sizes, geometric, ghorbani_sweeps,
                                              run_cost, shared_series)
from lazylab.studies.base import Study, sweep_seeds, sweep_task

__all__ = ["Series", "Sizes", "Study", "geometric", "ghorbani_sweeps", "run_cost",
           "shared_series", "series_points", "draw_figure", "summary_text", "sweep_seeds",
           "sweep_task"]

def _select(frame: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        if column not in frame:
            return frame.iloc[0:0]
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def _x_values(frame: pd.DataFrame, series: Series) -> pd.Series:
    if series.panel == "limit":
        return pd.Series(np.inf, index=frame.index)
    if series.panel == "right":
        return frame[series.x].astype(float) / frame["dim"].astype(float)
    return frame[series.x].astype(float)


_THEORY: dict = {}


def _theory_values(series: Series, specs: Mapping[str, dict], seed: int,
                   ratios: np.ndarray) -> np.ndarray:
    """series.theory(ratios, task of seed), memoized over the union of the ratios asked so far
    (the theory functions cost an eigendecomposition per call at d = 450)."""
    key = (series.key, series.sweep, series.theory_name,
           json.dumps(specs[series.sweep]["task"], sort_keys=True), int(seed))
    known = _THEORY.get(key)
    if known is None or not np.all(np.isin(ratios, known[0])):
        union = np.union1d(ratios, known[0] if known is not None else [])
        task = sweep_task(specs[series.sweep], int(seed))
        _THEORY[key] = (union, np.asarray(series.theory(union, task), dtype=float))
    grid, values = _THEORY[key]
    return values[np.searchsorted(grid, ratios)]


def curve_grid(series: Sequence[Series], specs: Mapping[str, dict]) -> tuple[np.ndarray, int]:
    """The widths at which the left panel's theory lines are drawn (240 points, log-spaced over
    every left-panel sweep's widths), and d."""
    widths, dims = [], set()
    for s in series:
        if s.panel == "left" and s.sweep in specs:
            widths += list(specs[s.sweep]["sweep"]["width"])
            dims.add(int(specs[s.sweep]["task"]["dim"]))
    if not widths:
        return np.zeros(0), 0
    return np.geomspace(min(widths), max(widths), 240), dims.pop()


def _theory_at(series: Series, ratios: np.ndarray, specs: Mapping[str, dict],
               seeds: Sequence[int]) -> np.ndarray:
    """Theory averaged over the task instances (one per seed) the series' runs used."""
    return np.mean([_theory_values(series, specs, s, ratios) for s in seeds], axis=0)


def _point_theory(series: Series, groups: list, specs: Mapping[str, dict],
                  extra: np.ndarray) -> list[float]:
    """Theory at each group's width ratio, averaged over that group's seeds; ``extra`` ratios
    (the curve grid) are computed in the same call per seed."""
    if series.theory is None or not groups:
        return [np.nan] * len(groups)
    ratios = np.array([g["width"].iloc[0] / g["dim"].iloc[0] for g in groups], dtype=float)
    seeds = sorted({int(s) for g in groups for s in g["seed"].unique()})
    asked = np.concatenate([ratios, extra])
    by_seed = {s: _theory_values(series, specs, s, asked)[:ratios.size] for s in seeds}
    return [float(np.mean([by_seed[int(s)][i] for s in g["seed"].unique()]))
            for i, g in enumerate(groups)]


_CACHE: dict = {}


def _fingerprint(frames: Mapping[str, pd.DataFrame], specs: Mapping[str, dict]) -> tuple:
    runs = tuple((name, tuple(frame["run_id"]) if "run_id" in frame else len(frame))
                 for name, frame in sorted(frames.items()))
    return runs, json.dumps(specs, sort_keys=True, default=str)


def series_points(frames: Mapping[str, pd.DataFrame], series: Sequence[Series],
                  specs: Mapping[str, dict]) -> pd.DataFrame:
    """The figure's points: one row per series and x, with the theory value and the gap.

    Columns: panel, series, label, x (N, n/d, or inf for a limit), width, dim, count, mean,
    sem (standard error over draws; 0 for one draw), theory, gap (mean − theory), gap_in_sem,
    theory_name. The last few tables are cached by the runs they come from (figure, CSV and
    summary of one reproduction share one computation).
    """
    key = (_fingerprint(frames, specs), tuple((s.key, s.panel, s.sweep) for s in series))
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _series_points(frames, series, specs)
    return _CACHE[key].copy()


def _series_points(frames, series, specs) -> pd.DataFrame:
    rows = []
    grid, dim = curve_grid(series, specs)
    for s in series:
        frame = _select(frames.get(s.sweep, pd.DataFrame()), s.where)
        if frame.empty:
            continue
        frame = frame.assign(_x=_x_values(frame, s))
        if s.panel != "limit":
            frame = frame[np.isfinite(frame["_x"])]
        keyed = list(frame.groupby("_x", sort=True))
        stats = seed_statistics(frame, ["_x"]).set_index("_x")
        extra = grid / dim if s.panel == "left" and dim else np.zeros(0)
        theories = _point_theory(s, [g for _, g in keyed], specs, extra)
        for (x, group), theory in zip(keyed, theories):
            mean, sem = float(stats.at[x, "mean"]), float(stats.at[x, "sem"])
            gap = mean - theory
            rows.append({"panel": s.panel, "series": s.key, "label": s.label, "x": float(x),
                         "width": int(group["width"].iloc[0]), "dim": int(group["dim"].iloc[0]),
                         "count": int(stats.at[x, "count"]), "mean": mean, "sem": sem,
                         "theory": theory, "gap": gap,
                         "gap_in_sem": gap / sem if sem > 1e-6 else np.nan,
                         "theory_name": s.theory_name})
    return pd.DataFrame.from_records(rows, columns=[
        "panel", "series", "label", "x", "width", "dim", "count", "mean", "sem", "theory", "gap",
        "gap_in_sem", "theory_name"])


# ----------------------------------------------------------------------------- figure

def _left(axes: Any, points: pd.DataFrame, series: Sequence[Series], specs, frames) -> None:
    table = points[points["panel"] == "left"]
    if table.empty:
        return
    grid, dim = curve_grid(series, specs)
    drawn = set()
    for s in series:
        rows = table[table["series"] == s.key]
        if rows.empty or s.panel != "left" or s.key in drawn:
            continue
        drawn.add(s.key)
        axes.errorbar(rows["x"], rows["mean"], yerr=rows["sem"], linestyle="none",
                      marker=s.marker, markersize=4.5, capsize=2.5, color=s.color,
                      label=f"{s.label} (engine, n = ∞)")
        if s.theory is not None:
            seeds = sorted(_select(frames[s.sweep], s.where)["seed"].unique())
            curve = _theory_at(s, grid / dim, specs, seeds)
            axes.plot(grid, curve, color=s.color, linewidth=1.1, alpha=0.85,
                      label=f"{s.label} theory: {s.theory_name}")
    axes.axvline(dim, color="grey", linewidth=0.8, linestyle="-.", label=f"N = d = {dim}")
    axes.set_xscale("log")
    axes.set_xlabel("width N (hidden units)")
    axes.set_ylabel("normalized risk R / R₀")
    axes.set_title(f"n = ∞, d = {dim}: dots = exact engine, lines = theory", fontsize=9.5)


def _right(axes: Any, points: pd.DataFrame, series: Sequence[Series], specs) -> None:
    table = points[points["panel"] == "right"]
    limits = points[points["panel"] == "limit"]
    for s in series:
        rows = table[table["series"] == s.key] if s.panel == "right" else table.iloc[0:0]
        if not rows.empty:
            axes.errorbar(rows["x"], rows["mean"], yerr=rows["sem"], marker=s.marker,
                          markersize=4.5, capsize=2.5, linewidth=1.0, color=s.color,
                          label=s.label)
        limit = limits[limits["series"] == s.key] if s.panel == "limit" else limits.iloc[0:0]
        if not limit.empty:
            row = limit.iloc[0]
            axes.axhline(row["mean"], color=s.color, linestyle="--", linewidth=1.1,
                         label=f"{s.label} (engine, n = ∞)")
            if np.isfinite(row["theory"]):
                axes.axhline(row["theory"], color=s.color, linestyle=":", linewidth=1.3,
                             label=f"theory: {s.theory_name}")
    if not table.empty:
        axes.set_xscale("log")
        row = table.iloc[0]
        axes.set_title(f"d = {int(row['dim'])}, N = {int(row['width'])}: risk against n/d",
                       fontsize=9.5)
    axes.set_xlabel("n / d (training samples per dimension)")
    axes.set_ylabel("normalized risk R / R₀")


def draw_figure(points: pd.DataFrame, series: Sequence[Series], specs: Mapping[str, dict],
                frames: Mapping[str, pd.DataFrame], stem: Path, title: str,
                extra_lines: Sequence[tuple[str, float, str]] = ()) -> list[Path]:
    """Two panels (left: against N; right: against n/d), saved as ``stem.png`` and ``.pdf``.

    ``extra_lines``: (label, value, color) horizontal lines on the left panel (e.g. the MMSE).
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(13.0, 5.0), layout="constrained")
    _left(left, points, series, specs, frames)
    for label, value, color in extra_lines:
        left.axhline(value, color=color, linestyle=":", linewidth=1.4, label=label)
    _right(right, points, series, specs)
    for axes in (left, right):
        if axes.get_xscale() == "log":
            set_axis_scale(axes.xaxis, axes.set_xscale, True)
        axes.grid(True, which="both", alpha=0.25)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, frameon=False)
    figure.suptitle(title, fontsize=11)
    return save_figure(figure, stem, ("png", "pdf"))


# ----------------------------------------------------------------------------- summary

def _gap_rows(points: pd.DataFrame) -> list[str]:
    lines = ["| curve | theory | points | mean abs. gap | max abs. gap (at x) | median gap/s.e. |",
             "|---|---|---|---|---|---|"]
    finite = points[np.isfinite(points["theory"])]
    for _, rows in finite.groupby(["series", "panel"], sort=False):
        gaps = rows["gap"].abs()
        worst = rows.loc[gaps.idxmax()]
        where = "n = ∞" if worst["panel"] == "limit" else (
            f"N = {int(worst['x'])}" if worst["panel"] == "left" else f"n/d = {worst['x']:g}")
        ratio = rows["gap_in_sem"].abs().dropna()
        lines.append(f"| {rows['label'].iloc[0]}{' (n = ∞)' if worst['panel'] == 'limit' else ''}"
                     f" | {rows['theory_name'].iloc[0]} | {len(rows)} | {gaps.mean():.4f} | "
                     f"{gaps.max():.4f} ({where}) | "
                     f"{'–' if ratio.empty else f'{ratio.median():.1f}'} |")
    return lines


def separation(points: pd.DataFrame, order: Sequence[str]) -> tuple[int, int, list[str]]:
    """At the widths N < d where all of ``order`` (series keys) have dots: how many satisfy
    mean[order[0]] < mean[order[1]] < …; returns (satisfied, compared, failures)."""
    left = points[(points["panel"] == "left") & (points["x"] < points["dim"])]
    table = left.pivot_table(index="x", columns="series", values="mean")
    if any(k not in table for k in order):
        return 0, 0, []
    table = table[list(order)].dropna()
    ok = np.all(np.diff(table.to_numpy(), axis=1) > 0, axis=1)
    failures = [f"N = {int(x)}" for x, good in zip(table.index, ok) if not good]
    return int(ok.sum()), int(ok.size), failures


def summary_text(points: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str],
                 shows: str, notes: Sequence[str]) -> str:
    """Markdown: what the figure shows, the separation check, and the gap table."""
    good, total, failures = separation(points, order)
    chain = " < ".join(labels[k] for k in order)
    lines = [shows, "", "## Separation", ""]
    if total:
        lines.append(f"{chain} holds at {good} of the {total} widths N < d where all of them "
                     f"were computed" + (f" (fails at {', '.join(failures)})." if failures else "."))
    else:
        lines.append(f"{chain}: not all of these curves have points at N < d at this scale.")
    lines += ["", "## Observed gaps between simulation and theory", "",
              "Gap = simulated mean − theory, on the normalized risk R/R₀; theory evaluated on the "
              "simulated instances (B or Δ of each seed) and averaged over the same seeds.", "",
              *_gap_rows(points), "", "## Notes", "", *(f"* {n}" for n in notes)]
    return "\n".join(lines)
