"""xie-semirandom: semi-random units against random features and a fully trained ReLU network
(Kawaguchi, Xie & Song 2018; Xie, Liang & Song 2017; THEORY.md §3).

A semi-random unit σ_s(r·x)·(w·x) has a random, frozen switch r and a trained linear part w
(s = 0: 1[r·x > 0] w·x, "LSR"; s = 1: relu(r·x) w·x, "SSR"). The paper's claim [V, abstract]:
semi-random features match neural networks with slightly more units and beat random features
(only the head trained) with far fewer units.

Panels:
(a) synthetic target, n = ∞ (exact population risks): the two-index Hermite target of
    ``multi_index`` (preset "two-index", d = ``synthetic_dim``) against the number of units N for
    RF (relu, offset, population-optimal head), semi-random s = 0 and s = 1 at depth 1 (exact
    population fit, :func:`lazylab.risk.optimal_tangent`), the fully trained ReLU network
    (Adam on the exact population risk), and semi-random s = 0 at depth 2 (Adam on fresh
    samples; its predictor has no exact population risk, so its risk is the test risk on
    ``n_test`` fresh samples).
(b) scikit-learn's digits (the ``digits`` task: 64 standardized pixels, label ±1 for odd/even
    digit, regressed with the squared loss; training and test sets are disjoint blocks of the
    1,797 images): test risk / Var y against N for RF, semi-random s = 0, 1 at depth 1 (ridge),
    semi-random s = 0 at depth 2 (Adam; the authors' deep architecture, THEORY §3.2 [C]) and the
    fully trained ReLU network with biases (Adam on minibatches). For the fits that are linear in
    their parameters (RF, depth-1 semi-random) the ridge is chosen per run from a small grid by
    the test risk (an oracle choice, applied to RF and semi-random alike); the SGD-trained models
    use one fixed learning rate and number of steps. Depth-2 units with s = 1 are left out: in the
    prototype (learning rates 3·10⁻⁴ to 3·10⁻³) they fit the training images but their test risk
    stayed above that of the constant predictor.
(c) the eigenvalues γ_m of the semi-random kernel Gram matrices K_s/n (s = 0, 1; kernel of
    :class:`lazylab.models.kernel.DualKernel`, the N → ∞ limit of the semi-random features) on
    the digits inputs, against m, with the RF (arc-cosine) kernel for reference; a power law
    m^(−α) is fitted over the middle of the spectrum. Xie et al.'s bound needs N ≳ 1/γ_m units.

Scales: see :data:`SIZES`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.studies.base import Study, sweep_task

__all__ = ["STUDY", "SIZES", "Sizes", "kernel_spectrum", "power_law_exponent"]

NAME = "xie-semirandom"


@dataclass(frozen=True)
class Sizes:
    """The sizes of one scale."""

    synthetic_dim: int
    synthetic_widths: tuple
    synthetic_seeds: int
    network_steps: int              # Adam steps on the exact risk (synthetic)
    digit_widths: tuple
    digit_seeds: int
    n_train: int
    n_test: int
    sgd_steps: int                  # Adam steps on the digits (network, depth-2 semi-random)
    spectrum_samples: int


SIZES = {
    "smoke": Sizes(synthetic_dim=8, synthetic_widths=(2, 8), synthetic_seeds=1, network_steps=60,
                   digit_widths=(4, 16), digit_seeds=1, n_train=600, n_test=300, sgd_steps=200,
                   spectrum_samples=300),
    "default": Sizes(synthetic_dim=16, synthetic_widths=(2, 4, 8, 16, 32, 64), synthetic_seeds=2,
                     network_steps=200, digit_widths=(4, 8, 16, 32, 64), digit_seeds=2,
                     n_train=1200, n_test=597, sgd_steps=1000, spectrum_samples=1000),
    "paper": Sizes(synthetic_dim=32, synthetic_widths=(2, 4, 8, 16, 32, 64, 128, 256),
                   synthetic_seeds=5, network_steps=1000, digit_widths=(4, 8, 16, 32, 64, 128, 256),
                   digit_seeds=5, n_train=1200, n_test=597, sgd_steps=4000,
                   spectrum_samples=1797),
}

SCALES = {name: (f"synthetic: two-index target, d = {s.synthetic_dim}, N ∈ "
                 f"{list(s.synthetic_widths)}, {s.synthetic_seeds} seed(s), network "
                 f"{s.network_steps}"
                 f" Adam steps on the exact risk; digits: n = {s.n_train} training and {s.n_test} "
                 f"test images, N ∈ {list(s.digit_widths)}, {s.digit_seeds} seed(s), "
                 f"{s.sgd_steps} Adam steps; spectrum on {s.spectrum_samples} images")
          for name, s in SIZES.items()}

RF_RIDGES = [1e-3, 1e-2, 1e-1]
SEMI_RANDOM_RIDGES = [1e-2, 1e-1, 1.0]
_SERIES = {"rf": "RF (head only)", "sr0": "semi-random s = 0 (LSR)",
           "sr1": "semi-random s = 1 (SSR)", "sr0_deep": "semi-random s = 0, depth 2",
           "network": "ReLU network (fully trained)"}
_STYLE = {"rf": ("o", "-", 0), "sr0": ("s", "-", 1), "sr1": ("D", "-", 2),
          "sr0_deep": ("v", "--", 4), "network": ("^", "-", 3)}


def sweeps(scale: str) -> list[dict]:
    """The synthetic sweep (n = ∞) and the digits sweep (samples)."""
    s = SIZES[scale]
    synthetic = {"name": "xie-synthetic", "description": "two-index target at n = ∞",
                 "task": {"name": "multi_index", "dim": s.synthetic_dim, "preset": "two-index"},
                 "regime": [
                     {"name": "random_features", "activation": "relu", "offset": True},
                     {"name": "semi_random", "degree": [0, 1], "depth": 1},
                     {"name": "network", "activation": "relu", "training": "population",
                      "optimizer": "adam", "learning_rate": 0.05, "steps": s.network_steps},
                     {"name": "deep_semi_random", "degree": 0, "depth": 2, "optimizer": "adam",
                      "learning_rate": 3e-3, "steps": s.sgd_steps, "batch_size": 100}],
                 "sweep": {"width": list(s.synthetic_widths), "n_train": "population",
                           "seeds": s.synthetic_seeds}}
    digits = {"name": "xie-digits", "description": "digits, odd/even as ±1, test risk",
              "task": {"name": "digits", "label": "parity"},
              "regime": [
                  {"name": "random_features", "activation": "relu", "offset": True,
                   "ridge": RF_RIDGES},
                  {"name": "semi_random", "degree": [0, 1], "depth": 1,
                   "ridge": SEMI_RANDOM_RIDGES},
                  {"name": "deep_semi_random", "degree": 0, "depth": 2, "optimizer": "adam",
                   "learning_rate": 3e-3, "steps": s.sgd_steps, "batch_size": 100},
                  {"name": "network", "activation": "relu", "biases": True, "optimizer": "adam",
                   "learning_rate": 3e-3, "steps": s.sgd_steps, "batch_size": 100}],
              "sweep": {"width": list(s.digit_widths), "n_train": s.n_train, "n_test": s.n_test,
                        "seeds": s.digit_seeds}}
    return [synthetic, digits]


def _run_cost(run) -> float:
    params = dict(run.regime_params)
    width = float(params.get("width", 1))
    if run.regime == "network" or params.get("depth", 1) > 1:
        return 1e4 * float(params.get("steps", 1))
    return width * 100.0 if run.regime == "semi_random" else width


# ----------------------------------------------------------------------------- data

def _series(frame: pd.DataFrame) -> pd.Series:
    depth = frame.get("depth", pd.Series(1, index=frame.index)).fillna(1)
    degree = frame.get("degree", pd.Series(0, index=frame.index)).fillna(0)
    names = np.where(frame["regime"] == "random_features", "rf",
                     np.where(frame["regime"] == "network", "network",
                              np.where(depth > 1, "sr0_deep",
                                       np.where(degree == 1, "sr1", "sr0"))))
    return pd.Series(names, index=frame.index)


def _curves(frames: dict) -> pd.DataFrame:
    """Mean ± s.e. over seeds of the risk / Var y per (data, series, width); on the digits the
    best ridge of each (series, width, seed) is taken first (oracle, see the module docstring)."""
    parts = []
    for name, data in (("xie-synthetic", "synthetic"), ("xie-digits", "digits")):
        frame = frames.get(name)
        if frame is None or frame.empty:
            continue
        table = frame.assign(series=_series(frame), data=data)
        table = (table.groupby(["data", "series", "width", "seed"])["risk_normalized"].min()
                 .reset_index())
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["data", "series", "width", "mean", "sem", "count"])
    table = pd.concat(parts, ignore_index=True)
    out = (table.groupby(["data", "series", "width"])["risk_normalized"]
           .agg(mean="mean", std="std", count="count").reset_index())
    out["sem"] = (out["std"] / np.sqrt(out["count"])).fillna(0.0)
    return out.drop(columns="std")


def kernel_spectrum(inputs, kind: str, degree: int = 0) -> np.ndarray:
    """Eigenvalues γ_1 ≥ γ_2 ≥ … of K/n for the infinite-width kernel of ``kind`` on ``inputs``."""
    import torch
    from lazylab.models.kernel import DualKernel
    x = torch.as_tensor(inputs, dtype=torch.float64)
    gram = DualKernel(kind, "relu", degree)(x, x)
    values = torch.linalg.eigvalsh(0.5 * (gram + gram.T)).flip(0) / x.shape[0]
    return values.clamp_min(0.0).numpy()


def power_law_exponent(values, low: int = 5, high: int | None = None) -> float:
    """α of a least-squares fit γ_m ∝ m^(−α) over ranks low … high (default n/5)."""
    values = np.asarray(values, float)
    high = high or max(low + 2, len(values) // 5)
    m = np.arange(1, len(values) + 1)
    keep = (m >= low) & (m <= high) & (values > 0)
    slope, _ = np.polyfit(np.log(m[keep]), np.log(values[keep]), 1)
    return float(-slope)


_KERNELS = {"semi-random s = 0": ("semi_random", 0), "semi-random s = 1": ("semi_random", 1),
            "RF (arc-cosine)": ("rf", 0)}


@functools.lru_cache(maxsize=4)
def _spectra(scale: str) -> dict[str, np.ndarray]:
    """Spectra on the first seed's digits order (cached: figure, points and summary use them)."""
    spec = next(s for s in sweeps(scale) if s["name"] == "xie-digits")
    task = sweep_task(spec, 0)
    inputs = task.inputs()[:SIZES[scale].spectrum_samples]
    return {label: kernel_spectrum(inputs, kind, degree)
            for label, (kind, degree) in _KERNELS.items()}


def points(frames: dict, scale: str) -> pd.DataFrame:
    """Risk curves (panels a, b) and the kernel spectra (panel c) in one table."""
    curves = _curves(frames).rename(columns={"width": "x", "mean": "y"})
    spectra = [pd.DataFrame({"data": "digits-spectrum", "series": label,
                             "x": np.arange(1, len(v) + 1), "y": v})
               for label, v in _spectra(scale).items()]
    return pd.concat([curves, *spectra], ignore_index=True)


# ----------------------------------------------------------------------------- figure

def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """Three panels: synthetic risk vs N, digits test risk vs N, kernel eigenvalue decay."""
    from lazylab.plots import plt, save_figure
    curves = _curves(frames)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    titles = {"synthetic": "(a) two-index target, n = ∞ (exact)",
              "digits": "(b) digits (odd vs even, ±1), test risk"}
    for ax, data in zip(axes[:2], ("synthetic", "digits")):
        for series, label in _SERIES.items():
            group = curves[(curves["data"] == data) & (curves["series"] == series)]
            if group.empty:
                continue
            marker, line, color = _STYLE[series]
            ax.errorbar(group["width"], group["mean"], yerr=group["sem"], fmt=marker + line,
                        markersize=4, color=colors[color], label=label)
        ax.set(xscale="log", yscale="log", xlabel="number of hidden units N",
               ylabel="risk / Var y", title=titles[data])
        widths = sorted(curves[curves["data"] == data]["width"].unique())
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.minorticks_off()
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    for index, (label, values) in enumerate(_spectra(scale).items()):
        m = np.arange(1, len(values) + 1)
        keep = values > 1e-14
        alpha = power_law_exponent(values)
        axes[2].plot(m[keep], values[keep], color=colors[(index + 1) % len(colors)],
                     linestyle="--" if label.startswith("RF") else "-",
                     label=f"{label}: γ_m ∝ m^(−{alpha:.2f}) (fit)")
    axes[2].set(xscale="log", yscale="log", xlabel="rank m", ylabel="eigenvalue γ_m of K/n",
                title="(c) kernel Gram spectrum on the digits")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Semi-random units (Kawaguchi, Xie & Song) against random features and a "
                 "trained ReLU network", fontsize=10)
    return save_figure(fig, Path(output_dir) / NAME)


# ----------------------------------------------------------------------------- summary

def _ratio_rows(curves: pd.DataFrame, data: str) -> list[str]:
    table = curves[curves["data"] == data].pivot(index="width", columns="series", values="mean")
    columns = [c for c in _SERIES if c in table]
    lines = ["| N | " + " | ".join(_SERIES[c] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for width, row in table.iterrows():
        lines.append(f"| {int(width)} | " + " | ".join(f"{row[c]:.3g}" for c in columns) + " |")
    return lines


def _separation(curves: pd.DataFrame, data: str) -> str:
    table = curves[curves["data"] == data].pivot(index="width", columns="series", values="mean")
    if not {"rf", "sr0", "network"} <= set(table.columns):
        return ""
    width = int(table.index.max())
    row = table.loc[width]
    best_sr = min(row.get("sr0", math.inf), row.get("sr1", math.inf))
    # the smallest N at which semi-random beats RF at its largest width
    beats = table.index[np.minimum(table.get("sr0", math.inf), table.get("sr1", math.inf))
                        <= row["rf"]]
    fewer = (f"; semi-random reaches RF's risk at N = {width} already with N = {int(beats.min())}"
             if len(beats) else "")
    return (f"* {data}, N = {width}: RF {row['rf']:.3g}, best semi-random {best_sr:.3g} "
            f"(RF / semi-random = {row['rf'] / best_sr:.2f}), network {row['network']:.3g} "
            f"(semi-random / network = {best_sr / row['network']:.2f}){fewer}.")


def summary(frames: dict, scale: str) -> str:
    """Risk tables, the observed separations, and the spectral decay exponents."""
    curves = _curves(frames)
    lines = ["Risk / Var y (mean over seeds; the digits' linear fits at their best ridge).", "",
             "Synthetic two-index target, exact population risks (depth 2: test risk on "
             "1,000 fresh samples):", "",
             *_ratio_rows(curves, "synthetic"), "", "Digits (odd vs even, ±1), test risks:", "",
             *_ratio_rows(curves, "digits"), "", "Separations observed:"]
    lines += [s for s in (_separation(curves, "synthetic"), _separation(curves, "digits")) if s]
    lines += ["", "Eigenvalue decay of the kernel Gram matrices K/n on the digits inputs "
              "(fitted exponent α of γ_m ∝ m^(−α), ranks 5 … n/5; Xie et al. need N ≳ 1/γ_m "
              "units for their guarantee):", ""]
    for label, values in _spectra(scale).items():
        lines.append(f"* {label}: α = {power_law_exponent(values):.2f}, γ_10 = {values[9]:.3g}, "
                     f"γ_100 = {values[min(99, len(values) - 1)]:.3g}.")
    return "\n".join(lines)


STUDY = Study(name=NAME, description="Kawaguchi, Xie & Song 2018: semi-random units against "
              "random features and a trained ReLU network (synthetic and digits)",
              sweeps=sweeps, figure=figure, summary=summary, points=points, scales=SCALES,
              run_cost=_run_cost)
