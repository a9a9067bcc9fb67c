"""Measurements of the xie-semirandom study that are not risks of the sweeps: the number of
units a model needs to match a trained network, trained-parameter counts, and the width at which the
training error of a semi-random fit vanishes on unit-sphere inputs (Xie, Liang & Song's
N ≳ 1/γ_m guarantee, THEORY §3.1).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from lazylab.models.kernel import DualKernel
from lazylab.models.registry import REGIMES
from lazylab.studies._aggregate import seed_statistics
from lazylab.tasks import Dataset
from lazylab.theory.spectra import gram_spectrum

__all__ = ["trained_parameters", "units_to_match", "interpolation_width", "risk_rows",
           "certificate_rows", "unit_sphere", "match_table", "match_rows", "claim_rows",
           "depth_rows", "kernel_spectrum"]


def trained_parameters(series: str, width: int, dim: int) -> int:
    """Trained parameters of one model with N = ``width`` units on d = ``dim`` inputs.

    RF: the head and offset (N + 1). Semi-random depth 1: one linear unit per switch (N d).
    Network: first layer, its biases, head and offset (N d + 2N + 1; the synthetic network has
    no biases, N d + N + 1). Depth 2 semi-random: W¹ (N d), b¹, W² (N²), b², head, offset.
    """
    counts = {"rf": width + 1, "sr0": width * dim, "sr1": width * dim,
              "network": width * dim + 2 * width + 1,
              "network_nobias": width * dim + width + 1,
              "sr0_deep": width * dim + width * width + 3 * width + 1}
    counts["sr1_deep"] = counts["sr0_deep"]
    if series not in counts:
        raise ValueError(f"series must be one of {', '.join(counts)}, got {series!r}")
    return int(counts[series])


def units_to_match(target: float, widths, risks) -> float:
    """The smallest N at which the curve (widths, risks) reaches ``target``.

    The curve is interpolated linearly in (log N, log risk) between the first width whose risk
    is ≤ target and the one before it; ``inf`` when no width reaches it, the smallest width when
    the first already does.
    """
    widths, risks = np.asarray(widths, float), np.asarray(risks, float)
    order = np.argsort(widths)
    widths, risks = widths[order], risks[order]
    below = np.flatnonzero(risks <= target)
    if below.size == 0:
        return math.inf
    k = int(below[0])
    if k == 0:
        return float(widths[0])
    lw, lr = np.log(widths[k - 1:k + 1]), np.log(risks[k - 1:k + 1])
    t = (math.log(target) - lr[0]) / (lr[1] - lr[0])
    return float(math.exp(lw[0] + t * (lw[1] - lw[0])))


def unit_sphere(inputs) -> torch.Tensor:
    """x / ‖x‖ row by row, (n, d) float64 — the inputs of the kernel's derivation."""
    x = torch.as_tensor(inputs, dtype=torch.float64)
    return x / torch.linalg.norm(x, dim=1, keepdim=True)


def interpolation_width(data: Dataset, widths, *, degree: int, seed: int,
                        threshold: float = 1e-6) -> tuple[float, list[float]]:
    """The smallest width N whose depth-1 semi-random least-squares fit (ridge 1e-10, relative
    to Var y) has training risk ≤ ``threshold`` · Var y; ``inf`` if none. Also the training
    risks / Var y at every width."""
    variance = float(data.y.var(unbiased=False))
    risks = []
    for width in widths:
        model = REGIMES["semi_random"](width=int(width), degree=degree, ridge=1e-10)
        predictor = model.fit(data, rng=np.random.default_rng(seed))
        risks.append(float(((predictor.predict(data.x) - data.y) ** 2).mean()) / variance)
    reached = [w for w, r in zip(widths, risks) if r <= threshold]
    return (float(min(reached)) if reached else math.inf), risks


def match_table(curves: pd.DataFrame, data: str, dim: int) -> pd.DataFrame:
    """Per network width N: the units (and trained parameters) each depth-1 model needs to reach
    the trained network's mean risk, interpolated on the mean curves (inf: not reached)."""
    part = curves[curves["data"] == data]
    network = part[part["series"] == "network"]
    rows = []
    for row in network.itertuples(index=False):
        width = int(row.width)
        net_params = trained_parameters("network" if data == "digits" else "network_nobias",
                                        width, dim)
        out = {"N": width, "network": row.mean}
        for series in ("sr0", "sr1", "rf"):
            curve = part[part["series"] == series]
            units = units_to_match(row.mean, curve["width"], curve["mean"])
            out[series] = units / width
            per_unit = 1 if series == "rf" else dim
            out[series + "_params"] = math.inf if math.isinf(units) else (
                per_unit * units / net_params)
        rows.append(out)
    return pd.DataFrame(rows)


def match_curves(curves: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    """The curves the matching claims are read on: synthetic risk / Var y (exact), and for
    digits the test classification error (%), the papers' measure. (On digits the squared test
    risk of an interpolating network is heavy-tailed: a few test images far from the training
    images get huge outputs, so its mean says little about the fit; the error does not.)"""
    synthetic = curves[curves["data"] == "synthetic"]
    if errors.empty:
        return synthetic
    return pd.concat([synthetic, seed_statistics(errors, ["data", "series", "width"],
                                                 "error_percent")], ignore_index=True)


def match_rows(table: pd.DataFrame, measure: str = "risk") -> list[str]:
    """Markdown rows of :func:`match_table`; ``measure`` names the network's column."""
    lines = [f"| network N | network {measure} | s = 0: units ×N (params ×) | s = 1: units ×N "
             "(params ×) | RF: units ×N (params ×) |", "|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        cells = [f"{getattr(r, s):.2g} ({getattr(r, s + '_params'):.2g})"
                 if math.isfinite(getattr(r, s)) else "not reached"
                 for s in ("sr0", "sr1", "rf")]
        lines.append(f"| {r.N} | {r.network:.3g} | " + " | ".join(cells) + " |")
    return lines


def _verdict(ok: bool) -> str:
    return "**supported**" if ok else "**not supported**"


def claim_rows(curves: pd.DataFrame, matches: dict) -> list[str]:
    """Claim lines (verdict and numbers) on matching the network and beating RF."""
    lines = []
    for data, table in matches.items():
        best = np.minimum(table["sr0"], table["sr1"]).to_numpy()
        ratios = ", ".join(f"N = {n}: {b:.2g}×" for n, b in zip(table["N"], best))
        lines.append(f"* {data} ({'test classification error' if data == 'digits' else 'risk'}):"
                     f" semi-random matches the trained network with at most 16× its "
                     f"units at every N — {_verdict(bool(np.all(best <= 16)))} (best of s = 0, "
                     f"1: {ratios}).")
        params = np.minimum(table["sr0_params"], table["sr1_params"]).to_numpy()
        lines.append(f"  With as few trained parameters as the network (≤ 1×) — "
                     f"{_verdict(bool(np.all(params <= 1)))} (" + ", ".join(
                         f"{p:.2g}×" for p in params) + ").")
        part = curves[curves["data"] == data].pivot(index="width", columns="series",
                                                    values="mean")
        widest = part["rf"].dropna().index.max()
        best_sr = np.minimum(part["sr0"], part["sr1"]).dropna()
        need = units_to_match(part.loc[widest, "rf"], best_sr.index, best_sr.to_numpy())
        measure = "test classification error (%)" if data == "digits" else "risk"
        lines.append(f"  Semi-random beats RF with fewer units: RF's {measure} at "
                     f"N = {int(widest)} "
                     f"({part.loc[widest, 'rf']:.3g}) is reached by semi-random at N ≈ "
                     f"{need:.3g} — {_verdict(need < widest)}.")
    return lines


def depth_rows(curves: pd.DataFrame) -> list[str]:
    """Depth 2 against depth 1 at equal N on the digits, s = 0 and 1."""
    part = curves[curves["data"] == "digits"].set_index(["series", "width"])
    lines = []
    for degree in (0, 1):
        deep, flat = f"sr{degree}_deep", f"sr{degree}"
        widths = [w for (s, w) in part.index if s == deep and (flat, w) in part.index]
        cells = [f"N = {int(w)}: {part.loc[(deep, w), 'mean']:.3g} ± "
                 f"{part.loc[(deep, w), 'sem']:.2g} vs {part.loc[(flat, w), 'mean']:.3g} ± "
                 f"{part.loc[(flat, w), 'sem']:.2g}" for w in widths]
        helps = [part.loc[(deep, w), "mean"] + 2 * part.loc[(deep, w), "sem"]
                 < part.loc[(flat, w), "mean"] for w in widths]
        lines.append(f"* depth 2 beats depth 1 at equal N (s = {degree}, by > 2 s.e.) — "
                     f"{_verdict(bool(helps) and all(helps))}: " + "; ".join(cells) + ".")
    return lines


def risk_rows(curves: pd.DataFrame, data: str, labels: dict,
              errors: pd.DataFrame | None = None) -> list[str]:
    """Markdown table of mean ± s.e. (and classification error %) per width and series."""
    part = curves[curves["data"] == data]
    columns = [c for c in labels if c in set(part["series"])]
    cell = {(r.series, int(r.width)): f"{r.mean:.3g} ± {r.sem:.2g}" + (
        f" [{int(r.unconverged)} unconv.]" if getattr(r, "unconverged", 0) else "")
        for r in part.itertuples()}
    if errors is not None and not errors.empty:
        for r in seed_statistics(errors, ["series", "width"], "error_percent").itertuples():
            cell[(r.series, int(r.width))] += f" ({r.mean:.1f} ± {r.sem:.1f} %)"
    lines = ["| N | " + " | ".join(labels[c] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for width in sorted(part["width"].unique()):
        lines.append(f"| {int(width)} | " + " | ".join(cell.get((c, int(width)), "–")
                                                     for c in columns) + " |")
    return lines


def certificate_rows(runs: pd.DataFrame, tol: float, budget: int, labels: dict,
                     criterion_rate: float) -> list[str]:
    """How the trained digits fits stopped: steps, final criterion, halvings, per series."""
    digits = runs[(runs["data"] == "digits") & runs["series"].isin(
        ["network", "sr0_deep", "sr1_deep"]) & (runs.get("status") == "done")]
    if digits.empty or "criterion" not in digits:
        return []
    lines = [f"Digits network and depth 2: Adam on minibatches of 100, to tolerance "
             f"{tol:g} of the full-batch criterion (L ≤ tol · Var y, or L changing by "
             f"< tol over each of 3 checks, every 100 steps at a rate η ≥ {criterion_rate:g} "
             f"and every ⌈100·{criterion_rate:g}/η⌉ steps below, so that every check spans "
             f"η·steps ≥ {100 * criterion_rate:g}) within {budget} steps:", ""]
    for series, part in digits.groupby("series"):
        steps, criterion = (pd.to_numeric(part[c], errors="coerce") for c in ("steps",
                                                                              "criterion"))
        halvings = int(pd.to_numeric(part.get("halvings"), errors="coerce").fillna(0).sum())
        lines.append(f"* {labels[series]}: converged {int(part['converged'].sum())} of "
                     f"{len(part)}, steps {int(steps.min())}–{int(steps.max())}, final "
                     f"criterion ≤ {criterion.max():.2g}, learning-rate halvings {halvings}.")
    return lines


def kernel_spectrum(inputs, kind: str, degree: int = 0) -> np.ndarray:
    """Eigenvalues γ_1 ≥ γ_2 ≥ … of K/n for the infinite-width kernel of ``kind`` on ``inputs``
    (:class:`lazylab.models.kernel.DualKernel`, :func:`lazylab.theory.spectra.gram_spectrum`)."""
    x = torch.as_tensor(inputs, dtype=torch.float64)
    return gram_spectrum(DualKernel(kind, "relu", degree)(x, x).numpy())
