"""Data reduction of the yehudai-shamir study: required widths, growth fits, minimal heads.

Private helper of :mod:`lazylab.studies.yehudai_shamir` (the study module holds sizes, sweeps,
figure and summary). All risks here are normalized by E f*² = ‖w*‖²/2 (b* = 0, no offset: the
theorem's model), so the theorem's absolute threshold 1/50 is ε_abs(d) = 1/(25 d²) at ‖w*‖ = d.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from lazylab.gaussian import dual_matrix
from lazylab.experiments.execute import limited_threads
from lazylab.experiments.executors import process_pool
from lazylab.experiments.progress import step_bar
from lazylab.studies._curves import threshold_crossing
from lazylab.theory.minimal_head import minimal_max_head, ridge_path_head_bounds
from lazylab.theory.single_neuron_harmonics import relu_features_required_width

FIT_GAP = 1e-10
"""A neuron fit whose training loss / E f*² is ≤ FIT_GAP is converged whatever its optimizer's
criterion says: the loss is ≥ 0, so its optimality gap is at most the loss itself. (The sample
criterion, a relative change of window-mean losses, cannot certify a loss that has fallen to
round-off, ~10⁻³²: there its relative changes are O(1).)"""
SGD_TOL = 1e-12
"""Tolerance of the SGD runs' certificate. These runs train on n ≤ 20,000 fixed samples, so the
solver judges them on the full training loss L (``lazylab.solvers.convergence``): the criterion
is min(largest relative change of L over 3 checks, L / Var y). A run stuck at a spurious minimum
(a positive-label sample on the neuron's dead side: its gradient is exactly 0) has a constant L
and meets it; a run still creeping down (relative changes 10⁻³–10⁻¹ per check near a kink)
does not; a run that fits its samples meets it through L / Var y ≤ 10⁻¹², below
:data:`FIT_GAP` (E f*² ≥ Var y), so it is counted "fitted", not "stationary"."""
OUTCOMES = ("fitted", "stationary", "unconverged")
"""A neuron run: training loss ≤ FIT_GAP; certified by its optimizer's criterion at a larger loss
(a spurious minimum of the empirical loss, or for GD a stationary point); neither."""

ABSOLUTE = "absolute"
"""Label of the theorem's threshold: risk ≤ 1/50 with ‖w*‖ = d, i.e. ε_abs(d) = 1/(25 d²)."""


def absolute_epsilon(dim) -> float:
    """ε_abs(d) = (1/50)/(E f*²) = 1/(25 d²) for ‖w*‖ = d, b* = 0."""
    return 1.0 / (25.0 * float(dim) ** 2)


def epsilon_of(label, dim) -> float:
    """The relative threshold ε of a curve label: 1/(25d²) for the theorem's absolute one."""
    return absolute_epsilon(dim) if label == ABSOLUTE else float(label)


@functools.lru_cache(maxsize=1024)
def predicted_width(label, dim: int) -> float:
    """The harmonic-count (deterministic-equivalent) prediction of the r reaching ε; d ≥ 3."""
    if dim < 3:
        return math.nan
    degrees = 60 if label == ABSOLUTE else 40
    return relu_features_required_width(epsilon_of(label, dim), int(dim), max_degree=degrees)


def rf_table(frames: dict) -> pd.DataFrame:
    """One row per RF run: dim, width, seed and the risk normalized by E f*²."""
    parts = [f for name, f in frames.items() if name.startswith("ys-rf-") and not f.empty]
    if not parts:
        return pd.DataFrame(columns=["dim", "width", "seed", "risk"])
    data = pd.concat(parts, ignore_index=True)
    second = data["weight_norm"].astype(float) ** 2 / 2.0
    return pd.DataFrame({"dim": data["dim"].astype(int), "width": data["width"].astype(int),
                         "seed": data["seed"].astype(int),
                         "risk": data["population_risk"].astype(float) / second})


def required_widths(rf: pd.DataFrame, labels) -> pd.DataFrame:
    """Per (ε, d, seed): the r at which that seed's curve reaches ε (inf if never)."""
    rows = []
    for (dim, seed), curve in rf.groupby(["dim", "seed"]):
        for label in labels:
            rows.append({"epsilon": str(label), "dim": int(dim), "seed": int(seed),
                         "required": threshold_crossing(curve["width"], curve["risk"],
                                                        epsilon_of(label, dim)),
                         "max_width": int(curve["width"].max())})
    return pd.DataFrame(rows)


def requirement_means(needs: pd.DataFrame) -> pd.DataFrame:
    """Per (ε, d): geometric mean of the required r over seeds, the s.e. of its log, seeds,
    censored seeds (not reached by the largest width), and the harmonic-count prediction."""
    rows = []
    for (label, dim), group in needs.groupby(["epsilon", "dim"]):
        logs = np.log(group["required"].to_numpy(float))
        finite = np.isfinite(logs)
        sem = float(logs.std(ddof=1) / math.sqrt(logs.size)) if finite.all() and logs.size > 1 \
            else 0.0
        rows.append({"epsilon": label, "dim": int(dim), "seeds": int(logs.size),
                     "censored": int((~finite).sum()), "max_width": int(group["max_width"].max()),
                     "required": float(np.exp(logs.mean())) if finite.all() else math.inf,
                     "log_sem": sem, "theory": predicted_width(label, int(dim))})
    return pd.DataFrame(rows)


def growth_fit(means: pd.DataFrame, minimum_dim: int = 4) -> dict | None:
    """Power law log r = b + k·log d and exponential log r = a + c·d on the uncensored d ≥
    minimum_dim: k with a 95 % t-interval, c, both residual sums of squares, the local slope of
    the two largest d, and the number of points. None below 3 points."""
    rows = means[(means["dim"] >= minimum_dim) & np.isfinite(means["required"])]
    rows = rows.sort_values("dim")
    if len(rows) < 3:
        return None
    log_d, dims = np.log(rows["dim"].to_numpy(float)), rows["dim"].to_numpy(float)
    log_r = np.log(rows["required"].to_numpy(float))
    power = stats.linregress(log_d, log_r)
    exponential = stats.linregress(dims, log_r)
    half = stats.t.ppf(0.975, len(rows) - 2) * power.stderr
    rss = [float(np.sum((log_r - f.intercept - f.slope * x) ** 2))
           for f, x in ((power, log_d), (exponential, dims))]
    local = float((log_r[-1] - log_r[-2]) / (log_d[-1] - log_d[-2]))
    return {"k": float(power.slope), "k_low": float(power.slope - half),
            "k_high": float(power.slope + half), "rate": float(exponential.slope),
            "rss_power": rss[0], "rss_exponential": rss[1], "local_k": local,
            "points": len(rows), "dims": (int(dims[0]), int(dims[-1]))}


def _feature_moments(dim: int, width: int, seed: int):
    """Exact U = E f fᵀ, V = E f f* and E f*² for a unit w* (head in units of ‖w*‖)."""
    rng = np.random.default_rng([seed, dim, width, 50])
    weights = torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))
    target = torch.zeros(1, dim, dtype=torch.float64)
    target[0, 0] = 1.0
    gram = dual_matrix("relu", weights, None).numpy()
    cross = dual_matrix("relu", weights, None, "relu", target, None).numpy()[:, 0]
    return gram, cross, 0.5


HEAD_TOLERANCE, HEAD_ITERATIONS = 2e-2, 3000
"""Relative width of the certified bracket of each minimal head, and FISTA iterations per box."""
HEAD_COLUMNS = ("lower", "upper", "ridge_lower", "ridge_upper")
HEAD_KEYS = ("epsilon", "dim", "width", "seed")
POOL_MIN_WORK = 2e9
"""Σ width³ of the programs still to compute above which they run in a process pool (≈ 30 s
of eigendecompositions on one core; a spawned worker takes a few seconds to start)."""

_HEADS: dict[tuple, dict] = {}
"""The programs computed in this process, (label, d, r, seed) → :func:`minimal_head_scale`."""


def minimal_head_scale(label, dim: int, width: int, seed: int) -> dict:
    """min r·max|u_i|/‖w*‖ over heads with risk/E f*² ≤ ε, for one draw of r features.

    Certified bracket from :func:`minimal_max_head`, and the ridge-path sandwich, both on one
    eigendecomposition of the Gram; NaN entries when this draw cannot reach ε."""
    gram, cross, second = _feature_moments(int(dim), int(width), int(seed))
    tau = epsilon_of(label, dim) * second
    spectrum = np.linalg.eigh(gram)
    try:
        exact = minimal_max_head(gram, cross, second, tau, relative_tolerance=HEAD_TOLERANCE,
                                 iterations=HEAD_ITERATIONS, spectrum=spectrum)
        ridge_low, ridge_high = ridge_path_head_bounds(gram, cross, second, tau,
                                                       spectrum=spectrum)
    except ValueError:
        return dict.fromkeys(HEAD_COLUMNS, math.nan)
    return {"lower": width * exact.lower, "upper": width * exact.upper,
            "ridge_lower": width * ridge_low, "ridge_upper": width * ridge_high}


def _one_thread_head(key: tuple) -> dict:
    with limited_threads(1):
        return minimal_head_scale(*key)


def _read_heads(path: Path) -> dict[tuple, dict]:
    """The programs stored in ``path`` at this module's tolerance and budget."""
    if not path.exists():
        return {}
    table = pd.read_csv(path, dtype={"epsilon": str})
    table = table[(table["tolerance"] == HEAD_TOLERANCE) & (table["iterations"] == HEAD_ITERATIONS)]
    return {(row.epsilon, int(row.dim), int(row.width), int(row.seed)):
            {name: float(getattr(row, name)) for name in HEAD_COLUMNS}
            for row in table.itertuples(index=False)}


def _write_heads(path: Path, heads: dict[tuple, dict]) -> None:
    rows = [{**dict(zip(HEAD_KEYS, key)), "tolerance": HEAD_TOLERANCE,
             "iterations": HEAD_ITERATIONS, **value} for key, value in heads.items()]
    pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)


def _compute_heads(keys: list[tuple], workers: int) -> dict[tuple, dict]:
    """:func:`minimal_head_scale` of every key, in a spawned process pool whose workers die with
    this process (:func:`lazylab.experiments.executors.process_pool`; one BLAS thread per
    worker) when there are ``workers`` > 1 and the work exceeds :data:`POOL_MIN_WORK`."""
    progress, close = step_bar(f"yehudai-shamir: {len(keys)} minimal heads", delay=2.0)
    done: dict[tuple, dict] = {}
    try:
        if workers > 1 and sum(float(key[2]) ** 3 for key in keys) > POOL_MIN_WORK:
            with process_pool(workers) as pool:
                futures = {pool.submit(_one_thread_head, key): key for key in keys}
                for future in concurrent.futures.as_completed(futures):
                    done[futures[future]] = future.result()
                    progress(len(done), len(keys))
        else:
            for key in keys:
                done[key] = minimal_head_scale(*key)
                progress(len(done), len(keys))
    finally:
        close()
    return done


def head_scales(means: pd.DataFrame, widths, seeds: int, cap: int, *,
                cache: Path | None = None, workers: int | None = None) -> pd.DataFrame:
    """Per (ε, d, seed): the minimal head at the smallest grid width ≥ 2× the required r.

    Each program (:func:`minimal_head_scale`) is computed once per process, and once per
    ``cache`` file: a CSV of the programs already solved (keyed by ε, d, r, seed, with the
    tolerance and budget), read first and appended to. Programs still missing run on
    ``workers`` processes (default: the cores this process may use)."""
    keys = []
    grid = np.asarray(sorted(widths))
    for _, row in means.iterrows():
        larger = grid[grid >= 2 * row["required"]] if math.isfinite(row["required"]) else []
        if len(larger) == 0 or larger[0] > cap:
            continue
        keys += [(str(row["epsilon"]), int(row["dim"]), int(larger[0]), seed)
                 for seed in range(seeds)]
    stored = {} if cache is None else _read_heads(Path(cache))
    _HEADS.update(stored)
    missing = [key for key in dict.fromkeys(keys) if key not in _HEADS]
    if missing:
        workers = len(os.sched_getaffinity(0)) if workers is None else workers
        _HEADS.update(_compute_heads(missing, workers))
    unsaved = {key: _HEADS[key] for key in dict.fromkeys(keys) if key not in stored}
    if cache is not None and unsaved:      # solved here, or earlier in this process
        _write_heads(Path(cache), unsaved)
    return pd.DataFrame([{**dict(zip(HEAD_KEYS, key)), **_HEADS[key]} for key in keys],
                        columns=[*HEAD_KEYS, *HEAD_COLUMNS])


def _outcome(train: pd.Series, converged: pd.Series) -> pd.Series:
    """:data:`OUTCOMES` of each run from its train loss / E f*² and its certificate (0/1)."""
    return pd.Series(np.where(train <= FIT_GAP, "fitted",
                              np.where(converged >= 1, "stationary", "unconverged")),
                     index=train.index)


def neuron_table(frames: dict) -> pd.DataFrame:
    """GD (n = ∞) and SGD (n samples) on one neuron: risk and train loss / E f*², n/d, the
    optimizer's certificate and the run's outcome (:data:`OUTCOMES`)."""
    parts = []
    for name, frame in frames.items():
        if not (name.startswith("ys-gd-") or name.startswith("ys-sgd-")) or frame.empty:
            continue
        second = frame["weight_norm"].astype(float) ** 2 / 2.0
        n = pd.to_numeric(frame["n_train"], errors="coerce") if name.startswith("ys-sgd-") \
            else np.nan
        train = (frame["final_train_loss"].astype(float) if "final_train_loss" in frame
                 else pd.Series(np.nan, index=frame.index)) / second
        converged = (frame["converged"].astype(float) if "converged" in frame
                     else pd.Series(0.0, index=frame.index))
        parts.append(pd.DataFrame({
            "method": "gd" if name.startswith("ys-gd-") else "sgd",
            "dim": frame["dim"].astype(int), "seed": frame["seed"].astype(int),
            "ratio": n / frame["dim"].astype(float),
            "risk": frame["population_risk"].astype(float) / second,
            "train": train, "converged": converged,
            "steps": frame["steps"].astype(float) if "steps" in frame else np.nan,
            "outcome": _outcome(train, converged)}))
    if not parts:
        return pd.DataFrame(columns=["method", "dim", "seed", "ratio", "risk", "train",
                                     "converged", "steps", "outcome"])
    return pd.concat(parts, ignore_index=True)
