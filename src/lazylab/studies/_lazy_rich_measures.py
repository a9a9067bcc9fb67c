"""lazy-rich, beside the risk: feature alignment, tangent-kernel change, incremental learning.

Measures of the fitted networks of :mod:`lazylab.studies.lazy_rich` (diagnostics of
:mod:`lazylab.models._network_diagnostics`), against the laziness α:

* alignment A = ‖W V_N‖_F²/‖W‖_F², V_N B's top-N eigenvectors. Random W₀: A ≈ N/d. With the
  head at ones, WᵀW = M₀ + F/α exactly (F the learned function's matrix), so
  A = (Tr(P M₀) + Tr(P F)/α)/(Tr M₀ + Tr F/α); at the rich end F = B_N (Theorem 3's optimum),
  giving the prediction A_rich(α) = (A₀ s_w² N + Tr B_N/α)/(s_w² N + Tr B_N/α) (E Tr M₀ = s_w² N,
  A₀ the measured initial alignment), → 1 as α → 0.
* kernel change (exact in population for σ = u², ``kernel_change_population``):
  ‖K_T − K₀‖/‖K₀‖ = ‖F‖_K/(α‖M₀‖_K) with ‖Q‖_K² = (d + 6)‖Q‖_F² + 2(Tr Q)², exactly. So it is
  ∝ 1/α at both ends (F → F_NT as α → ∞, F → B_N as α → 0), the prefactor moving across the
  transition; the rich-end line uses F = B_N and the Wishart moments of M₀
  (:func:`lazylab.theory.rich_kernel_change`, :func:`lazylab.theory.rich_alignment`).
* incremental learning (a separate sweep, plain network, small initialization s): the GD step
  at which v_kᵀFv_k reaches λ_k/2 against s, with the refined linearized prediction
  :func:`lazylab.theory.incremental_learning_times` (κ = 1: ``Network`` descends R = E(f − y)²
  itself; η = ``learning_rate``, the same on W and c; momentum 0; offset centered so s(0) = 0;
  init w_i ~ N(0, s² I/d): exactly the parameterization that function assumes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.plots import draw_points, plt, save_figure
from lazylab.studies._aggregate import seed_statistics
from lazylab.theory import incremental_learning_times, rich_alignment, rich_kernel_change

__all__ = ["INCREMENTAL", "Incremental", "eigenvalues", "incremental_budget",
           "incremental_scale", "incremental_sweeps", "measure_points", "measure_figure",
           "measure_lines", "seed_matrices", "slope"]

NAME = "lazy-rich"


@dataclass(frozen=True)
class Incremental:
    """The incremental-learning sweep: B = diag(1, 1/2, …, 2^{1−r}, 0, …) (task preset
    "geometric"), d = N, init scales, GD settings."""

    dim: int
    rank: int
    inits: tuple
    seeds: int
    rate: float = 0.01
    every: int = 2


INCREMENTAL = {
    "smoke": Incremental(dim=6, rank=3, inits=(1e-3, 1e-5, 1e-7), seeds=2),
    "default": Incremental(dim=6, rank=3, inits=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8), seeds=6),
    "paper": Incremental(dim=10, rank=4, inits=tuple(10.0 ** -k for k in range(3, 11)), seeds=8,
                         rate=0.005, every=1),
}

INCREMENTAL_SWEEP = f"{NAME}-incremental"
FITTED = 1e-8
"""A run of the incremental sweep counts as fitted when R/‖f*‖² ≤ this at the end."""


def eigenvalues(sizes: Incremental) -> tuple:
    """λ_k = 2^{1−k}, k = 1…r (the "geometric" preset)."""
    return tuple(2.0 ** -k for k in range(sizes.rank))


def incremental_scale(scale: str) -> str:
    """The incremental sweep's sizes, in words (the study's ``scales``)."""
    sizes = INCREMENTAL[scale]
    return (f"incremental learning: B = diag{eigenvalues(sizes)}, d = N = {sizes.dim}, init "
            f"s ∈ {list(sizes.inits)}, {sizes.seeds} seeds, η = {sizes.rate:g}, "
            f"{incremental_budget(sizes)} steps, monitor every {sizes.every} steps")


def incremental_budget(sizes: Incremental) -> int:
    """A fixed step budget, three times the refined prediction for the last direction at the
    smallest init. Not a run to tolerance: on the plateau at the saddle θ ≈ 0 the risk barely
    changes, so the relative-change criterion would stop the run before anything is learned;
    and the certificate's relative gradient ‖∇R‖/‖∇R(θ₀)‖, normalized by ‖∇R(θ₀)‖ ∝ s, stays
    above its tolerance at round-off for s ≲ 1e-5. A run counts as fitted (filled dot) when
    its final risk is ≤ ``FITTED`` · ‖f*‖²; the summary gives both counts."""
    times = incremental_learning_times(eigenvalues(sizes), min(sizes.inits), sizes.rate,
                                       dim=sizes.dim, width=sizes.dim)
    return int(math.ceil(3.0 * float(np.max(times))))


def incremental_sweeps(scale: str) -> list[dict]:
    """One spec: the plain σ = u² network (N = d) from init scales s, learning monitor on."""
    sizes = INCREMENTAL[scale]
    return [{"name": INCREMENTAL_SWEEP,
             "description": f"incremental learning of B = diag{eigenvalues(sizes)} from small "
                            f"initializations, d = N = {sizes.dim}, n = ∞",
             "task": {"name": "quadratic", "dim": sizes.dim, "matrix": "geometric",
                      "rank": sizes.rank},
             "regime": [{"name": "network", "activation": "quadratic", "train": "first",
                         "head_init": "ones", "width": sizes.dim, "training": "population",
                         "weight_scale": list(sizes.inits), "learning_rate": sizes.rate,
                         "steps": incremental_budget(sizes), "track_every": sizes.every}],
             "sweep": {"n_train": "population", "n_test": 100, "seeds": sizes.seeds}}]


# ----------------------------------------------------------------------------- points

def _incremental_frame(frames: dict, scale: str) -> pd.DataFrame:
    """Long frame: one row per (seed, init s, direction k) with the step and the theory."""
    sizes, frame = INCREMENTAL[scale], frames.get(INCREMENTAL_SWEEP)
    if frame is None or frame.empty:
        return pd.DataFrame()
    theory = incremental_learning_times(eigenvalues(sizes), np.asarray(sizes.inits), sizes.rate,
                                        dim=sizes.dim, width=sizes.dim)
    rows = []
    for _, run in frame.iterrows():
        s = float(run["weight_scale"])
        index = int(np.argmin(np.abs(np.log(np.asarray(sizes.inits)) - math.log(s))))
        for k, lam in enumerate(eigenvalues(sizes)):
            rows.append({"seed": run["seed"], "init": s, "direction": k + 1, "eigenvalue": lam,
                         "step": float(run.get(f"learned_step_{k + 1}", math.nan)),
                         "theory": float(theory[index, k]),
                         "certified": run.get("converged", 1.0),
                         "converged": float(run["risk_normalized"] <= FITTED)})
    return pd.DataFrame(rows)


def measure_points(data: pd.DataFrame, frames: dict, scale: str) -> pd.DataFrame:
    """Series ``alignment``, ``kernel_change`` (per (d, N, α)) and ``learned_step`` (per init
    s and direction k, with ``theory``) for the CSV; ``data`` is lazy_rich's per-run frame."""
    net = data[data["regime"] == "network"]
    parts = []
    for series, column in (("alignment", "alignment"), ("alignment_initial", "alignment_initial"),
                           ("kernel_change", "kernel_change_population")):
        if column in net:
            table = seed_statistics(net, ["dim", "width", "laziness"], column)
            parts.append(table.rename(columns={"laziness": "alpha"}).assign(series=series))
    steps = _incremental_frame(frames, scale)
    if not steps.empty:
        table = seed_statistics(steps, ["direction", "eigenvalue", "init"], "step")
        theory = steps.groupby(["direction", "init"])["theory"].first().reset_index()
        parts.append(table.merge(theory, on=["direction", "init"]).assign(series="learned_step"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def seed_matrices(specs: list[dict], task_of, seeds_of) -> dict[tuple, list[np.ndarray]]:
    """(d, N) → each seed's B, from the knob sweeps' specs; ``task_of(spec, seed)`` and
    ``seeds_of(spec)`` are :func:`lazylab.studies.base.sweep_task` and ``sweep_seeds``."""
    out = {}
    for spec in specs:
        width = next(r["width"] for r in spec["regime"] if r["name"] == "network")
        out[spec["task"]["dim"], width] = [task_of(spec, seed).matrix.numpy()
                                           for seed in seeds_of(spec)]
    return out


# ----------------------------------------------------------------------------- figure

def _series(points: pd.DataFrame, series: str, d: int, n: int) -> pd.DataFrame:
    part = points[(points["series"] == series) & (points["dim"] == d) & (points["width"] == n)]
    return part.sort_values("alpha")


def _draw_knob(axes, points, matrices, weight_scale: float) -> None:
    """(a) alignment, (b) kernel change against α, per case, with the rich-end predictions."""
    for k, ((d, n), bs) in enumerate(sorted(matrices.items())):
        color, label = f"C{k}", f"d = {d}, N = {n}"
        for ax, series in zip(axes, ("alignment", "kernel_change")):
            part = _series(points, series, d, n)
            if not part.empty:
                draw_points(ax, part["alpha"], part["mean"], part["sem"], color=color,
                            label=label, unconverged=part.get("unconverged"))
        alphas = _series(points, "alignment", d, n)["alpha"].to_numpy()
        start = _series(points, "alignment_initial", d, n)["mean"].mean()
        if alphas.size:
            axes[0].plot(alphas, np.mean([rich_alignment(alphas, b, n, weight_scale, start)
                                          for b in bs], 0), color=color, linestyle="--",
                         linewidth=0.8)
            axes[0].axhline(n / d, color=color, linestyle=":", linewidth=0.8)
            axes[1].plot(alphas, np.mean([rich_kernel_change(alphas, b, n, weight_scale)
                                          for b in bs], 0), color=color, linestyle="--",
                         linewidth=0.8)


def _draw_incremental(ax, points: pd.DataFrame) -> None:
    steps = points[points["series"] == "learned_step"]
    for k, part in steps.groupby("direction"):
        part = part.sort_values("init")
        x = np.log(1.0 / part["init"].to_numpy() ** 2)
        color = f"C{int(k) - 1}"
        draw_points(ax, x, part["mean"], part["sem"], color=color,
                    label=f"k = {int(k)}, λ = {part['eigenvalue'].iloc[0]:g}",
                    unconverged=part.get("unconverged"))
        ax.plot(x, part["theory"], color=color, linestyle="--", linewidth=0.8)


def measure_figure(points: pd.DataFrame, matrices: dict, weight_scale: float,
                   output_dir: Path) -> list[Path]:
    """The second PNG: alignment, kernel change, incremental learning (module docstring)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    _draw_knob(axes, points, matrices, weight_scale)
    _draw_incremental(axes[2], points)
    titles = ("(d) alignment ‖W V_N‖²/‖W‖²  (-- rich prediction, ··· N/d)",
              "(e) tangent-kernel change ‖K_T − K₀‖/‖K₀‖ (exact)  (-- rich end, F = B_N)",
              "(f) GD step where v_kᵀFv_k = λ_k/2  (-- linearized theory)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("laziness α")
    axes[1].set_yscale("log")
    axes[2].set_xlabel("log(1/s²), s = initialization scale")
    fig.suptitle("lazy-rich: feature learning against α, and saddle-to-saddle learning from a "
                 "small initialization", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, Path(output_dir) / f"{NAME}-measures")


# ----------------------------------------------------------------------------- summary

def slope(x, y) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (NaN with < 3 finite points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0:
        return math.nan, math.nan
    fit, intercept = np.polyfit(x, y, 1)
    residual = y - (fit * x + intercept)
    return float(fit), float(math.sqrt(residual @ residual / (x.size - 2)
                                       / ((x - x.mean()) @ (x - x.mean()))))


def _verdict(ok: bool) -> str:
    return "supported" if ok else "not supported"


def _mean_sem(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    sem = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0
    return float(values.mean()) if values.size else math.nan, sem


def _alignment_lines(net: pd.DataFrame, matrices: dict, weight_scale: float) -> list[str]:
    lines = []
    for (d, n), part in net.groupby(["dim", "width"]):
        start, start_sem = _mean_sem(part["alignment_initial"])
        high, low = part["laziness"].max(), part["laziness"].min()
        end = part[part["laziness"] == high]
        lazy, lazy_sem = _mean_sem(end["alignment"] - end["alignment_initial"])
        rich, rich_sem = _mean_sem(part[part["laziness"] == low]["alignment"])
        predicted = float(np.mean([rich_alignment(low, b, n, weight_scale, start)
                                   for b in matrices.get((d, n), [])]))
        ok = abs(rich - predicted) <= max(0.02, 2 * rich_sem) and rich > 0.9
        lines.append(
            f"- d = {d}, N = {n}: at initialization {start:.3f} ± {start_sem:.3f} (N/d = "
            f"{n / d:.3f}); α = {high:g}: A − A₀ = {lazy:+.4f} ± {lazy_sem:.4f}; α = {low:g}: "
            f"{rich:.3f} ± "
            f"{rich_sem:.3f} against the rich prediction {predicted:.3f} (→ 1 as α → 0) — "
            f"{_verdict(ok)}.")
    return lines


def _kernel_lines(net: pd.DataFrame, matrices: dict, weight_scale: float,
                  lazy_from: float, rich_to: float) -> list[str]:
    lines = []
    for (d, n), part in net.groupby(["dim", "width"]):
        x, y = np.log10(part["laziness"]), np.log10(part["kernel_change_population"])
        fits = [slope(x[mask], y[mask]) for mask in (part["laziness"] >= lazy_from,
                                                     part["laziness"] <= rich_to)]
        low = part["laziness"].min()
        rich, rich_sem = _mean_sem(part[part["laziness"] == low]["kernel_change_population"])
        line = float(np.mean([rich_kernel_change(low, b, n, weight_scale)
                              for b in matrices.get((d, n), [])]))
        text = ", ".join(f"{name} {fit:.3f} ± {2 * err:.3f} — "
                         f"{_verdict(abs(fit + 1) <= max(0.05, 2 * err))}"
                         for name, (fit, err) in zip((f"α ≥ {lazy_from:g}", f"α ≤ {rich_to:g}"),
                                                     fits))
        lines.append(f"- d = {d}, N = {n}: slope of log ‖K_T − K₀‖/‖K₀‖ against log α (95 % "
                     f"CI): {text}; at α = {low:g}: {rich:.4g} ± {rich_sem:.2g} against "
                     f"‖B_N‖_K/(α‖M₀‖_K) = {line:.4g} ({rich / line - 1:+.1%}).")
    return lines


def _incremental_lines(frames: dict, scale: str) -> list[str]:
    sizes, steps = INCREMENTAL[scale], _incremental_frame(frames, scale)
    if steps.empty:
        return ["- no incremental-learning runs"]
    missing, runs = int(steps["step"].isna().sum()), steps.drop_duplicates(["seed", "init"])
    lines = [f"- B = diag{eigenvalues(sizes)} (d = N = {sizes.dim}), η = {sizes.rate:g}, "
             f"init s ∈ {list(sizes.inits)}, {sizes.seeds} seeds, "
             f"{incremental_budget(sizes)} steps; directions never learned: {missing} of "
             f"{len(steps)}; runs fitted to R ≤ {FITTED:g}‖f*‖²: {int(runs['converged'].sum())} "
             f"of {len(runs)} (certified by the solver's criterion: "
             f"{int(runs['certified'].sum())}; incremental_budget says why they differ)"]
    for k, part in steps.groupby("direction"):
        lam = float(part["eigenvalue"].iloc[0])
        fit, err = slope(np.log(1.0 / part["init"] ** 2), part["step"])
        theory = 1.0 / (2.0 * math.log1p(8.0 * sizes.rate * lam))
        gap, gap_sem = _mean_sem(part["step"] / part["theory"] - 1.0)
        lines.append(
            f"- k = {k} (λ = {lam:g}): slope of the step against log(1/s²) {fit:.2f} ± "
            f"{2 * err:.2f} (95 % CI) vs 1/(2 log(1 + 8ηλ_k)) = {theory:.2f} "
            f"({fit / theory - 1:+.1%}) — "
            f"{_verdict(abs(fit - theory) <= max(0.03 * theory, 2 * err))}; step / "
            f"refined theory − 1 = {gap:+.1%} ± {gap_sem:.1%} (mean over inits and seeds)")
    order = steps.pivot_table(index=["seed", "init"], columns="direction", values="step")
    ordered = int((np.diff(order.to_numpy(), axis=1) > 0).all(axis=1).sum())
    lines.append(f"- learned in the order of λ (largest first) in {ordered} of {len(order)} "
                 "runs (saddle to saddle)")
    return lines


def measure_lines(data: pd.DataFrame, frames: dict, scale: str, matrices: dict,
                  weight_scale: float, lazy_from: float, rich_to: float) -> list[str]:
    """Claims 4–6 of the summary (module docstring), from lazy_rich's per-run frame."""
    net = data[data["regime"] == "network"]
    return ["## Claim 4: the first layer aligns with B's top-N eigenspace as α → 0",
            "(A = ‖W V_N‖²/‖W‖²; criterion at the smallest α: within 2 s.e. or 0.02 of the rich "
            "prediction, and > 0.9)",
            *_alignment_lines(net, matrices, weight_scale), "",
            "## Claim 5: the tangent kernel changes by O(1/α) (exactly ‖F‖_K/(α‖M₀‖_K))",
            "(criterion: slope −1 within 0.05 or 2 s.e.; the prefactor moves from F_NT to B_N "
            "across the transition)",
            *_kernel_lines(net, matrices, weight_scale, lazy_from, rich_to), "",
            "## Claim 6: incremental learning from a small initialization",
            "(criterion: least-squares slope over runs within 3 % or 2 s.e. of the linearized "
            "rate; every run draws its own W₀, whose log m_k(0) moves the absolute step)",
            *_incremental_lines(frames, scale)]
