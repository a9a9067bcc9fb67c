"""lazy-rich: one knob from the neural tangent to the network (issue 13, part 1).

Chizat, Oyallon & Bach 2019 ("On lazy training in differentiable programming", NeurIPS, §1–2):
the model f_α = α(f_θ − f_θ₀) trained on the loss (1/α²)·R(f_α) follows its linearization at
θ₀ as α → ∞ (lazy: the neural tangent) and moves its features as α → 0 (rich). Here on
Ghorbani et al.'s quadratic target (task ``quadratic``, ``matrix = "exp-diagonal"``:
y = xᵀBx − Tr B, B = diag(γ)/√d, γ_i ~ Exp(1); each seed draws its own B) with the network of
their Theorem 3, f_θ(x) = Σ_i (w_i·x)² + c (σ = u², head fixed at 1, first layer and offset
trained; ``Network(laziness=α, train="first", head_init="ones")``), w_i ~ N(0, s_w² I/d) at
initialization, at N < d so that the two ends differ by the gap of Theorems 2–3:

* α → ∞: the risk of the neural-tangent model at the same width, exact at n = ∞
  (``neural_tangent`` regime, σ = u², preconditioned CG; its own draw of W₀ per seed) and
  Theorem 2 (:func:`lazylab.theory.neural_tangent_risk`, the d → ∞ value) as lines;
* α → 0: Theorem 3, inf R = 2Σ_{i>N} λ_i(B)² (:func:`lazylab.theory.network_risk` on each
  seed's B) as a line.

Training: gradient descent on the exact population risk (closed form for σ = u²), heavy-ball
momentum, run to the relative-risk-change tolerance ``tol`` within ``max_steps`` (the
certificate's ``converged``; hollow dots average an unconverged run). The learning rate
depends on α and N: the curvature of the output-mean direction is 8 Tr M + 2 with
M = WᵀW (lazylab.models.network's docstring), and Tr M ≈ Tr M₀ + Tr B/α at the end of training
(the learned part F = α(M − M₀) ≈ B's top-N part), with Tr M₀ ≈ s_w² N and E Tr B = √d, so
η(α, N) = c / (8(s_w² N + √d/α) + 2). Backtracking halves η if it still overshoots (counted).

Panels: (a) population risk / ‖f*‖² against α per (d, N) with the NN and NT lines; (b) the
relative first-layer change ‖W − W₀‖_F/‖W₀‖_F against α with the lazy-training rate 1/α;
(c) the transition collapsed, (R − R_NN)/(R_NT − R_NN) against α, with α* marked, the α where
R is halfway between the NN and NT values (linear interpolation of R in log α between the two
grid points around the crossing; per seed, with that seed's Theorem 3 value on its B and its
exact NT risk). Second figure (:mod:`lazylab.studies._lazy_rich_measures`): (d) the alignment of
W with B's top-N eigenspace, (e) the exact change of the tangent kernel, both against α, and
(f) incremental learning from a small initialization against the linearized theory.
Scales: :data:`SIZES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.plots import draw_points, plt, save_figure
from lazylab.studies import _lazy_rich_relu as relu
from lazylab.studies._aggregate import seed_statistics, unconverged_text
from lazylab.studies._lazy_rich_measures import (incremental_scale, incremental_sweeps,
                                                 measure_figure, measure_lines, measure_points,
                                                 seed_matrices, slope)
from lazylab.studies.base import Study, sweep_seeds, sweep_task
from lazylab.theory.ghorbani_quadratic import network_risk, neural_tangent_risk

__all__ = ["STUDY", "SIZES", "Sizes", "learning_rate", "transition_scale", "sweeps"]

NAME = "lazy-rich"


@dataclass(frozen=True)
class Sizes:
    """One scale: the (d, N) cases, the α grid, seeds and the descent's settings."""

    cases: tuple                 # ((d, N), ...), N < d
    alphas: tuple                # laziness grid α
    seeds: int
    weight_scale: float = 0.3    # s_w: w_i ~ N(0, s_w² I/d)
    rate: float = 1.5            # c in η(α, N)
    momentum: float = 0.95
    tol: float = 1e-5
    max_steps: int = 100_000


def _log_grid(low: int, high: int, per_decade: int) -> tuple:
    count = (high - low) * per_decade + 1
    return tuple(float(f"{a:.4g}") for a in np.logspace(low, high, count))


SIZES = {
    "smoke": Sizes(cases=((30, 6),), alphas=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), seeds=2,
                   max_steps=40_000),
    "default": Sizes(cases=((100, 10), (100, 20), (100, 40), (50, 10)),
                     alphas=_log_grid(-2, 3, 2), seeds=3),
    "paper": Sizes(cases=((200, 20), (200, 40), (200, 80), (100, 20), (400, 40)),
                   alphas=_log_grid(-2, 3, 4), seeds=5, tol=1e-6, max_steps=400_000),
}

SCALES = {name: (f"quadratic target (exp-diagonal B), (d, N) ∈ {list(s.cases)}, α ∈ "
                 f"{list(s.alphas)}, {s.seeds} seeds, s_w = {s.weight_scale}, momentum "
                 f"{s.momentum}, tol {s.tol:g}, at most {s.max_steps} steps; "
                 + incremental_scale(name))
          for name, s in SIZES.items()}


def learning_rate(alpha: float, dim: int, width: int, sizes: Sizes) -> float:
    """η(α, N) = c / (8(s_w² N + √d/α) + 2) (module docstring)."""
    curvature = 8.0 * (sizes.weight_scale ** 2 * width + math.sqrt(dim) / alpha) + 2.0
    return float(f"{sizes.rate / curvature:.6g}")


def _sweep_name(dim: int, width: int) -> str:
    return f"{NAME}-d{dim}-N{width}"


def _network(alpha: float, dim: int, width: int, sizes: Sizes) -> dict:
    return {"name": "network", "activation": "quadratic", "train": "first", "head_init": "ones",
            "width": width, "weight_scale": sizes.weight_scale, "training": "population",
            "laziness": alpha, "learning_rate": learning_rate(alpha, dim, width, sizes),
            "momentum": sizes.momentum, "tol": sizes.tol, "max_steps": sizes.max_steps}


def sweeps(scale: str) -> list[dict]:
    """The knob sweeps, the incremental-learning sweep (_lazy_rich_measures), then the ReLU
    part's (:mod:`lazylab.studies._lazy_rich_relu`)."""
    return [*_knob_sweeps(scale), *incremental_sweeps(scale), *relu.sweeps(scale)]


def _knob_sweeps(scale: str) -> list[dict]:
    """One spec per (d, N): the network at every α, and the exact NT at that width."""
    sizes = SIZES[scale]
    return [{"name": _sweep_name(d, n),
             "description": f"risk against the laziness α at d = {d}, N = {n}, n = ∞",
             "task": {"name": "quadratic", "dim": d, "matrix": "exp-diagonal"},
             "regime": [*(_network(a, d, n, sizes) for a in sizes.alphas),
                        {"name": "neural_tangent", "activation": "quadratic", "width": n}],
             "sweep": {"n_train": "population", "n_test": 100, "seeds": sizes.seeds}}
            for d, n in sizes.cases]


def run_cost(run) -> float:
    """Rough cost for ordering only: steps ∝ 1 + 1/α, each O(N d²)."""
    params = dict(run.regime_params)
    width, dim = float(params.get("width", 1)), float(dict(run.task_params).get("dim", 1))
    alpha = float(params.get("laziness") or 1e3)
    return width * dim ** 2 * (1.0 + 1.0 / alpha)


# ----------------------------------------------------------------------------- analysis

def transition_scale(alphas, risks, low: float, high: float) -> float:
    """α* where the risk curve crosses (low + high)/2, from the large-α end downwards.

    Args:
        alphas, risks: the curve (any order); low, high: the NN and NT values.
    Returns:
        The crossing, interpolating R linearly in log α between the two grid points around
        it; NaN when the curve never crosses the midpoint.
    """
    order = np.argsort(np.asarray(alphas, float))[::-1]
    a, r = np.asarray(alphas, float)[order], np.asarray(risks, float)[order]
    middle = 0.5 * (low + high)
    below = np.nonzero(r <= middle)[0]
    if below.size == 0 or below[0] == 0:
        return math.nan
    k = int(below[0])
    t = (middle - r[k - 1]) / (r[k] - r[k - 1])
    return float(np.exp(np.log(a[k - 1]) + t * (np.log(a[k]) - np.log(a[k - 1]))))


def _case_columns(frame: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """The frame with dim, Theorem 3 and Theorem 2 values of each row's seed."""
    d = spec["task"]["dim"]
    out = frame.assign(dim=d)
    nn, nt = {}, {}
    for seed in sweep_seeds(spec):
        b = sweep_task(spec, seed).matrix.numpy()
        width = int(out["width"].iloc[0])
        nn[seed] = float(network_risk(width / d, b))
        nt[seed] = float(neural_tangent_risk(width / d, b))
    return out.assign(theorem3=out["seed"].map(nn), theorem2=out["seed"].map(nt))


def _frames(frames: dict[str, pd.DataFrame], scale: str) -> pd.DataFrame:
    specs = {s["name"]: s for s in _knob_sweeps(scale)}
    parts = [_case_columns(frame, specs[name]) for name, frame in frames.items()
             if not frame.empty and name in specs]
    return pd.concat(parts, ignore_index=True)


def _per_seed_transition(data: pd.DataFrame) -> pd.DataFrame:
    """α* per (d, N, seed), with that seed's Theorem 3 and exact NT values."""
    rows = []
    for (d, n, seed), part in data.groupby(["dim", "width", "seed"]):
        net, nt = part[part["regime"] == "network"], part[part["regime"] == "neural_tangent"]
        if net.empty or nt.empty:
            continue
        low, high = float(net["theorem3"].iloc[0]), float(nt["risk_normalized"].iloc[0])
        rows.append({"dim": d, "width": n, "seed": seed, "nn": low, "nt": high,
                     "alpha_star": transition_scale(net["laziness"], net["risk_normalized"],
                                                    low, high)})
    return pd.DataFrame(rows)


def _points(frames: dict[str, pd.DataFrame], scale: str) -> pd.DataFrame:
    """The figure's dots: per (d, N, α) risk, weight change and the per-seed collapsed risk
    (R − R_NN)/(R_NT − R_NN) (mean, s.e., count, unconverged), and per (d, N) the NN/NT lines
    and α* (series ``nn``, ``nt``, ``nt_theory``, ``alpha_star``; α* as mean and s.e. of
    log10 α* over seeds)."""
    data = _frames(frames, scale)
    net = data[data["regime"] == "network"]
    parts = []
    for value in ("risk_normalized", "weight_change"):
        table = seed_statistics(net, ["dim", "width", "laziness"], value)
        parts.append(table.rename(columns={"laziness": "alpha"}).assign(series=value))
    nt = data[data["regime"] == "neural_tangent"]
    for series, frame, value in (("nn", nt, "theorem3"), ("nt", nt, "risk_normalized"),
                                 ("nt_theory", nt, "theorem2")):
        parts.append(seed_statistics(frame.assign(alpha=np.nan), ["dim", "width", "alpha"],
                                     value).assign(series=series))
    star = _per_seed_transition(data).assign(log10_alpha_star=lambda t: np.log10(t.alpha_star))
    scaled = net.merge(star[["dim", "width", "seed", "nn", "nt"]], on=["dim", "width", "seed"])
    scaled = scaled.assign(collapsed=(scaled["risk_normalized"] - scaled["nn"])
                           / (scaled["nt"] - scaled["nn"]))
    parts.append(seed_statistics(scaled, ["dim", "width", "laziness"], "collapsed")
                 .rename(columns={"laziness": "alpha"}).assign(series="collapsed"))
    parts.append(seed_statistics(star.assign(alpha=np.nan), ["dim", "width", "alpha"],
                                 "log10_alpha_star").assign(series="alpha_star"))
    return pd.concat([*parts, measure_points(data, frames, scale)], ignore_index=True)


# ----------------------------------------------------------------------------- figure

def _series(points: pd.DataFrame, series: str, d: int, n: int) -> pd.DataFrame:
    part = points[(points["series"] == series) & (points["dim"] == d) & (points["width"] == n)]
    return part.sort_values("alpha")


def _cases(points: pd.DataFrame) -> list[tuple[int, int]]:
    table = points[points["series"] == "risk_normalized"][["dim", "width"]].drop_duplicates()
    return sorted((int(d), int(n)) for d, n in table.itertuples(index=False))


def _line(points: pd.DataFrame, series: str, d: int, n: int) -> float:
    part = _series(points, series, d, n)
    return float(part["mean"].iloc[0]) if not part.empty else math.nan


def _draw_case(axes, points: pd.DataFrame, d: int, n: int, color: str) -> None:
    risk, change = _series(points, "risk_normalized", d, n), _series(points, "weight_change", d, n)
    nn, nt = _line(points, "nn", d, n), _line(points, "nt", d, n)
    label = f"d = {d}, N = {n}"
    draw_points(axes[0], risk["alpha"], risk["mean"], risk["sem"], color=color, label=label,
                unconverged=risk.get("unconverged"))
    axes[0].axhline(nn, color=color, linestyle="--", linewidth=0.9)
    axes[0].axhline(nt, color=color, linestyle=":", linewidth=0.9)
    draw_points(axes[1], change["alpha"], change["mean"], change["sem"], color=color,
                label=label, unconverged=change.get("unconverged"))
    scaled = _series(points, "collapsed", d, n)
    draw_points(axes[2], scaled["alpha"], scaled["mean"], scaled["sem"], color=color,
                label=label, unconverged=scaled.get("unconverged"))
    star = _series(points, "alpha_star", d, n)
    if not star.empty and np.isfinite(star["mean"].iloc[0]):
        axes[2].axvline(10 ** float(star["mean"].iloc[0]), color=color, linewidth=0.8)


def figure(frames: dict[str, pd.DataFrame], scale: str, output_dir: Path) -> list[Path]:
    """Risk, weight change and the collapsed transition against α (module docstring)."""
    points = _points(frames, scale)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for k, (d, n) in enumerate(_cases(points)):
        _draw_case(axes, points, d, n, f"C{k}")
    alphas = np.array(SIZES[scale].alphas)
    change = points[points["series"] == "weight_change"]
    top = change[change["alpha"] == alphas.max()]["mean"].max()
    axes[1].plot(alphas, top * alphas.max() / alphas, color="0.5", linewidth=0.8,
                 label="∝ 1/α (lazy training)")
    titles = ("(a) population risk / ‖f*‖²  (-- Theorem 3 NN, ··· exact NT)",
              "(b) ‖W − W₀‖/‖W₀‖", "(c) (R − R_NN)/(R_NT − R_NN); | = α*")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("laziness α")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    axes[2].axhline(0.5, color="0.6", linewidth=0.6)
    fig.suptitle("lazy-rich: f_α = α(f_θ − f_θ₀), σ = u², quadratic target, population GD",
                 fontsize=11)
    fig.tight_layout()
    matrices = seed_matrices(_knob_sweeps(scale), sweep_task, sweep_seeds)
    return [*save_figure(fig, Path(output_dir) / NAME),
            *measure_figure(points, matrices, SIZES[scale].weight_scale, output_dir),
            *relu.figure(frames, scale, output_dir)]


# ----------------------------------------------------------------------------- summary

def _end_gap(data: pd.DataFrame, alpha: float, reference: str) -> tuple[float, float, int]:
    """Mean and s.e. over seeds of R(α)/reference − 1 (reference per seed)."""
    net = data[(data["regime"] == "network") & (data["laziness"] == alpha)]
    gaps = net["risk_normalized"].to_numpy() / net[reference].to_numpy() - 1.0
    sem = float(gaps.std(ddof=1) / math.sqrt(gaps.size)) if gaps.size > 1 else 0.0
    return float(gaps.mean()), sem, int(gaps.size)


def _verdict(ok: bool) -> str:
    return "supported" if ok else "not supported"


def _end_lines(data: pd.DataFrame, points: pd.DataFrame, alphas) -> list[str]:
    lines = []
    for d, n in _cases(points):
        case = data[(data["dim"] == d) & (data["width"] == n)]
        nt = case[case["regime"] == "neural_tangent"]
        nt_mean = float(nt["risk_normalized"].mean())
        nt_sem = float(nt["risk_normalized"].std(ddof=1) / math.sqrt(max(len(nt), 1)))
        lazy = case[(case["regime"] == "network") & (case["laziness"] == max(alphas))]
        lazy_gap = float(lazy["risk_normalized"].mean()) / nt_mean - 1.0
        lazy_sem = float(lazy["risk_normalized"].std(ddof=1)) / math.sqrt(len(lazy)) / nt_mean
        error = math.hypot(lazy_sem, nt_sem / nt_mean)
        rich, rich_sem, count = _end_gap(case, min(alphas), "theorem3")
        lines.append(
            f"- d = {d}, N = {n} ({count} seeds): α = {max(alphas):g} → {lazy_gap:+.2%} ± "
            f"{error:.2%} from the exact NT ({nt_mean:.4f}; Theorem 2: "
            f"{float(nt['theorem2'].mean()):.4f}) — "
            f"{_verdict(abs(lazy_gap) <= max(0.02, 2 * error))}; α = {min(alphas):g} → "
            f"{rich:+.2%} ± {rich_sem:.2%} from Theorem 3 ({float(nt['theorem3'].mean()):.4f})"
            f" — {_verdict(abs(rich) <= 0.02)}.")
    return lines


def _transition_lines(data: pd.DataFrame) -> list[str]:
    star = _per_seed_transition(data)
    star = star.assign(log_star=np.log10(star["alpha_star"]))
    lines = []
    for (d, n), part in star.groupby(["dim", "width"]):
        values = part["log_star"].dropna()
        sem = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
        lines.append(f"- d = {d}, N = {n}: α* = {10 ** values.mean():.3g} (log10 α* = "
                     f"{values.mean():.2f} ± {sem:.2f}, {len(values)} of {len(part)} seeds "
                     "cross the midpoint)")
    for d, part in star.groupby("dim"):
        if part["width"].nunique() >= 2:
            fit, error = slope(np.log10(part["width"]), part["log_star"])
            lines.append(f"- with the width at d = {d}: log10 α* against log10 N has slope "
                         f"{fit:.2f} ± {error:.2f} (least squares over the seeds)")
    for n, part in star.groupby("width"):
        if part["dim"].nunique() >= 2:
            means = part.groupby("dim")["log_star"].mean()
            lines.append(f"- with the dimension at N = {n}: log10 α* = " + ", ".join(
                f"{v:.2f} at d = {d}" for d, v in means.items()))
    return lines


_RICH_TO = 0.1
"""The rich-end slope of the kernel change is fitted over α ≤ this."""
_LAZY_FROM = 100.0
"""The slope of the weight change is fitted over α ≥ this (the asymptotic lazy range; at
α ≈ 10 the O(1/α²) correction still steepens it by ≈ 7 %)."""


def _change_lines(data: pd.DataFrame) -> list[str]:
    net = data[(data["regime"] == "network") & (data["laziness"] >= _LAZY_FROM)]
    lines = []
    for (d, n), part in net.groupby(["dim", "width"]):
        fit, error = slope(np.log10(part["laziness"]), np.log10(part["weight_change"]))
        if not math.isfinite(fit):
            lines.append(f"- d = {d}, N = {n}: too few values of α ≥ {_LAZY_FROM:g} to fit")
            continue
        lines.append(f"- d = {d}, N = {n}: slope of log ‖W − W₀‖/‖W₀‖ against log α over "
                     f"α ≥ {_LAZY_FROM:g}: {fit:.3f} ± {error:.3f} — "
                     f"{_verdict(abs(fit + 1) <= max(0.05, 2 * error))} (lazy: −1)")
    return lines


def summary(frames: dict[str, pd.DataFrame], scale: str) -> str:
    """The claims with their numbers, computed from the runs (markdown)."""
    data, points, sizes = _frames(frames, scale), _points(frames, scale), SIZES[scale]
    net = data[data["regime"] == "network"]
    halvings = int(net["halvings"].fillna(0).sum()) if "halvings" in net else 0
    return "\n".join([
        f"Sizes: {SCALES[scale]}. Error bars and ± are standard errors over seeds; every "
        f"network run is population gradient descent to a relative risk change ≤ {sizes.tol:g}"
        f" per 100 steps. {unconverged_text(net, sizes.tol)} Learning-rate halvings: "
        f"{halvings}.", "",
        "## Claim 1: the α → ∞ end is the neural tangent, the α → 0 end is Theorem 3",
        "(criterion: within 2 %, or 2 s.e. where the NT draws of W₀ differ from the network's)",
        *_end_lines(data, points, sizes.alphas), "",
        "## Claim 2: the transition scale α* (risk halfway between NN and NT)",
        *_transition_lines(data), "",
        "## Claim 3: lazy training moves the weights by O(1/α)",
        *_change_lines(data), "",
        *measure_lines(data, frames, scale,
                       seed_matrices(_knob_sweeps(scale), sweep_task, sweep_seeds),
                       sizes.weight_scale, _LAZY_FROM, _RICH_TO), "",
        *relu.summary_lines(frames, scale)])


STUDY = Study(name=NAME, description="Chizat, Oyallon & Bach 2019: risk against the laziness α, "
              "from the neural tangent to the trained network (Theorem 3), quadratic target",
              sweeps=sweeps, figure=figure, summary=summary, scales=SCALES,
              points=lambda frames, scale: pd.concat(
                  [_points(frames, scale), relu.points(frames, scale)], ignore_index=True),
              run_cost=run_cost)
