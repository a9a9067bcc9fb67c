"""Shared machinery of the two Ghorbani et al. (2019) studies: sizes, sweeps, series, points,
figure. ``ghorbani_fig1`` and ``ghorbani_fig2`` import from here (and the summary from
:mod:`lazylab.studies._ghorbani_claims`).

Both figures have the same layout (THEORY.md §1.7):
* left panel — normalized risk R/R₀ against the width N (log axis, a line at N = d) at n = ∞,
  dots from the exact engine (mean ± standard error over draws of W, and of the task instance:
  every seed draws its own B or Δ; a dot averaging a fit that did not meet its tolerance is
  hollow), lines from :mod:`lazylab.theory` evaluated on the very instances the dots used and
  averaged over the same seeds (solid: the theorem; dashed: a reference formula);
* right panel — R/R₀ against n/d at a fixed N < d: the network and NT trained by online SGD
  (one fresh sample per gradient term, n = steps × batch) and NT least squares with a ridge
  chosen on a validation split, with the n = ∞ values of the same regimes (exact engine) as
  dashed lines and the theory values as dotted lines.
A :class:`Series` says which runs make one curve and which theory functions go with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lazylab.experiments.frame import learning_curve
from lazylab.plots import draw_points, plt, save_figure, set_axis_scale
from lazylab.studies._aggregate import seed_statistics
from lazylab.studies._ghorbani_layout import (Series, Sizes, geometric, ghorbani_sweeps,
                                              nn_sweep_name, run_cost, shared_series)
from lazylab.studies.base import Study, sweep_seeds, sweep_task

__all__ = ["Series", "Sizes", "Study", "geometric", "ghorbani_sweeps", "nn_sweep_name",
           "run_cost", "shared_series", "series_points", "draw_figure", "sweep_seeds",
           "sweep_task", "theory_average"]

POINT_COLUMNS = ["panel", "series", "label", "x", "width", "dim", "count", "mean", "sem",
                 "unconverged", "theory", "gap", "gap_in_sem", "theory_name", "reference",
                 "reference_gap", "reference_name", "selected_ridge", "selection_at_edge"]


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


def _theory_values(function, name: str, spec: dict, seed: int,
                   ratios: np.ndarray) -> np.ndarray:
    """function(ratios, task of seed), memoized by ``name`` (unique per curve and formula) over
    the union of the ratios asked so far (an eigendecomposition per call at d = 450)."""
    key = (name, getattr(function, "__qualname__", repr(function)),
           json.dumps(spec["task"], sort_keys=True), int(seed))
    known = _THEORY.get(key)
    if known is None or not np.all(np.isin(ratios, known[0])):
        union = np.union1d(ratios, known[0] if known is not None else [])
        _THEORY[key] = (union, np.asarray(function(union, sweep_task(spec, int(seed))),
                                          dtype=float))
    grid, values = _THEORY[key]
    return values[np.searchsorted(grid, ratios)]


def theory_average(function, name: str, spec: dict, seeds: Sequence[int],
                   ratios: np.ndarray) -> np.ndarray:
    """A theory averaged over the task instances (one per seed) the runs used."""
    ratios = np.asarray(ratios, dtype=float)
    return np.mean([_theory_values(function, name, spec, s, ratios) for s in seeds], axis=0)


def curve_grid(series: Sequence[Series], specs: Mapping[str, dict]) -> tuple[np.ndarray, int]:
    """The widths at which the left panel's theory lines are drawn (240 points, log-spaced over
    every left-panel sweep's widths, integers), and d."""
    widths, dims = [], set()
    for s in series:
        if s.panel == "left" and s.sweep in specs:
            widths += list(specs[s.sweep]["sweep"]["width"])
            dims.add(int(specs[s.sweep]["task"]["dim"]))
    if not widths:
        return np.zeros(0), 0
    dim = dims.pop()
    grid = np.unique(np.round(np.geomspace(min(widths), max(widths), 240)))
    return np.union1d(grid, [dim - 1, dim]), dim


def _group_theory(function, name, spec, groups: list, extra: np.ndarray) -> list[float]:
    """A theory at each group's width ratio, averaged over that group's seeds; ``extra``
    ratios (the curve grid) are computed in the same call per seed."""
    if function is None or not groups:
        return [np.nan] * len(groups)
    ratios = np.array([g["width"].iloc[0] / g["dim"].iloc[0] for g in groups], dtype=float)
    seeds = sorted({int(s) for g in groups for s in g["seed"].unique()})
    asked = np.concatenate([ratios, extra])
    by_seed = {s: _theory_values(function, name, spec, s, asked)[:ratios.size] for s in seeds}
    return [float(np.mean([by_seed[int(s)][i] for s in g["seed"].unique()]))
            for i, g in enumerate(groups)]


_CACHE: dict = {}


def _fingerprint(frames: Mapping[str, pd.DataFrame], specs: Mapping[str, dict]) -> tuple:
    runs = tuple((name, tuple(frame["run_id"]) if "run_id" in frame else len(frame))
                 for name, frame in sorted(frames.items()))
    return runs, json.dumps(specs, sort_keys=True, default=str)


def series_points(frames: Mapping[str, pd.DataFrame], series: Sequence[Series],
                  specs: Mapping[str, dict]) -> pd.DataFrame:
    """The figure's points: one row per series and x, with the theory values and the gaps.

    Columns (``POINT_COLUMNS``): panel, series, label, x (N, n/d, or inf for a limit), width,
    dim, count, mean, sem (standard error over draws; 0 for one draw), unconverged (runs that
    did not meet their tolerance; NaN where the fit has no certificate), theory, gap (mean −
    theory), gap_in_sem, theory_name, reference, reference_gap, reference_name, and for a
    selected ridge its geometric mean over seeds and the number of edge selections. The last
    few tables are cached by the runs they come from.
    """
    key = (_fingerprint(frames, specs), tuple((s.key, s.panel, s.sweep) for s in series))
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _series_points(frames, series, specs)
    return _CACHE[key].copy()


def _certified(frame: pd.DataFrame) -> pd.DataFrame:
    """A ``converged`` column from the certificate the regime reports (CG's for NT)."""
    if "converged" not in frame and "cg_converged" in frame:
        return frame.assign(converged=frame["cg_converged"])
    return frame


def _selection(group: pd.DataFrame) -> tuple[float, float]:
    if "selected_ridge" not in group:
        return np.nan, np.nan
    ridge = pd.to_numeric(group["selected_ridge"], errors="coerce")
    edge = pd.to_numeric(group.get("selection_at_edge", np.nan), errors="coerce")
    return float(np.exp(np.log(ridge.clip(lower=1e-300)).mean())), float(np.nansum(edge))


def _series_rows(s: Series, frame: pd.DataFrame, specs, grid, dim) -> list[dict]:
    frame = _certified(frame.assign(_x=_x_values(frame, s)))
    if s.panel != "limit":
        frame = frame[np.isfinite(frame["_x"])]
    keyed = list(frame.groupby("_x", sort=True))
    stats = seed_statistics(frame, ["_x"]).set_index("_x")
    extra = grid / dim if s.panel == "left" and dim else np.zeros(0)
    groups = [g for _, g in keyed]
    spec = specs[s.sweep]
    theories = _group_theory(s.theory, f"{s.key}: {s.theory_name}", spec, groups, extra)
    references = _group_theory(s.reference, f"{s.key}: {s.reference_name}", spec, groups,
                               extra)
    rows = []
    for (x, group), theory, reference in zip(keyed, theories, references):
        mean, sem = float(stats.at[x, "mean"]), float(stats.at[x, "sem"])
        unconverged = (float(stats.at[x, "unconverged"]) if "unconverged" in stats
                       else np.nan)
        gap = mean - theory
        ridge, edges = _selection(group)
        rows.append({"panel": s.panel, "series": s.key, "label": s.label, "x": float(x),
                     "width": int(group["width"].iloc[0]), "dim": int(group["dim"].iloc[0]),
                     "count": int(stats.at[x, "count"]), "mean": mean, "sem": sem,
                     "unconverged": unconverged, "theory": theory, "gap": gap,
                     "gap_in_sem": gap / sem if sem > 1e-9 else np.nan,
                     "theory_name": s.theory_name, "reference": reference,
                     "reference_gap": mean - reference, "reference_name": s.reference_name,
                     "selected_ridge": ridge, "selection_at_edge": edges})
    return rows


def _series_points(frames, series, specs) -> pd.DataFrame:
    rows = []
    grid, dim = curve_grid(series, specs)
    for s in series:
        frame = _select(frames.get(s.sweep, pd.DataFrame()), s.where)
        if not frame.empty:
            rows += _series_rows(s, learning_curve(frame) if s.curve else frame, specs, grid,
                                 dim)
    return pd.DataFrame.from_records(rows, columns=POINT_COLUMNS)


# ----------------------------------------------------------------------------- figure

def _curve(s: Series, function, name: str, grid, dim, specs, frames) -> np.ndarray:
    seeds = sorted(int(v) for v in _select(frames[s.sweep], s.where)["seed"].unique())
    return theory_average(function, f"{s.key}: {name}", specs[s.sweep], seeds, grid / dim)


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
        draw_points(axes, rows["x"], rows["mean"], rows["sem"],
                    unconverged=rows["unconverged"].fillna(0), linestyle="none",
                    marker=s.marker, markersize=4.5, capsize=2.5, color=s.color,
                    label=f"{s.label} (engine, n = ∞)")
        for function, name, style in ((s.theory, s.theory_name, "-"),
                                      (s.reference, s.reference_name, "--")):
            if function is not None:
                axes.plot(grid, _curve(s, function, name, grid, dim, specs, frames),
                          color=s.color, linewidth=1.1, alpha=0.85, linestyle=style,
                          label=f"{s.label} theory: {name}")
    axes.axvline(dim, color="grey", linewidth=0.8, linestyle="-.", label=f"N = d = {dim}")
    axes.set_xscale("log")
    axes.set_xlabel("width N (hidden units)")
    axes.set_ylabel("normalized risk R / R₀")
    axes.set_title(f"n = ∞, d = {dim}: dots = exact engine (hollow: not converged), "
                   "lines = theory", fontsize=9.5)


def _right(axes: Any, points: pd.DataFrame, series: Sequence[Series]) -> None:
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
    figure, (left, right) = plt.subplots(1, 2, figsize=(13.5, 5.2), layout="constrained")
    _left(left, points, series, specs, frames)
    for label, value, color in extra_lines:
        left.axhline(value, color=color, linestyle=":", linewidth=1.4, label=label)
    _right(right, points, series)
    for axes in (left, right):
        if axes.get_xscale() == "log":
            set_axis_scale(axes.xaxis, axes.set_xscale, True)
        axes.grid(True, which="both", alpha=0.25)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=6.5, frameon=False)
    figure.suptitle(title, fontsize=11)
    return save_figure(figure, stem, ("png", "pdf"))
