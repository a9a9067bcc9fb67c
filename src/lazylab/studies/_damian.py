"""Data helpers of the damian-onestep study: per-seed tables, thresholds, slope intervals.

Statistics only (the mathematics is in :mod:`lazylab.theory.kernel_threshold`):
* per seed, the n needed to reach a threshold (log–log interpolation on that seed's curve);
* the exponent of n needed ∝ d^s by least squares over every (d, seed) point that reached it,
  with the two-sided 95 % t interval of the slope (n − 2 degrees of freedom).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermeval
from scipy import stats

from lazylab.solvers.kernel_ridge import CHOLESKY_MAX_SAMPLES
from lazylab.studies._curves import threshold_crossing
from lazylab.studies._kernel_baselines import RIDGE_EXPONENTS, edge_side
from lazylab.tasks import MULTI_INDEX_PRESETS
from lazylab.theory.kernel_threshold import (best_kernel_ridge_risk, homogeneous_floor,
                                             kernel_samples_needed)

THRESHOLD = 0.1
"""Excess risk / Var y that defines 'learned' in panels (c), (d): below every top-degree energy."""
TARGETS = {"single-he2": {"rank": 1, "degree": 2}, "two-index": {"rank": 2, "degree": 4}}
ONE_STEP_RIDGES = tuple(np.geomspace(1e-8, 1e3, 12).tolist())
VALIDATION_SIZE = 2000
FLOOR = 0.25
"""The two-index target's degree-4 energy: the kernels' risk for d² ≪ n ≪ d⁴."""
NYSTROM = "-nystrom"
"""Spec-name suffix of the Nyström checks: FALKON with M = n/4 centers at the largest n that also
has an exact fit (paper scale, every d whose kernels go beyond exact kernel ridge)."""
_LABELS = {"one_step": "OneStep (Algorithm 1)", "kernel_ntk": "NTK kernel ridge",
           "kernel_rf": "RF kernel ridge (RF at infinite width)"}
_COLORS = {"one_step": 3, "kernel_ntk": 1, "kernel_rf": 0}

__all__ = ["THRESHOLD", "TARGETS", "FLOOR", "ONE_STEP_RIDGES",
           "VALIDATION_SIZE", "NYSTROM", "PARTS", "degree_two_span", "target_energies",
           "per_seed_table", "needs_per_seed", "slope_interval", "method_name", "target_function"]


def target_energies(preset: str) -> list[float]:
    """e_k = Σ_{|α| = k} c_α² α! of a multi-index preset (its Hermite-degree energies)."""
    coefficients = MULTI_INDEX_PRESETS[preset]
    top = max(sum(alpha) for alpha in coefficients)
    energies = [0.0] * (top + 1)
    for alpha, value in coefficients.items():
        energies[sum(alpha)] += value**2 * math.prod(math.factorial(a) for a in alpha)
    return energies


def method_name(row) -> str:
    """"one_step", "kernel_ntk", "kernel_rf" (a kernel run is named by its kind)."""
    return f"kernel_{row['kind']}" if row["regime"] == "kernel" else str(row["regime"])


def degree_two_span(dim):
    """(d + 1)(d + 2)/2, the polynomials of degree ≤ 2 in d variables: M Nyström centers' kernel
    functions span at most M dimensions, so FALKON needs M ≥ this to hold all of degree ≤ 2."""
    return (dim + 1) * (dim + 2) // 2


PARTS = ("curves", "short", "checks")
"""per_seed_table's parts: the curves' runs; FALKON runs with fewer centers than
``degree_two_span`` (left out of the curves: they cannot hold degree 2, so their risk is not
the kernel's); the Nyström checks' runs (frames named ``…NYSTROM``)."""


def per_seed_table(frames: dict, part: str = "curves") -> pd.DataFrame:
    """One row per run of ``part`` (``PARTS``): target, dim, method, n_train, seed, risk (excess
    risk / Var y), the ridge chosen, whether it is a grid edge, whether the fit converged, the
    Nyström centers of a FALKON fit (NaN for the others)."""
    columns = ["target", "dim", "method", "n_train", "seed", "risk_normalized", "ridge",
               "at_edge", "converged", "centers"]
    parts = []
    for name, frame in frames.items():
        if frame.empty or name.endswith(NYSTROM) != (part == "checks"):
            continue
        table = frame.copy()
        if "kind" not in table:
            table["kind"] = ""
        falkon = table["method"] == "falkon" if "method" in table else False
        table["centers"] = table["n_centers"].where(falkon) if "n_centers" in table else np.nan
        table["target"] = table["preset"]
        table["method"] = table.apply(method_name, axis=1)
        table["ridge"] = table.get("selected_ridge", table.get("ridge_chosen"))
        if "ridge_chosen" in table:
            table["ridge"] = table["ridge"].fillna(table["ridge_chosen"])
        table["at_edge"] = table.get("selection_at_edge", np.nan)
        table["converged"] = table.get("converged", 1.0)
        parts.append(table.reindex(columns=columns))
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["dim"] = out["dim"].astype(int)
    if part == "checks":
        return out
    short = (out["centers"] < degree_two_span(out["dim"])).to_numpy()
    return out[short if part == "short" else ~short].reset_index(drop=True)


def nystrom_gaps(frames: dict) -> pd.DataFrame:
    """Per (target, dim, method, n): FALKON (M = n/4, the checks) minus exact kernel ridge on the
    same samples (run seeds paired): mean, s.e. over seeds, seeds, the exact mean."""
    checks, exact = per_seed_table(frames, "checks"), per_seed_table(frames)
    keys = ["target", "dim", "method", "n_train", "seed"]
    paired = checks.merge(exact, on=keys, suffixes=("_falkon", "_exact"))
    rows = []
    for (target, dim, method, n), group in paired.groupby(keys[:-1]):
        gap = (group["risk_normalized_falkon"] - group["risk_normalized_exact"]).to_numpy(float)
        rows.append({"target": target, "dim": int(dim), "method": method, "n_train": int(n),
                     "gap": float(gap.mean()), "sem": float(gap.std(ddof=1) / math.sqrt(gap.size))
                     if gap.size > 1 else math.nan, "seeds": int(gap.size),
                     "exact": float(group["risk_normalized_exact"].mean())})
    return pd.DataFrame(rows, columns=["target", "dim", "method", "n_train", "gap", "sem",
                                       "seeds", "exact"])


def needs_per_seed(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per (target, dim, method, seed): n needed (inf if not reached), the largest n."""
    rows = []
    for (target, dim, method, seed), group in table.groupby(["target", "dim", "method", "seed"]):
        rows.append({"target": target, "dim": int(dim), "method": method, "seed": seed,
                     "n_needed": threshold_crossing(group["n_train"], group["risk_normalized"],
                                                    threshold),
                     "n_max": float(group["n_train"].max())})
    return pd.DataFrame(rows, columns=["target", "dim", "method", "seed", "n_needed", "n_max"])


def slope_interval(dims, values, level: float = 0.95) -> tuple[float, float, int] | None:
    """(slope, half-width of its ``level`` t interval, points) of log values on log dims over
    the finite points; None with fewer than two distinct dims (half-width inf with 2 points)."""
    dims = np.asarray(dims, float)
    values = np.asarray(values, float)
    keep = np.isfinite(values) & (values > 0)
    x, y = np.log(dims[keep]), np.log(values[keep])
    if np.unique(x).size < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    if x.size <= 2:
        return float(slope), math.inf, int(x.size)
    residual = y - (intercept + slope * x)
    se = math.sqrt(float(residual @ residual) / (x.size - 2) / float(((x - x.mean())**2).sum()))
    return float(slope), float(stats.t.ppf(0.5 + level / 2, x.size - 2) * se), int(x.size)


def target_function(preset: str, degree: int | None = None):
    """g(z) = Σ_α c_α Π_j He_{α_j}(z_j) of a multi-index preset (only |α| = degree when
    given), for z (m, r) float64."""
    coefficients = {alpha: value for alpha, value in MULTI_INDEX_PRESETS[preset].items()
                    if degree is None or sum(alpha) == degree}

    def evaluate(z):
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros(z.shape[0])
        for alpha, value in coefficients.items():
            term = np.full(z.shape[0], value)
            for j, degree in enumerate(alpha):
                term = term * hermeval(z[:, j], [0.0] * degree + [1.0])
            out += term
        return out
    return evaluate


@functools.lru_cache(maxsize=64)
def _floors(target: str, dim: int) -> tuple:
    """φ_k: the 1-homogeneity floor of each Hermite degree's part of the target (the bias-free
    ReLU kernels' RKHS holds only r·g(θ); :func:`lazylab.theory.homogeneous_floor`)."""
    rank = TARGETS[target]["rank"]
    return tuple(homogeneous_floor(target_function(target, k), dim, rank,
                                   rng=np.random.default_rng(0)) if e > 0 else 0.0
                 for k, e in enumerate(target_energies(target)))


def _theory_needs(target: str, dims, floors: bool = True) -> dict:
    """kind → n needed by the theory at each d (NTK and RF kernels, best ridge): the staircase
    deterministic equivalent, with the homogeneity floors unless ``floors`` is False."""
    energies = target_energies(target)
    return {kind: np.array([kernel_samples_needed(
        int(d), kind, energies, THRESHOLD, floors=_floors(target, int(d)) if floors else None)
        for d in dims]) for kind in ("ntk", "rf")}


def _theory_risk(target: str, dim: int, n_values, kind: str = "ntk") -> np.ndarray:
    energies = target_energies(target)
    return np.array([best_kernel_ridge_risk(int(n), dim, kind, energies,
                                            floors=_floors(target, dim)) for n in n_values])


def _theory_gaps(curves, target, dims) -> str:
    """Measured kernel risk at n = 4d² against the theory (staircase + homogeneity floors)."""
    parts = []
    for dim in dims:
        for kind in ("ntk", "rf"):
            row = curves[(curves["target"] == target) & (curves["dim"] == dim)
                         & (curves["method"] == f"kernel_{kind}")
                         & (curves["n_train"] == 4 * dim**2)]
            if len(row):
                theory = float(_theory_risk(target, dim, [4 * dim**2], kind)[0])
                parts.append(f"{kind.upper()} d = {dim}: {row['mean'].iloc[0]:.3f} ± "
                             f"{row['sem'].iloc[0]:.3f} vs {theory:.3f}")
    return ("* Kernels at n = 4d², measured vs theory (staircase + homogeneity floors): "
            + "; ".join(parts) + ".") if parts else ""


def _nystrom_text(frames: dict) -> list[str]:
    """The Nyström checks' gaps, and the FALKON fits left out of the curves (too few centers)."""
    gaps, short = nystrom_gaps(frames), per_seed_table(frames, "short")
    falkon = pd.concat([per_seed_table(frames, "checks"), short])
    lines = []
    if len(gaps):
        parts = [f"{row.target} d = {row.dim} {row.method.removeprefix('kernel_').upper()}: "
                 f"{row.gap:+.3f} ± {row.sem:.3f} (exact {row.exact:.3f}, {row.seeds} seeds)"
                 for row in gaps.itertuples()]
        n_values = ", ".join(str(n) for n in sorted(gaps["n_train"].unique()))
        above = bool(((gaps["gap"] - 2 * gaps["sem"]) > 0).any())
        lines.append(f"* Nyström check — FALKON with M = n/4 centers (the kernels' fits above "
                     f"n = {CHOLESKY_MAX_SAMPLES}) against exact kernel ridge on the same samples "
                     f"at n = {n_values}, FALKON − exact: " + "; ".join(parts) + ". "
                     + ("FALKON is above the exact fit there." if above else
                        "No gap beyond 2 s.e."))
    spans = ", ".join(f"{degree_two_span(d)} at d = {d}" for d in sorted(
        set(gaps["dim"]) | set(short["dim"])))
    if spans:
        lines.append("* The M centers' kernel functions span at most M dimensions, and the "
                     f"polynomials of degree ≤ 2 take (d + 1)(d + 2)/2 = {spans}: with fewer "
                     "centers FALKON cannot hold all of degree 2 (centers drawn from the data "
                     "favour no direction), so such fits are not the kernel's risk and are left "
                     "out of the curves, the table and the n needed.")
    if len(short):
        stats = short.groupby(["target", "dim", "method", "n_train", "centers"])
        lines.append("* Left out (M < (d + 1)(d + 2)/2; crosses in panels (a), (b)): " + "; ".join(
            f"{target} d = {dim} {method.removeprefix('kernel_').upper()} n = {n} "
            f"(M = {centers:.0f}): {group['risk_normalized'].mean():.3f}"
            for (target, dim, method, n, centers), group in stats) + ".")
    if len(falkon):
        unconverged = int((falkon["converged"].fillna(1.0) < 1).sum())
        lines.append(f"* These FALKON fits (checks and left out): {unconverged} of {len(falkon)} "
                     "unconverged.")
    return lines


def _at(curves, target, dim, method, ratio) -> str:
    row = curves[(curves["target"] == target) & (curves["dim"] == dim)
                 & (curves["method"] == method) & (curves["n_train"] == round(ratio * dim**2))]
    return "—" if row.empty else f"{row['mean'].iloc[0]:.3f} ± {row['sem'].iloc[0]:.3f}"


def _table(curves, needs, target) -> list[str]:
    lines = ["| d | method | risk at n = d² | risk at n = 4d² | n needed (reached/seeds) |",
             "|---|---|---|---|---|"]
    for _, need in needs[needs["target"] == target].sort_values(["dim", "method"]).iterrows():
        dim, method = int(need["dim"]), need["method"]
        needed = (f"> {need['n_max']:.0f}" if not math.isfinite(need["n_needed"]) else
                  f"{need['n_needed']:.0f} = {need['n_needed'] / dim**2:.2f} d² (×/÷ "
                  f"{math.exp(need['log_sem']):.2f})")
        falkon = " (FALKON)" if method != "one_step" and 4 * dim**2 > CHOLESKY_MAX_SAMPLES else ""
        lines.append(f"| {dim} | {_LABELS[method]} | {_at(curves, target, dim, method, 1)} | "
                     f"{_at(curves, target, dim, method, 4)}{falkon} | {needed} "
                     f"({need['reached']}/{need['seeds']}) |")
    return lines


def _censored(needs, target, method) -> str:
    rows = needs[(needs["target"] == target) & (needs["method"] == method)].sort_values("dim")
    reached = rows[np.isfinite(rows["n_needed"])]
    missed = rows[~np.isfinite(rows["n_needed"])]
    if missed.empty or reached.empty:
        return "" if missed.empty else " Not reached at any d by the largest n of the grid."
    last, first_missed = reached.iloc[-1], missed.iloc[0]
    bound = math.log(first_missed["n_max"] / last["n_needed"]) / math.log(
        first_missed["dim"] / last["dim"])
    return (f" Not reached at d = {', '.join(str(int(d)) for d in missed['dim'])} by the "
            f"largest n: between d = {int(last['dim'])} and {int(first_missed['dim'])} the "
            f"exponent is > {bound:.2f}.")


def _selection(table: pd.DataFrame) -> list[str]:
    kernel = table[table["method"].str.startswith("kernel")]
    sides = [edge_side(m.removeprefix("kernel_"), r) if e == 1 else ""
             for m, r, e in zip(kernel["method"], kernel["ridge"], kernel["at_edge"])]
    low, high = sides.count("floor"), sides.count("null")
    own = table[table["method"] == "one_step"]
    own_low = int(np.isclose(own["ridge"], ONE_STEP_RIDGES[0]).sum())
    own_high = int(np.isclose(own["ridge"], ONE_STEP_RIDGES[-1]).sum())
    unconverged = int((table["converged"].fillna(1.0) < 1).sum())
    return [f"Selection: kernel ridge on s·10^k, k in {list(RIDGE_EXPONENTS)} (s = E k(x, x), "
            f"the grid shared with kernel-curves) by validation ({VALIDATION_SIZE} "
            f"samples of their own stream): {len(kernel)} runs, {low} at the lowest value "
            f"(the solver's numerical floor: ridge-less is optimal, the kernel's higher degrees "
            f"act as ridge), {high} at the highest (predicting ≈ 0). OneStep's ridge on its "
            f"own 20 % split, grid 1e-8..1e3: {own_low} of {len(own)} runs at the lowest, "
            f"{own_high} at the highest. "
            f"Unconverged fits: {unconverged}. Selected kernel ridges (median per method): "
            + ", ".join(f"{m}: {g['ridge'].median():.0e}"
                        for m, g in kernel.groupby("method")) + "."]
