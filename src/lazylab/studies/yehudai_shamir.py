"""yehudai-shamir: random features cannot learn a single ReLU neuron; gradient descent can
(Yehudai & Shamir 2019, §2.3–2.5 of THEORY.md; the paper has no experiment, this is the
illustration THEORY §2.5 suggests).

Target (task ``single_neuron``): y = [w*·x + b*]₊, x ~ N(0, I_d), w* uniform on the sphere of
radius ‖w*‖ = d (a poly(d) weight, as in the theorem's setting), b* = −t₀‖w*‖ with the kink at
t₀ = ``KINK`` = 0, the centre of the bulk of w*·x/‖w*‖ ~ N(0, 1).

Why this w*, b* (the theorem's norms of w*, b* are [M], not verified):
* For isotropic ("symmetric") features the theorem applies to every w* (THEORY §2.4), so the
  direction is irrelevant and drawn at random.
* The normalized risk R/Var y is invariant under (w*, b*) → c(w*, b*) (the free head and offset
  absorb c), so it depends on b* only through the kink location t₀ = −b*/‖w*‖; the polynomial
  norm ‖w*‖ = d only sets the unit of the head u, which is why the head panel divides
  r·max|uᵢ| by ‖w*‖.
* t₀ = 0 puts the kink where the Gaussian mass is; a quarter of Var f* lies beyond Hermite degree
  1 (computed in the summary from the activation's exact Hermite coefficients), so f* is a
  genuinely non-linear ridge function. A kink off the centre (t₀ ≠ 0) would make the bias-free
  features, which are positively homogeneous, fail at every r (a representability failure, not
  the theorem's counting one); with t₀ = 0 both feature families converge as r → ∞ and the
  question is only how many features they need.

Panel 1 (n = ∞, exact): the minimal population risk of r ReLU random features w_i ~ N(0, I/d),
without biases and with b_i ~ N(0, 1), a free offset, population-optimal head (exact dual
matrices, :func:`lazylab.risk.optimal_head`), against r for each d; and the r (and the
r·max|uᵢ|/‖w*‖) needed to reach risk ≤ ‖f*‖²/50 (‖f*‖² = Var y, the risk of the best constant),
against d on a log scale, with a least-squares exponential fit log r = a + c·d.
Panel 2: gradient descent (Adam) on the exact population risk of one neuron
f(x) = c + a·relu(w·x) and of a width-``nn_width`` network (``network`` regime,
``training = "population"``), at every d.

Scales: see :data:`SIZES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.plots import plt, save_figure
from lazylab.studies._aggregate import seed_statistics
from lazylab.studies._curves import threshold_crossing
from lazylab.studies.base import Study
from lazylab.theory.growth import exponential_fit
from lazylab.theory.yehudai_shamir import exponential_lower_bound_shape, relu_nonlinear_share

__all__ = ["STUDY", "SIZES", "Sizes", "required_width"]

NAME = "yehudai-shamir"
KINK = 0.0
"""t₀ = −b*/‖w*‖: where the target's kink falls on the N(0, 1) scale of w*·x/‖w*‖."""
WIDTH_CAP = 16
"""RF widths are capped at WIDTH_CAP·d²: beyond, the features of a small d are numerically
collinear (the exact Gram matrix needs a pseudo-inverse, minutes per fit at d = 2, r = 4096)
and the risk is already far below the threshold."""
THRESHOLD = 1.0 / 50.0
"""Risk threshold of the theorem, relative to ‖f*‖² = Var y (risk_normalized ≤ 1/50)."""


@dataclass(frozen=True)
class Sizes:
    """The sizes of one scale."""

    dims: tuple
    rf_widths: tuple            # bias-free random features (closed-form arc-cosine Gram)
    rf_bias_widths: tuple       # random features with Gaussian biases (bivariate-normal Gram)
    rf_seeds: int
    nn_widths: tuple            # gradient descent: 1 neuron and a width-r network
    nn_seeds: int
    nn_steps: int
    nn_learning_rate: float


def _powers(low: int, high: int) -> tuple:
    return tuple(2 ** k for k in range(low, high + 1))


SIZES = {
    "smoke": Sizes(dims=(2, 4), rf_widths=_powers(0, 7), rf_bias_widths=(4, 16, 64), rf_seeds=1,
                   nn_widths=(1,), nn_seeds=1, nn_steps=150, nn_learning_rate=0.1),
    "default": Sizes(dims=(2, 4, 8, 16), rf_widths=_powers(0, 12), rf_bias_widths=_powers(2, 10),
                     rf_seeds=2, nn_widths=(1, 8), nn_seeds=2, nn_steps=200,
                     nn_learning_rate=0.1),
    "paper": Sizes(dims=(2, 4, 8, 16, 32), rf_widths=_powers(0, 14),
                   rf_bias_widths=_powers(2, 12), rf_seeds=5, nn_widths=(1, 8, 64), nn_seeds=5,
                   nn_steps=400, nn_learning_rate=0.1),
}

SCALES = {name: (f"d ∈ {list(s.dims)}; RF widths {s.rf_widths[0]}…{s.rf_widths[-1]} (no biases) "
                 f"and {s.rf_bias_widths[0]}…{s.rf_bias_widths[-1]} (Gaussian biases), at most "
                 f"{WIDTH_CAP}·d², "
                 f"{s.rf_seeds} draw(s) of the features; gradient descent (Adam, "
                 f"η = {s.nn_learning_rate}, {s.nn_steps} steps) on widths {list(s.nn_widths)}, "
                 f"{s.nn_seeds} seed(s); all at n = ∞ (exact population risks)")
          for name, s in SIZES.items()}

_LABELS = {"rf": "RF, no biases", "rf_bias": "RF, biases b_i ~ N(0, 1)"}


def _task(dim: int) -> dict:
    norm = float(dim)
    return {"name": "single_neuron", "dim": dim, "weight_norm": norm, "bias": -KINK * norm,
            "activation": "relu"}


def sweeps(scale: str) -> list[dict]:
    """One spec per d: both RF families over their width grids and the two GD networks."""
    sizes = SIZES[scale]
    specs = []
    for dim in sizes.dims:
        cap = WIDTH_CAP * dim ** 2
        regimes = [{"name": "random_features", "activation": "relu", "biases": False,
                    "width": [w for w in sizes.rf_widths if w <= cap], "offset": True,
                    "ridge": 0.0},
                   {"name": "random_features", "activation": "relu", "biases": "gaussian",
                    "width": [w for w in sizes.rf_bias_widths if w <= cap], "offset": True,
                    "ridge": 0.0}]
        specs.append({"name": f"ys-rf-d{dim}",
                      "description": f"minimal RF risk for a single ReLU neuron, d = {dim}",
                      "task": _task(dim), "regime": regimes,
                      "sweep": {"n_train": "population", "seeds": sizes.rf_seeds}})
        network = {"name": "network", "activation": "relu", "width": list(sizes.nn_widths),
                   "biases": False, "offset": True, "training": "population",
                   "optimizer": "adam", "learning_rate": sizes.nn_learning_rate,
                   "steps": sizes.nn_steps, "head_init": "ones"}
        specs.append({"name": f"ys-gd-d{dim}",
                      "description": f"gradient descent on the exact risk, d = {dim}",
                      "task": _task(dim), "regime": [network],
                      "sweep": {"n_train": "population", "seeds": sizes.nn_seeds}})
    return specs


def _run_cost(run) -> float:
    params = dict(run.regime_params)
    width = float(params.get("width", 1))
    if run.regime == "network":
        return 2e3 * float(params.get("steps", 1)) * width
    return width ** 2 * (12.0 if params.get("biases") == "gaussian" else 1.0)


# ----------------------------------------------------------------------------- data

def _curves(frames: dict) -> pd.DataFrame:
    """Mean and s.e. of the normalized risk per (family, d, width) over seeds."""
    parts = []
    for name, frame in frames.items():
        if frame.empty:
            continue
        table = frame.copy()
        if name.startswith("ys-rf-"):
            table["family"] = np.where(table["biases"].astype(str) == "gaussian", "rf_bias", "rf")
            table["scaled_head"] = (table["width"] * table["head_norm_max"]
                                    / table["weight_norm"].astype(float))
        else:
            table["family"] = "gd"
            table["scaled_head"] = np.nan
        parts.append(table[["family", "dim", "width", "seed", "risk_normalized", "scaled_head"]])
    if not parts:
        return pd.DataFrame(columns=["family", "dim", "width", "mean", "sem", "count", "head"])
    data = pd.concat(parts, ignore_index=True)
    keys = ["family", "dim", "width"]
    heads = data.groupby(keys)["scaled_head"].mean().rename("head").reset_index()
    return seed_statistics(data, keys).merge(heads, on=keys, how="left")


required_width = partial(threshold_crossing, threshold=THRESHOLD)
required_width.__doc__ = """r needed for risk ≤ THRESHOLD on a (width, risk) curve (log–log interpolation)."""


def _requirements(curves: pd.DataFrame) -> pd.DataFrame:
    """Per RF family and d: the required r, r·max|u|/‖w*‖ at the first width that reaches the
    threshold, and the largest width of the grid."""
    rows = []
    for (family, dim), group in curves[curves["family"] != "gd"].groupby(["family", "dim"]):
        group = group.sort_values("width")
        needed = required_width(group["width"], group["mean"])
        reached = group[group["mean"] <= THRESHOLD]
        head = float(reached["head"].iloc[0]) if len(reached) else math.inf
        rows.append({"family": family, "dim": int(dim), "required_width": needed,
                     "scaled_head_at_threshold": head, "max_width": int(group["width"].max()),
                     "risk_at_max_width": float(group["mean"].iloc[-1])})
    return pd.DataFrame(rows)


def points(frames: dict, scale: str) -> pd.DataFrame:
    """The figure's points: risk curves (panel a, d), requirements (panels b, c)."""
    curves = _curves(frames).assign(panel="risk")
    needs = _requirements(curves)
    parts = [curves.rename(columns={"width": "x", "mean": "y"})]
    for column, panel in (("required_width", "required_width"),
                          ("scaled_head_at_threshold", "scaled_head")):
        if len(needs):
            parts.append(pd.DataFrame({"panel": panel, "family": needs["family"],
                                       "dim": needs["dim"], "x": needs["dim"],
                                       "y": needs[column]}))
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- figure

def _fit_line(axes, dims, values, color, label):
    fit = exponential_fit(dims, values)
    if fit is None:
        return
    a, c = fit
    if c <= 0:
        return
    grid = np.linspace(min(dims), max(dims), 50)
    axes.plot(grid, exponential_lower_bound_shape(grid, rate=c, scale=math.exp(a)), color=color,
              linewidth=0.9, linestyle=":", label=f"{label}: fit ∝ e^{{{c:.2f} d}}")


def _risk_panel(axes, curves: pd.DataFrame, dims: list, colors: list) -> None:
    """(a) minimal RF risk against r, one colour per d, solid without and dashed with biases."""
    for index, dim in enumerate(dims):
        for family, style in (("rf", "-"), ("rf_bias", "--")):
            group = curves[(curves["family"] == family) & (curves["dim"] == dim)]
            if len(group):
                axes.errorbar(group["width"], group["mean"].clip(lower=1e-7), yerr=group["sem"],
                              fmt="o" + style, markersize=3, color=colors[index % len(colors)],
                              linewidth=1, label=f"d = {dim}" if family == "rf" else None)
    axes.axhline(THRESHOLD, color="black", linewidth=0.8, linestyle="-.", label="1/50")
    axes.set(xscale="log", yscale="log", xlabel="number of random features r",
             ylabel="minimal risk / ‖f*‖²", title="(a) RF at n = ∞: solid no biases, dashed biases")


def _requirement_panel(axes, needs: pd.DataFrame, column: str, title: str, colors: list) -> None:
    """(b), (c): the r (or r·max|u|/‖w*‖) needed against d, with an exponential fit."""
    for index, family in enumerate(("rf", "rf_bias")):
        rows = needs[needs["family"] == family].sort_values("dim")
        finite = rows[np.isfinite(rows[column])]
        color = colors[(index + 4) % len(colors)]
        axes.plot(finite["dim"], finite[column], "o", color=color, label=_LABELS[family])
        missed = rows[~np.isfinite(rows[column])]
        if column == "required_width" and len(missed):
            axes.plot(missed["dim"], missed["max_width"], "^", color=color,
                      markerfacecolor="none", label=f"{_LABELS[family]}: not reached "
                      "at the largest r (marker at that r)")
        _fit_line(axes, finite["dim"], finite[column], color, _LABELS[family])
    axes.set(yscale="log", xlabel="input dimension d", title=title)


def _descent_panel(axes, curves: pd.DataFrame, colors: list) -> None:
    """(d) gradient descent against d, next to RF with the same number of units."""
    gd = curves[curves["family"] == "gd"]
    for index, (width, group) in enumerate(gd.groupby("width")):
        axes.errorbar(group["dim"], group["mean"].clip(lower=1e-12), yerr=group["sem"],
                      fmt="s-", color=colors[(index + 6) % len(colors)],
                      label=f"GD, width {int(width)}" + (" (one neuron)" if width == 1 else ""))
    rf = curves[curves["family"] == "rf"]
    for index, width in enumerate(sorted(gd["width"].unique())):
        rows = rf[rf["width"] == width].sort_values("dim")
        axes.errorbar(rows["dim"], rows["mean"], yerr=rows["sem"], fmt="o--",
                      color=colors[(index + 6) % len(colors)],
                      label=f"RF (no biases) with the same r = {int(width)}")
    axes.axhline(THRESHOLD, color="black", linewidth=0.8, linestyle="-.")
    axes.set(yscale="log", xlabel="input dimension d", ylabel="risk / ‖f*‖²",
             title="(d) gradient descent on the exact risk")


def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """Four panels: RF risk vs r; required r vs d; r·max|u|/‖w*‖ vs d; GD risk vs d."""
    curves = _curves(frames)
    needs = _requirements(curves)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    dims = sorted(curves["dim"].unique())
    _risk_panel(axes[0], curves, dims, colors)
    _requirement_panel(axes[1], needs, "required_width", "(b) r needed for risk ≤ ‖f*‖²/50",
                       colors)
    _requirement_panel(axes[2], needs, "scaled_head_at_threshold",
                       "(c) r·max|u_i| / ‖w*‖ there", colors)
    axes[1].set_ylabel("features r")
    axes[2].set_ylabel("r·max|u_i| / ‖w*‖")
    _descent_panel(axes[3], curves, colors)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=6, frameon=False,
                  loc="lower right" if ax is not axes[3] else "center right")
    for ax in axes[1:]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(int(d)) for d in dims])
    fig.suptitle("Yehudai & Shamir: y = relu(w*·x + b*), ‖w*‖ = d, kink at the centre "
                 "(b* = 0); exact population risks", fontsize=10)
    return save_figure(fig, Path(output_dir) / NAME)


# ----------------------------------------------------------------------------- summary

def _fmt(value: float) -> str:
    return "not reached" if not math.isfinite(value) else f"{value:.3g}"


def _table_row(curves: pd.DataFrame, needs: pd.DataFrame, gd: pd.DataFrame, dim) -> str:
    """One d of the summary table: required r, head scale, RF and GD risks."""
    row = {f: needs[(needs["family"] == f) & (needs["dim"] == dim)] for f in ("rf", "rf_bias")}

    def cell(family: str, column: str) -> str:
        return _fmt(float(row[family][column].iloc[0])) if len(row[family]) else "—"

    dgd = gd[gd["dim"] == dim].sort_values("width")
    rf_one = curves[(curves["family"] == "rf") & (curves["dim"] == dim) & (curves["width"] == 1)]
    single = f"{rf_one['mean'].iloc[0]:.2g}" if len(rf_one) else "—"
    one = f"{dgd['mean'].iloc[0]:.2g}" if len(dgd) else "—"
    wide = (f"{dgd['mean'].iloc[-1]:.2g} (width {int(dgd['width'].iloc[-1])})" if len(dgd)
            else "—")
    return (f"| {dim} | {cell('rf', 'required_width')} | {cell('rf_bias', 'required_width')} | "
            f"{cell('rf', 'scaled_head_at_threshold')} | {cell('rf', 'risk_at_max_width')} | "
            f"{single} | {one} | {wide} |")


def _growth_lines(needs: pd.DataFrame) -> list[str]:
    """The fitted exponential growth of the required r, and the d where it was not reached."""
    lines = []
    for family in ("rf", "rf_bias"):
        rows = needs[needs["family"] == family]
        fit = exponential_fit(rows["dim"], rows["required_width"]) if len(rows) else None
        if fit is not None:
            rate = fit[1]
            lines.append(f"* {_LABELS[family]}: the required r grows like e^({rate:.3f}·d) over "
                         f"the reached dimensions (×{math.exp(rate):.2f} per added dimension, "
                         f"doubling every {math.log(2) / rate:.1f} dimensions)."
                         if rate > 0 else
                         f"* {_LABELS[family]}: no growth fitted (rate {rate:.3f}).")
        missed = rows[~np.isfinite(rows["required_width"])]
        for _, miss in missed.iterrows():
            lines.append(f"* {_LABELS[family]}, d = {miss['dim']}: risk ≤ 1/50 not reached by "
                         f"r = {miss['max_width']} (risk {miss['risk_at_max_width']:.3g}).")
    return lines


def summary(frames: dict, scale: str) -> str:
    """What the figure shows and the separations measured in this run."""
    curves = _curves(frames)
    needs = _requirements(curves)
    gd = curves[curves["family"] == "gd"]
    beyond1, beyond2 = relu_nonlinear_share(KINK)
    lines = ["Target y = relu(w*·x + b*) with ‖w*‖ = d and b* = 0 (kink at the centre of the "
             f"bulk): {100 * beyond1:.1f} % of Var f* lies beyond Hermite degree 1 and "
             f"{100 * beyond2:.1f} % beyond degree 2, so reaching ‖f*‖²/50 needs the degree ≥ 4 "
             "content, which isotropic random features can only build from very many units.",
             "", "| d | r needed (no biases) | r needed (biases) "
             "| r·max_i abs(u_i)/‖w*‖ (no biases) "
             "| RF risk at largest r (no biases) | RF risk at r = 1 | GD risk, 1 neuron "
             "| GD risk, widest net |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [_table_row(curves, needs, gd, dim) for dim in sorted(curves["dim"].unique())]
    lines.append("")
    lines += _growth_lines(needs)
    if len(gd):
        lines.append(f"* Gradient descent reaches a normalized risk of at most "
                     f"{gd['mean'].max():.2g} at every d (one neuron: at most "
                     f"{gd[gd['width'] == 1]['mean'].max():.2g}).")
    lines += ["", f"Caveat: over d ≤ {int(curves['dim'].max())} the growth of the required r "
              "is also consistent with a "
              "high-degree polynomial (the threshold needs the degree-4 harmonics, whose number "
              "grows like d⁴); the exponential rate of the theorem is asymptotic in d and its "
              "constants are [M]. What the data do show is the separation: a fixed number of "
              "trained neurons (one) suffices at every d, while the number of random features "
              "needed multiplies with every doubling of d."]
    return "\n".join(lines)


STUDY = Study(name=NAME, description="Yehudai & Shamir 2019: random features need many units "
              "for one ReLU neuron, gradient descent needs one", sweeps=sweeps, figure=figure,
              summary=summary, points=points, scales=SCALES, run_cost=_run_cost)
