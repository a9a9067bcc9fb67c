"""xie-semirandom: semi-random units against random features and a fully trained ReLU network
(Kawaguchi, Xie & Song 2018; Xie, Liang & Song 2017; THEORY.md §3).

A semi-random unit σ_s(r·x)·(w·x) has a random, frozen switch r and a trained linear part w
(s = 0: 1[r·x > 0] w·x, "LSR"; s = 1: relu(r·x) w·x, "SSR"). The paper's claim [V, abstract]:
semi-random features match neural networks with slightly more units and beat random features
(only the head trained) with far fewer units.

The measured quantity is the paper's: the number of semi-random units N' that match a trained
ReLU network of N units (their "slightly more units"), read off the mean risk curves, and the
same in trained parameters (an RF unit trains 1 weight, a semi-random unit d, a network unit
d + 2). Every dot has ≥ 3 seeds (± s.e.); failed runs are counted, never averaged.

Panels:
(a) synthetic two-index Hermite target (``multi_index`` preset "two-index", d =
    ``synthetic_dim``), n = ∞, exact population risks against N: RF (relu, offset,
    population-optimal head) and semi-random s = 0, 1 at depth 1 (exact population least
    squares, no ridge is needed at n = ∞), and the fully trained ReLU network (Adam on the exact
    population risk, run to tolerance 1e-5 of the convergence certificate; hollow if not met).
(b) scikit-learn's digits (``digits``: 64 standardized pixels, ±1 for odd/even, squared loss):
    disjoint training, validation and test blocks of the 1,797 images. RF and depth-1 semi-random
    choose their ridge on the validation block (default grid scale·10^k, k = −8 … 2); the network
    and depth-2 semi-random s = 0 and s = 1 (:class:`lazylab.models.DeepSemiRandom`, the authors'
    deep architecture, THEORY §3.2 [C]) choose their learning rate there; every grid grows by up to
    2 values past an end its choice sits at (``extend``, :mod:`lazylab.experiments.grid_extension`).
    Both are trained by Adam on minibatches of 100 to the tolerance ``DIGITS_TOL`` of the full-batch
    criterion (:mod:`lazylab.solvers.convergence`: the full training loss L below tol · Var y, or
    changing by less than tol over each of 3 checks, each spanning the same η·steps whatever the
    rate η, ``CRITERION_RATE``), the step count being a budget; a run that does not meet it is drawn
    hollow and counted. Depth 2 halves its rate whenever the full-batch loss makes no new low at a
    check (``schedule = "plateau"``, at most 8 times,
    :class:`lazylab.solvers.convergence.PlateauDecay`): at a constant rate its s = 1 fits jitter by
    5–8 % between checks after the whole budget at every rate of the grid; the criterion is
    unchanged. The summary gives the test classification error (%) the platform stores with every
    digits run (metric ``classification_error_percent``) beside the risk, and reads the digits
    "units to match" on it (the papers' measure; the interpolating network's squared test risk is
    heavy-tailed).
(c) the digits test risk against the number of trained parameters.
(d) the eigenvalues γ_m of K/m for the semi-random kernels (s = 0, 1;
    :class:`lazylab.models.kernel.DualKernel`, the N → ∞ limit) and the RF kernel on the first
    seed's m training images projected on the unit sphere (the inputs of the kernel's
    derivation, THEORY §3.1), against the width N* from which the depth-1 least-squares fit
    interpolates those images: Xie, Liang & Song guarantee small training error for N ≳ 1/γ_m.

Scales: see :data:`SIZES`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


from lazylab.plots import draw_points, plt, save_figure
from lazylab.experiments.runs import task_generator
from lazylab.studies._aggregate import seed_statistics
from lazylab.studies._xie_measures import (certificate_rows, claim_rows, depth_rows,
                                           interpolation_width, kernel_spectrum, match_curves,
                                           match_rows, match_table, risk_rows, trained_parameters,
                                           unit_sphere)
from lazylab.studies.base import Study
from lazylab.tasks import TASKS, Dataset
from lazylab.theory.spectra import power_law_exponent

__all__ = ["STUDY", "SIZES", "Sizes", "kernel_spectrum"]

NAME = "xie-semirandom"


@dataclass(frozen=True)
class Sizes:
    """The sizes of one scale (``*_widths``: trained networks and depth 2; ``*_unit_widths``:
    RF and depth-1 semi-random, wider so that the units needed to match a network are found)."""

    synthetic_dim: int
    synthetic_widths: tuple
    synthetic_unit_widths: tuple
    synthetic_max_steps: int        # budget of the population Adam run to tolerance
    digit_widths: tuple
    digit_unit_widths: tuple
    seeds: int
    n_train: int
    n_validation: int
    n_test: int
    digit_max_steps: int            # budget of the digits network's and depth 2's runs
    interpolation_widths: tuple = (4, 8, 16, 32, 64)


SIZES = {
    "smoke": Sizes(synthetic_dim=8, synthetic_widths=(2, 8), synthetic_unit_widths=(2, 8, 32),
                   synthetic_max_steps=300, digit_widths=(4, 16), digit_unit_widths=(4, 16, 64),
                   seeds=3, n_train=500, n_validation=300, n_test=300,
                   digit_max_steps=150,
                   interpolation_widths=(4, 8, 16)),
    "default": Sizes(synthetic_dim=16, synthetic_widths=(2, 4, 8, 16),
                     synthetic_unit_widths=(2, 4, 8, 16, 32, 64, 128), synthetic_max_steps=3000,
                     digit_widths=(4, 16, 64), digit_unit_widths=(4, 8, 16, 32, 64, 128, 256),
                     seeds=3, n_train=1000, n_validation=300, n_test=497,
                     digit_max_steps=12000),
    "paper": Sizes(synthetic_dim=32, synthetic_widths=(2, 4, 8, 16, 32, 64),
                   synthetic_unit_widths=(2, 4, 8, 16, 32, 64, 128, 256, 512),
                   synthetic_max_steps=20000, digit_widths=(4, 8, 16, 32, 64, 128),
                   digit_unit_widths=(4, 8, 16, 32, 64, 128, 256, 512, 1024), seeds=5,
                   n_train=1000, n_validation=300, n_test=497,
                   digit_max_steps=20000,
                   interpolation_widths=(4, 8, 16, 32, 64, 128)),
}

SCALES = {name: (f"synthetic: two-index target, d = {s.synthetic_dim}, network N ∈ "
                 f"{list(s.synthetic_widths)} (population Adam to tolerance 1e-5, ≤ "
                 f"{s.synthetic_max_steps} steps), RF / semi-random N ∈ "
                 f"{list(s.synthetic_unit_widths)}; digits: {s.n_train} training, "
                 f"{s.n_validation} validation, {s.n_test} test images, network / depth 2 N ∈ "
                 f"{list(s.digit_widths)}, RF / semi-random N ∈ {list(s.digit_unit_widths)}; "
                 f"{s.seeds} seeds")
          for name, s in SIZES.items()}

DIGITS_TOL = 1e-2
"""Tolerance of the digits network's and depth 2's full-batch criterion: L ≤ 1 % of Var y, or
L changing by < 1 % over each of 3 checks (Adam's minibatch noise keeps a tighter change
criterion from ever being met at these rates)."""
LEARNING_RATES = {"grid": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "select": "validation", "extend": 2}
CRITERION_RATE = 1e-2
"""η < 1e-2 is checked every ⌈100·1e-2/η⌉ steps, a faster rate every 100 (``criterion_rate``,
:func:`lazylab.solvers.convergence.criterion_window`): no fit is certified over less than
η·steps = 1. Every 100 steps, a slow rate passed "changes < 1 %" while still descending and
validation preferred the slowest rate (early stopping by the certificate). 3e-4 is left out:
checked every 3,334 steps it can meet the tolerance within the budget only by interpolating."""
RIDGES = {"select": "validation", "extend": 2}   # default grid: scale · 10^k, k = −8 … 2
_SERIES = {"rf": "RF (head only)", "sr0": "semi-random s = 0 (LSR)",
           "sr1": "semi-random s = 1 (SSR)", "sr0_deep": "semi-random s = 0, depth 2",
           "sr1_deep": "semi-random s = 1, depth 2", "network": "ReLU network (fully trained)"}
_STYLE = {"rf": ("o", "-", 0), "sr0": ("s", "-", 1), "sr1": ("D", "-", 2),
          "sr0_deep": ("v", "--", 1), "sr1_deep": ("<", "--", 2), "network": ("^", "-", 3)}
_METRICS = ["risk_normalized", "test_risk", "train_risk", "classification_error_percent",
            "converged", "steps", "criterion", "halvings",
            "selected_ridge", "selected_learning_rate", "selection_at_edge", "selection_extended"]


def sweeps(scale: str) -> list[dict]:
    """The synthetic sweep (n = ∞, exact risks) and the digits sweep (validated choices)."""
    s = SIZES[scale]
    synthetic = {"name": "xie-synthetic", "description": "two-index target at n = ∞",
                 "task": {"name": "multi_index", "dim": s.synthetic_dim, "preset": "two-index"},
                 "regime": [
                     {"name": "random_features", "activation": "relu", "offset": True,
                      "width": list(s.synthetic_unit_widths)},
                     {"name": "semi_random", "degree": [0, 1], "depth": 1,
                      "width": list(s.synthetic_unit_widths)},
                     {"name": "network", "activation": "relu", "training": "population",
                      "optimizer": "adam", "learning_rate": 0.05, "tol": 1e-5,
                      "max_steps": s.synthetic_max_steps, "width": list(s.synthetic_widths)}],
                 "sweep": {"n_train": "population", "seeds": s.seeds,
                           "metrics": ["risk_normalized", "converged", "steps"]}}
    digits = {"name": "xie-digits", "description": "digits, odd/even as ±1, test risk",
              "task": {"name": "digits", "label": "parity"},
              "regime": [
                  {"name": "random_features", "activation": "relu", "offset": True,
                   "ridge": RIDGES, "width": list(s.digit_unit_widths)},
                  {"name": "semi_random", "degree": [0, 1], "depth": 1, "ridge": RIDGES,
                   "width": list(s.digit_unit_widths)},
                  {"name": "deep_semi_random", "degree": [0, 1], "depth": 2,
                   "optimizer": "adam", "learning_rate": LEARNING_RATES, "tol": DIGITS_TOL,
                   "criterion_rate": CRITERION_RATE,
                   "max_steps": s.digit_max_steps, "batch_size": 100, "schedule": "plateau",
                   "width": list(s.digit_widths)},
                  {"name": "network", "activation": "relu", "biases": True, "optimizer": "adam",
                   "learning_rate": LEARNING_RATES, "tol": DIGITS_TOL,
                   "criterion_rate": CRITERION_RATE,
                   "max_steps": s.digit_max_steps, "batch_size": 100,
                   "width": list(s.digit_widths)}],
              "sweep": {"n_train": s.n_train, "n_test": s.n_test,
                        "validation_size": s.n_validation, "seeds": s.seeds,
                        "metrics": _METRICS}}
    return [synthetic, digits]


def _run_cost(run) -> float:
    params = dict(run.regime_params)
    width = float(params.get("width", 1))
    if run.regime in ("network", "deep_semi_random"):
        return 1e4 * width
    return width * 100.0 if run.regime == "semi_random" else width


# ----------------------------------------------------------------------------- data

def _series(frame: pd.DataFrame) -> pd.Series:
    depth = frame.get("depth", pd.Series(1, index=frame.index)).fillna(1)
    degree = frame.get("degree", pd.Series(0, index=frame.index)).fillna(0)
    deep = np.where(degree == 1, "sr1_deep", "sr0_deep")
    names = np.where(frame["regime"] == "random_features", "rf",
                     np.where(frame["regime"] == "network", "network",
                              np.where(depth > 1, deep, np.where(degree == 1, "sr1", "sr0"))))
    return pd.Series(names, index=frame.index)


_DATA = {"xie-synthetic": "synthetic", "xie-digits": "digits"}


def _runs(frames: dict) -> pd.DataFrame:
    """Every run with its ``series`` and ``data`` (failed or diverged runs are not averaged:
    the summary counts them)."""
    parts = [frame.assign(series=_series(frame), data=_DATA[name])
             for name, frame in frames.items() if name in _DATA and not frame.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _curves(frames: dict) -> pd.DataFrame:
    """Mean ± s.e. over seeds of risk / Var y per (data, series, width); ``unconverged`` counts
    the runs of a dot that did not meet their tolerance."""
    return seed_statistics(_runs(frames), ["data", "series", "width"])


def _classification(frames: dict) -> pd.DataFrame:
    """Digits runs with their stored test classification error (%), ``error_percent``."""
    frame = frames.get("xie-digits")
    if frame is None or frame.empty or "classification_error_percent" not in frame:
        return pd.DataFrame()
    runs = _runs({"xie-digits": frame})
    return runs.assign(error_percent=pd.to_numeric(runs["classification_error_percent"],
                                                   errors="coerce"))


@functools.lru_cache(maxsize=4)
def _spectra(scale: str) -> dict:
    """On the first seed's training images projected on the unit sphere (the inputs of the
    kernel's derivation): the spectra of K/m (m = n_train), and for s = 0, 1 the smallest width
    whose least-squares semi-random fit interpolates them (training risk ≤ 1e-6 Var y)."""
    sizes = SIZES[scale]
    spec = next(s for s in sweeps(scale) if s["name"] == "xie-digits")
    params = {k: v for k, v in spec["task"].items() if k != "name"}
    train = TASKS["digits"](rng=task_generator("digits", params, 0), **params).sample(
        sizes.n_train)
    sphere = Dataset(unit_sphere(train.x), train.y)
    # × d: DualKernel draws w ~ N(0, I/d); the derivation's kernel (THEORY §3.1, w ~ N(0, I)) is
    # d × it, k(x, y) = ⟨x, y⟩(π − θ)/(2π) for s = 0 on the unit sphere
    spectra = {label: train.dim * kernel_spectrum(sphere.x, kind, degree)
               for label, (kind, degree) in _KERNELS.items()}
    widths = sizes.interpolation_widths
    interpolation = {degree: interpolation_width(sphere, widths, degree=degree, seed=0)
                     for degree in (0, 1)}
    return {"spectra": spectra, "interpolation": interpolation, "widths": widths,
            "samples": sizes.n_train, "dim": train.dim}


_KERNELS = {"semi-random s = 0": ("semi_random", 0), "semi-random s = 1": ("semi_random", 1),
            "RF (arc-cosine)": ("rf", 0)}


def points(frames: dict, scale: str) -> pd.DataFrame:
    """Risk curves (synthetic, digits), digits classification error (%), spectra."""
    curves = _curves(frames).rename(columns={"width": "x", "mean": "y"})
    errors = _classification(frames)
    parts = [curves]
    if not errors.empty:
        table = seed_statistics(errors, ["series", "width"], "error_percent")
        parts.append(table.rename(columns={"width": "x", "mean": "y"}).assign(
            data="digits-error-percent"))
    parts += [pd.DataFrame({"data": "digits-spectrum-unit-sphere", "series": label,
                            "x": np.arange(1, len(v) + 1), "y": v})
              for label, v in _spectra(scale)["spectra"].items()]
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- figure

def _risk_panel(ax, curves: pd.DataFrame, data: str, dim: int, parameters: bool) -> None:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for series, label in _SERIES.items():
        group = curves[(curves["data"] == data) & (curves["series"] == series)]
        if group.empty:
            continue
        marker, line, color = _STYLE[series]
        name = "network_nobias" if (series == "network" and data == "synthetic") else series
        x = ([trained_parameters(name, int(w), dim) for w in group["width"]] if parameters
             else group["width"])
        draw_points(ax, x, group["mean"], group["sem"],
                    unconverged=group.get("unconverged"), marker=marker, linestyle=line,
                    color=colors[color], label=label)
    ax.set(xscale="log", yscale="log", ylabel="risk / Var y",
           xlabel="trained parameters" if parameters else "number of hidden units N")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")


def _spectrum_panel(ax, scale: str) -> None:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    info = _spectra(scale)
    for index, (label, values) in enumerate(info["spectra"].items()):
        m = np.arange(1, len(values) + 1)
        keep = values > 1e-14
        ax.plot(m[keep], values[keep], color=colors[(index + 1) % len(colors)],
                linestyle="--" if label.startswith("RF") else "-",
                label=f"{label}: α = {power_law_exponent(values):.2f}")
    threshold = info["interpolation"][0][0]
    if math.isfinite(threshold):
        ax.axhline(1.0 / threshold, color="black", linewidth=0.8, linestyle=":",
                   label=f"1/N* (s = 0 interpolates from N* = {threshold:.0f})")
    ax.set(xscale="log", yscale="log", xlabel="rank m", ylabel="eigenvalue γ_m of K/m",
           title=f"(d) kernel spectrum (d·K/m), {info['samples']} digits on the unit sphere")


def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """Four panels: synthetic risk vs N, digits test risk vs N, digits risk vs trained
    parameters, kernel spectrum on unit-sphere digits."""
    curves, sizes = _curves(frames), SIZES[scale]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), layout="constrained")
    _risk_panel(axes[0, 0], curves, "synthetic", sizes.synthetic_dim, False)
    axes[0, 0].set_title("(a) two-index target, n = ∞ (exact risk)")
    _risk_panel(axes[0, 1], curves, "digits", 64, False)
    axes[0, 1].set_title("(b) digits (odd vs even, ±1), test risk, validated choices")
    _risk_panel(axes[1, 0], curves, "digits", 64, True)
    axes[1, 0].set_title("(c) digits test risk against trained parameters")
    _spectrum_panel(axes[1, 1], scale)
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(f"Semi-random units (Kawaguchi, Xie & Song) against random features and a "
                 f"trained ReLU network; {sizes.seeds} seeds, ± s.e.; hollow: unconverged",
                 fontsize=10)
    return save_figure(fig, Path(output_dir) / NAME)


# ----------------------------------------------------------------------------- summary

def _bookkeeping(frames: dict, scale: str) -> list[str]:
    runs = _runs(frames)
    if runs.empty:
        return []
    status = runs["status"].value_counts().to_dict() if "status" in runs else {"done": len(runs)}
    unconverged = int((pd.to_numeric(runs.get("converged"), errors="coerce") == 0).sum())
    edge = runs[pd.to_numeric(runs.get("selection_at_edge"), errors="coerce") == 1]
    where = ", ".join(sorted({f"{r.data} {r.series} N = {int(r.width)}"
                              for r in edge.itertuples()})) or "none"
    seeds, grown = runs.groupby(["data", "series", "width"])["seed"].nunique(), pd.to_numeric(
        runs.get("selection_extended", pd.Series(0.0)), errors="coerce").fillna(0)
    return [f"Runs: {status}; seeds per dot: {seeds.min()}–{seeds.max()}; unconverged runs: "
            f"{unconverged} (marked [k unconv.] in the tables, hollow in the figure); grid values "
            f"added past an edge: {int(grown.sum())} in {int((grown > 0).sum())} runs; validated "
            f"choices still on the edge of their grid: {len(edge)} ({where}). Ridges (RF, "
            "semi-random) and learning rates (network, depth 2) are chosen on a 300-image "
            "validation block, disjoint from the training and test blocks; the test set is never "
            "used to choose.",
            "", *certificate_rows(runs, DIGITS_TOL, SIZES[scale].digit_max_steps, _SERIES,
                                  CRITERION_RATE), ""]


def _spectrum_rows(scale: str) -> list[str]:
    info = _spectra(scale)
    m, dim = info["samples"], info["dim"]
    lines = [f"Kernel spectra on the first seed's {m} training images on the unit sphere "
             f"(γ_m of K/m, fitted α of γ_m ∝ m^(−α) over ranks 5 … m/5):", ""]
    for label, values in info["spectra"].items():
        lines.append(f"* {label}: α = {power_law_exponent(values):.2f}, γ_10 = "
                     f"{values[9]:.3g}, γ_m = {values[-1]:.3g} (1/γ_m = {1 / values[-1]:.3g}).")
    for degree, (width, risks) in info["interpolation"].items():
        gamma = info["spectra"][f"semi-random s = {degree}"][-1]
        shown = ", ".join(f"{w}: {r:.2g}" for w, r in zip(info["widths"], risks))
        lines.append(f"* s = {degree}: the least-squares fit interpolates (training risk ≤ "
                     f"1e-6 Var y) from N* = {width:.0f} (m/d = {m / dim:.3g} is the parameter "
                     f"count N d = m); the guarantee asks N ≳ 1/γ_m = {1 / gamma:.3g}, "
                     f"{1 / gamma / width:.3g}× more. Training risk / Var y by N: {shown}.")
    return lines


def summary(frames: dict, scale: str) -> str:
    """Claims with verdicts and numbers, risk tables, units-to-match tables, spectra."""
    curves, sizes = _curves(frames), SIZES[scale]
    errors = _classification(frames)
    measured = match_curves(curves, errors)
    matches = {"synthetic": match_table(measured, "synthetic", sizes.synthetic_dim),
               "digits": match_table(measured, "digits", 64)}
    lines = ["Risk / Var y, mean ± s.e. over seeds.", "", *_bookkeeping(frames, scale),
             "## Claims", "", *claim_rows(measured, matches), *depth_rows(curves), "",
             "## Units needed to match the trained network", "",
             "Units N' (as a multiple of the network's N) and trained parameters (multiple "
             "of the network's) at which each model's mean curve reaches the network's "
             "(synthetic: risk; digits: test classification error %, see below):", "",
             "Synthetic:", "", *match_rows(matches["synthetic"]), "", "Digits:", "",
             *match_rows(matches["digits"], "error %"), "",
             "## Risks", "", "Synthetic two-index target, exact population risks:", "",
             *risk_rows(curves, "synthetic", _SERIES), "",
             "Digits test risk (test classification error %, stored with each run):",
             "", *risk_rows(curves, "digits", _SERIES, errors), "", *_spectrum_rows(scale)]
    return "\n".join(lines)


STUDY = Study(name=NAME, description="Kawaguchi, Xie & Song 2018: semi-random units against "
              "random features and a trained ReLU network (synthetic and digits)",
              sweeps=sweeps, figure=figure, summary=summary, points=points, scales=SCALES,
              run_cost=_run_cost)
