"""The sizes, sweeps, theory inputs and per-run tables of the kernel-curves study.

Private helper of :mod:`lazylab.studies.kernel_curves` (its docstring states the setting); kept
apart for the 400-line module limit. ``kernel_table`` and ``rf_table`` join every finished run
with its theory value (:mod:`lazylab.theory.staircase`, Mei–Montanari in
:mod:`lazylab.theory.random_features_ridge`) on the task instance the run used.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lazylab.studies._aggregate import seed_statistics
from lazylab.studies._kernel_baselines import (KINDS, RIDGE_EXPONENTS, edge_side, kernel_profile,
                                               kernel_ridge_selection)
from lazylab.studies.base import sweep_task
from lazylab.theory import random_features_optimal_ridge_risk, random_features_ridge_risk
from lazylab.theory.staircase import kernel_ridge_risk, staircase_risk

__all__ = ["SIZES", "SCALES", "Sizes", "sweeps", "degree_energies", "kernel_profile",
           "target_split", "kernel_table", "rf_table", "kernel_dots", "rf_dots", "points",
           "rf_theory", "spec_task"]

NAME = "kernel-curves"
PRESET = "two-index"
RF_SMALL_RIDGE = 1e-3
CHOLESKY_MAX = 20000


@dataclass(frozen=True)
class Sizes:
    """The sizes of one scale: kernel panels n = kappa·d^ℓ (n ≤ max_samples); RF panel at
    d = rf_dim, n = rf_sample_ratio·d, N = ratio·n."""

    dims: tuple
    exponents: tuple
    kappa: float
    max_samples: int
    n_test: int
    seeds: int
    rf_dim: int
    rf_sample_ratio: float
    rf_width_ratios: tuple
    rf_seeds: int
    falkon_centers: int = 0


_RF_RATIOS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
SIZES = {
    "smoke": Sizes(dims=(16,), exponents=(1.0, 1.5), kappa=1.0, max_samples=64, n_test=2000,
                   seeds=5, rf_dim=40, rf_sample_ratio=2.0, rf_width_ratios=(0.25, 3.0),
                   rf_seeds=5),
    "default": Sizes(dims=(16, 32, 64), exponents=(1.0, 1.5, 2.0, 2.5), kappa=1.0,
                     max_samples=6000, n_test=4000, seeds=3, rf_dim=100, rf_sample_ratio=2.0,
                     rf_width_ratios=_RF_RATIOS, rf_seeds=3),
    "paper": Sizes(dims=(16, 32, 64, 128), exponents=(1.0, 1.5, 2.0, 2.5), kappa=1.0,
                   max_samples=40000, n_test=10000, seeds=5, rf_dim=200, rf_sample_ratio=2.0,
                   rf_width_ratios=_RF_RATIOS, rf_seeds=5, falkon_centers=8000),
}

SCALES = {name: (f"kernels {', '.join(KINDS)}: d ∈ {list(s.dims)}, n = {s.kappa:g}·d^ℓ, "
                 f"ℓ ∈ {list(s.exponents)} (n ≤ {s.max_samples}), test n = {s.n_test}, "
                 f"{s.seeds} seeds; RF ridge: d = {s.rf_dim}, n = {s.rf_sample_ratio:g}d, "
                 f"N/n ∈ {list(s.rf_width_ratios)}, {s.rf_seeds} seeds")
          for name, s in SIZES.items()}


def _kernel_n(sizes: Sizes, dim: int) -> list[int]:
    values = {int(round(sizes.kappa * dim ** ell)) for ell in sizes.exponents}
    return sorted(n for n in values if n <= sizes.max_samples)


def _kernel_specs(sizes: Sizes) -> list[dict]:
    specs = []
    for kind in KINDS:
        ridge = kernel_ridge_selection(kind)
        for dim in sizes.dims:
            task = {"name": "multi_index", "dim": dim, "preset": PRESET}
            n_values = _kernel_n(sizes, dim)
            exact = [n for n in n_values if n <= CHOLESKY_MAX]
            for suffix, values, extra in (("", exact, {"method": "cholesky"}),
                                          ("-falkon", [n for n in n_values if n > CHOLESKY_MAX],
                                           {"method": "falkon",
                                            "n_centers": sizes.falkon_centers})):
                if values:
                    specs.append({"name": f"kc-{kind}-d{dim}{suffix}",
                                  "description": f"{kind} kernel ridge, d = {dim}, n = d^ℓ",
                                  "task": task, "regime": [{"name": "kernel", "kind": kind,
                                                            "activation": "relu",
                                                            "ridge": ridge, **extra}],
                                  "sweep": {"n_train": values, "n_test": sizes.n_test,
                                            "seeds": sizes.seeds}})
    return specs


def _rf_specs(sizes: Sizes) -> list[dict]:
    dim = sizes.rf_dim
    n = int(round(sizes.rf_sample_ratio * dim))
    widths = sorted({max(1, int(round(r * n))) for r in sizes.rf_width_ratios})
    task = {"name": "single_neuron", "dim": dim, "activation": "relu"}
    base = {"name": "random_features", "activation": "relu", "offset": True, "width": widths}
    specs = []
    for label, ridge in (("small", RF_SMALL_RIDGE),
                         ("validated", "auto")):
        specs.append({"name": f"kc-rfridge-{label}",
                      "description": f"RF ridge regression, {label} ridge, n = {n}, d = {dim}",
                      "task": task, "regime": [{**base, "ridge": ridge}],
                      "sweep": {"n_train": [n], "n_test": 1000, "seeds": sizes.rf_seeds}})
    return specs


def sweeps(scale: str) -> list[dict]:
    """Kernel specs per (kind, d) and the two RF-ridge specs (small and validated ridge)."""
    sizes = SIZES[scale]
    return _kernel_specs(sizes) + _rf_specs(sizes)


def run_cost(run) -> float:
    """Relative cost of a run for the progress ETA: kernel ridge ∝ grid size · n³, RF ∝ N·n."""
    n = float(run.n_train or 0)
    if run.regime == "kernel":
        return len(RIDGE_EXPONENTS) * n ** 3 / 1e6
    return float(dict(run.regime_params).get("width", 1)) * n / 1e3


# ----------------------------------------------------------------------------- theory inputs

def degree_energies(task) -> tuple:
    """e_k = Σ_{|α|=k} c_α² α! of a multi-index task (Hermite-degree energies), k = 0..p."""
    energies = [0.0] * (task.degree + 1)
    for alpha, c in task.coefficients:
        energies[sum(alpha)] += c * c * math.prod(math.factorial(a) for a in alpha)
    return tuple(energies)


@functools.lru_cache(maxsize=4096)
def _kernel_theory(n: int, dim: int, kind: str, ridge: float, energies: tuple) -> float:
    return float(kernel_ridge_risk(n, dim, kernel_profile(kind), energies, ridge=ridge))


def target_split(task) -> tuple[float, float, float]:
    """(F₁², F*², Var y) from the task's exact moments: F₁² = ‖E[y x]‖², F*² = Var y − F₁²."""
    variance = float(task.signal_second_moment()) - float(task.target_mean()) ** 2
    linear = float((task.linear_moment() ** 2).sum())
    return linear, variance - linear, variance


# ----------------------------------------------------------------------------- data

def _runs(frames: dict, prefix: str) -> pd.DataFrame:
    parts = [frame.assign(sweep=name) for name, frame in frames.items()
             if name.startswith(prefix) and not frame.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def spec_task(scale: str, kind_prefix: str, seed: int):
    """The task instance that seed ``seed`` of the first sweep named ``kind_prefix…`` used."""
    spec = next(s for s in sweeps(scale) if s["name"].startswith(kind_prefix))
    return sweep_task(spec, int(seed))


def kernel_table(frames: dict, scale: str) -> pd.DataFrame:
    """One row per kernel run: kind, d, n, ℓ, seed, risk, validated ridge, theory at that
    ridge, the staircase value and the relative gap (risk − theory)/theory."""
    runs = _runs(frames, "kc-")
    runs = runs[runs["sweep"].str.match(r"kc-(rf|ntk)-d")] if len(runs) else runs
    rows = []
    for row in runs.itertuples(index=False):
        task = spec_task(scale, f"kc-{row.kind}-d{int(row.dim)}", row.seed)
        energies = degree_energies(task)
        n, dim = int(row.n_train), int(row.dim)
        theory = _kernel_theory(n, dim, row.kind, float(row.selected_ridge), energies)
        risk = float(row.test_risk) / float(task.null_risk)
        rows.append({"kind": row.kind, "dim": dim, "n_train": n, "seed": int(row.seed),
                     "ell": math.log(n) / math.log(dim), "risk": risk, "theory": theory,
                     "staircase": float(staircase_risk(n, dim, energies)),
                     "gap": risk / theory - 1.0, "ridge": float(row.selected_ridge),
                     "at_edge": float(row.selection_at_edge),
                     "floor_edge": float(edge_side(row.kind, float(row.selected_ridge))
                                         == "floor"),
                     "null_edge": float(edge_side(row.kind, float(row.selected_ridge))
                                        == "null"),
                     "converged": float(getattr(row, "converged", 1.0))})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=64)
def rf_theory(width_ratios: tuple, sample_ratio: float, rule: str, linear: float,
               nonlinear: float) -> tuple:
    """Mei–Montanari risk at ψ₁ = width_ratios (one vectorized call; cached): ridge
    RF_SMALL_RIDGE (rule "small") or the optimal ridge (rule "validated")."""
    psi1 = np.asarray(width_ratios, dtype=np.float64)
    kwargs = dict(activation="relu", linear_energy=linear, nonlinear_energy=nonlinear)
    if rule == "validated":
        risk, _ = random_features_optimal_ridge_risk(psi1, sample_ratio, **kwargs)
    else:
        risk = random_features_ridge_risk(psi1, sample_ratio, ridge=RF_SMALL_RIDGE, **kwargs)
    return tuple(float(v) for v in np.atleast_1d(risk))


def rf_table(frames: dict, scale: str) -> pd.DataFrame:
    """One row per RF-ridge run: ridge rule, N/n, seed, risk / Var y, Mei–Montanari theory."""
    runs = _runs(frames, "kc-rfridge-")
    if runs.empty:
        return pd.DataFrame()
    sizes = SIZES[scale]
    linear, nonlinear, variance = target_split(spec_task(scale, "kc-rfridge-small", 0))
    runs = runs.assign(rule=np.where(runs["sweep"].str.endswith("validated"), "validated",
                                     "small"))
    rows = []
    for rule, group in runs.groupby("rule"):
        dim, n = int(group["dim"].iloc[0]), int(group["n_train"].iloc[0])
        widths = tuple(sorted(int(w) for w in group["width"].unique()))
        theory = dict(zip(widths, rf_theory(tuple(w / dim for w in widths), n / dim, rule,
                                             linear, nonlinear)))
        for row in group.itertuples(index=False):
            predicted = theory[int(row.width)] / variance
            risk = float(row.population_risk) / variance
            validated = rule == "validated"
            rows.append({"ridge_rule": rule, "ratio": int(row.width) / n,
                         "width": int(row.width), "n_train": n, "dim": dim,
                         "seed": int(row.seed), "risk": risk, "theory": predicted,
                         "gap": risk / predicted - 1.0,
                         "ridge": float(row.selected_ridge) if validated else RF_SMALL_RIDGE,
                         "at_edge": float(row.selection_at_edge) if validated else 0.0,
                         "sample_ratio": sizes.rf_sample_ratio})
    return pd.DataFrame(rows)


def kernel_dots(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± s.e. over seeds of risk, theory and gap per (kind, d, n)."""
    keys = ["kind", "dim", "n_train"]
    if table.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sem", "count"])
    dots = seed_statistics(table, keys, "risk")
    for column in ("theory", "gap", "staircase", "ell", "at_edge", "floor_edge", "null_edge"):
        stats = seed_statistics(table, keys, column)
        dots[column] = stats["mean"].to_numpy()
        if column == "gap":
            dots["gap_sem"] = stats["sem"].to_numpy()
    unconverged = (table["converged"] < 1).groupby([table[k] for k in keys]).sum()
    dots["unconverged"] = unconverged.to_numpy()
    finite_d = 0.5 / np.sqrt(dots["dim"].astype(float))
    resolved = dots["gap_sem"] <= finite_d
    within = dots["gap"].abs() <= 2 * dots["gap_sem"] + finite_d
    dots["applies"] = np.where(~within, "no", np.where(resolved, "yes", "unresolved"))
    return dots


def rf_dots(table: pd.DataFrame) -> pd.DataFrame:
    """RF-ridge dots per (ridge rule, N/n): mean ± s.e. over seeds of risk, theory, gap, ridge."""
    keys = ["ridge_rule", "ratio"]
    if table.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sem", "count"])
    dots = seed_statistics(table, keys, "risk")
    for column in ("theory", "gap", "ridge", "at_edge"):
        stats = seed_statistics(table, keys, column)
        dots[column] = stats["mean"].to_numpy()
        if column == "gap":
            dots["gap_sem"] = stats["sem"].to_numpy()
    return dots


def points(frames: dict, scale: str) -> pd.DataFrame:
    """The figure's dots: kernel risks (panels a, b; x = ℓ) and RF ridge risks (panel c)."""
    kernel = kernel_dots(kernel_table(frames, scale))
    rf = rf_dots(rf_table(frames, scale))
    parts = [kernel.assign(panel=kernel["kind"] if len(kernel) else [], x=kernel.get("ell"),
                           y=kernel["mean"]),
             rf.assign(panel="rf_ridge_" + rf["ridge_rule"].astype(str) if len(rf) else [],
                       x=rf.get("ratio"), y=rf["mean"])]
    return pd.concat(parts, ignore_index=True)
