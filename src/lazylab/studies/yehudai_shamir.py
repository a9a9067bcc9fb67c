"""yehudai-shamir: how many random ReLU features one ReLU neuron needs, and how GD/SGD learn it
(Yehudai & Shamir 2019, THEORY.md §2.3–2.5; the paper has no experiment, this is the
illustration THEORY §2.5 suggests, measured against the harmonic-count theory).

Target (task ``single_neuron``): y = relu(w*·x), x ~ N(0, I_d), w* uniform on the sphere of radius
‖w*‖ = d (poly(d), the theorem's setting; its exact norms are [M]), b* = 0. Random features:
relu(w_i·x), w_i ~ N(0, I/d), no biases and no offset (the theorem's model Σ u_i f_i), the
population-optimal head at n = ∞ (exact dual matrices). Risks are divided by E f*² = d²/2, so
the theorem's ABSOLUTE threshold 1/50 is ε_abs(d) = 1/(25 d²); a fixed ε is a relative threshold.

Theory line (:mod:`lazylab.theory.single_neuron_harmonics`): the problem is exactly the unit
sphere's (all functions are 1-homogeneous); features fill the spherical-harmonic blocks of
degree 0, 1, 2, 4, 6, … (N_k ~ d^k/k! harmonics each), so at a fixed ε the width needed grows like
d^{ℓ(ε)}, ℓ the degree whose block must be filled, rising as ε falls; ε_abs(d) → 0 makes ℓ grow
with d, which is how super-polynomial (exponential) growth arises.

Panels: (a) RF risk against r per d with the theory; (b) the r needed against d for each ε and
for ε_abs, with the theory; (c) the MINIMAL r·max|u_i|/‖w*‖ over heads reaching ε (a certified
convex program, :func:`lazylab.theory.minimal_max_head`, on its own draws of the features at 2×
the required r; solved in a process pool while the figure is drawn, and kept in
:data:`HEADS_FILE` beside it for the next rebuild); (d) the fitted exponent k(ε) of
r ∝ d^k with 95 % intervals; (e) one trained neuron: Adam on the exact risk (n = ∞) and
minibatch Adam on n = (n/d)·d samples.
Scales: see :data:`SIZES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lazylab.studies import _yehudai_shamir as data
from lazylab.studies._yehudai_shamir import SGD_TOL
from lazylab.studies._yehudai_shamir_view import figure, summary
from lazylab.studies.base import Study

__all__ = ["STUDY", "SIZES", "SGD_TOL", "Sizes", "width_grid"]

NAME = "yehudai-shamir"
WIDTH_CAP = 16
"""At d = 2 (no harmonic theory: the circle) the RF widths go to WIDTH_CAP·d²."""
@dataclass(frozen=True)
class Sizes:
    """The sizes of one scale."""

    dims: tuple
    max_width: int
    rf_seeds: int
    epsilons: tuple             # fixed relative thresholds (risk / E f*²); plus ε_abs(d)
    head_cap: int               # panel (c): largest width of the minimal-head program
    sgd_ratios: tuple           # n/d of the SGD runs
    nn_seeds: int
    sgd_steps: int              # step budget of the SGD runs at n ≥ 4d
    gd_steps: int
    sgd_few_steps: int = 20000  # step budget at n < 4d (slow crawls along a kink, see SGD_TOL)


SIZES = {
    "smoke": Sizes(dims=(2, 4, 6), max_width=256, rf_seeds=3, epsilons=(0.1, 0.03),
                   head_cap=128, sgd_ratios=(1, 4), nn_seeds=3, sgd_steps=2000, gd_steps=300,
                   sgd_few_steps=4000),
    "default": Sizes(dims=tuple(range(2, 25, 2)), max_width=5793, rf_seeds=3,
                     epsilons=(0.1, 0.05, 0.03, 0.02), head_cap=512, sgd_ratios=(1, 2, 4, 8),
                     nn_seeds=3, sgd_steps=2000, gd_steps=400),
    "paper": Sizes(dims=tuple(range(2, 33, 2)), max_width=16384, rf_seeds=5,
                   epsilons=(0.1, 0.05, 0.03, 0.02, 0.015), head_cap=2048,
                   sgd_ratios=(1, 2, 4, 8), nn_seeds=5, sgd_steps=3000, gd_steps=600),
}


def width_grid(dim: int, sizes: Sizes) -> list[int]:
    """√2-spaced widths 1 … cap(d): twice the harmonic-count prediction at the smallest ε and,
    where that fits under max_width, at ε_abs; at least 64 and at most max_width."""
    targets = [2 * data.predicted_width(str(min(sizes.epsilons)), dim)]
    absolute = data.predicted_width(data.ABSOLUTE, dim)
    if absolute <= sizes.max_width:
        targets.append(2 * absolute)
    finite = [t for t in targets if math.isfinite(t)]
    cap = min(max([64, *finite]) if dim >= 3 else WIDTH_CAP * dim ** 2, sizes.max_width)
    grid = sorted({int(round(2 ** (k / 2))) for k in range(0, 2 * 15 + 1)})
    return [w for w in grid if w <= cap * 2 ** 0.25]


SCALES = {name: (f"d ∈ {list(s.dims)}; RF widths √2-spaced up to min({s.max_width}, 2× the "
                 f"theory at the smallest ε and at ε_abs where affordable), {s.rf_seeds} draws of "
                 f"the features; ε ∈ {list(s.epsilons)} and ε_abs = 1/(25d²); minimal heads up to "
                 f"r = {s.head_cap}; one neuron: Adam on the exact risk (to tolerance 1e-4, at "
                 f"most {s.gd_steps} steps) and "
                 f"minibatch Adam on n/d ∈ {list(s.sgd_ratios)} (to tolerance {SGD_TOL:g} or train "
                 f"loss / E f*² ≤ {data.FIT_GAP:g}; at most {s.sgd_few_steps} steps at n < 4d, "
                 f"{s.sgd_steps} at n ≥ 4d), {s.nn_seeds} seeds")
          for name, s in SIZES.items()}


def _task(dim: int) -> dict:
    return {"name": "single_neuron", "dim": dim, "weight_norm": float(dim), "bias": 0.0,
            "activation": "relu"}


def _neuron(sizes: Sizes, population: bool, samples: int = 0, dim: int = 1) -> dict:
    common = {"name": "network", "activation": "relu", "width": 1, "biases": False,
              "offset": True, "optimizer": "adam", "head_init": "ones"}
    if population:
        return {**common, "training": "population", "learning_rate": 0.1,
                "max_steps": sizes.gd_steps, "tol": 1e-4}
    budget = sizes.sgd_steps if samples >= 4 * dim else sizes.sgd_few_steps
    return {**common, "learning_rate": 0.05, "max_steps": budget, "tol": SGD_TOL,
            "batch_size": min(64, samples), "schedule": "paper"}


def sweeps(scale: str) -> list[dict]:
    """Per d: exact RF over the width grid; Adam on the exact risk; minibatch Adam on n samples."""
    sizes = SIZES[scale]
    specs = []
    for dim in sizes.dims:
        rf = {"name": "random_features", "activation": "relu", "biases": False,
              "width": width_grid(dim, sizes), "offset": False, "ridge": 0.0}
        specs.append({"name": f"ys-rf-d{dim}", "description": f"exact RF risk, d = {dim}",
                      "task": _task(dim), "regime": [rf],
                      "sweep": {"n_train": "population", "seeds": sizes.rf_seeds}})
        specs.append({"name": f"ys-gd-d{dim}", "description": f"one neuron, GD at n = ∞, d = {dim}",
                      "task": _task(dim), "regime": [_neuron(sizes, True)],
                      "sweep": {"n_train": "population", "seeds": sizes.nn_seeds}})
        for ratio in sizes.sgd_ratios:
            samples = int(ratio * dim)
            specs.append({"name": f"ys-sgd-d{dim}-n{samples}",
                          "description": f"one neuron, minibatch Adam on {samples} samples",
                          "task": _task(dim), "regime": [_neuron(sizes, False, samples, dim)],
                          "sweep": {"n_train": [samples], "seeds": sizes.nn_seeds,
                                    "n_test": 100}})
    return specs


def _run_cost(run) -> float:
    params = dict(run.regime_params)
    if run.regime == "network":
        return 2e3 * float(params.get("max_steps", params.get("steps", 1)))
    return float(params.get("width", 1)) ** 3 / 100.0


HEADS_FILE = f"{NAME}-minimal-heads.csv"
"""Panel (c)'s solved programs, kept beside the figure so that a rebuild does not solve them
again (:func:`lazylab.studies._yehudai_shamir.head_scales`)."""


def analysis(frames: dict, scale: str, heads_cache: Path | None = None) -> dict:
    """Everything the figure and summary draw: curves, requirements, fits, heads, neurons.

    ``heads_cache``: the CSV of panel (c)'s programs already solved (read, then appended to)."""
    sizes = SIZES[scale]
    rf = data.rf_table(frames)
    labels = [*[str(e) for e in sizes.epsilons], data.ABSOLUTE]
    needs = data.required_widths(rf, labels) if len(rf) else pd.DataFrame()
    means = data.requirement_means(needs) if len(needs) else pd.DataFrame()
    fits = {label: data.growth_fit(means[means["epsilon"] == label]) for label in labels} \
        if len(means) else {}
    grid = sorted(set(rf["width"])) if len(rf) else []
    heads = data.head_scales(means, grid, sizes.rf_seeds, sizes.head_cap, cache=heads_cache) \
        if len(means) else pd.DataFrame()
    return {"sizes": sizes, "rf": rf, "labels": labels, "needs": needs, "means": means,
            "fits": fits, "heads": heads, "neurons": data.neuron_table(frames)}


def points(frames: dict, scale: str) -> pd.DataFrame:
    """The figure's points: RF risks (panel a), required widths (b), minimal heads (c),
    one-neuron risks (e)."""
    result = analysis(frames, scale)
    parts = [result["rf"].assign(panel="rf_risk"),
             result["means"].assign(panel="required_width"),
             result["heads"].assign(panel="minimal_head"),
             result["neurons"].assign(panel="neuron")]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def _figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    output_dir = Path(output_dir)
    return figure(analysis(frames, scale, output_dir / HEADS_FILE), output_dir / NAME)


def _summary(frames: dict, scale: str) -> str:
    return summary(analysis(frames, scale))


STUDY = Study(name=NAME, description="Yehudai & Shamir 2019: random features need d^{k(ε)} "
              "features for one ReLU neuron (k rising as ε falls), one trained neuron suffices",
              sweeps=sweeps, figure=_figure, summary=_summary, points=points, scales=SCALES,
              run_cost=_run_cost)
