"""The layout shared by the two Ghorbani et al. (2019) studies: sizes, sweeps and curves.

Both figures run the same kinds of sweep (THEORY.md §1.7): RF against the width at n = ∞ (one
sweep per number of draws), NT(I) at n = ∞, the network at n = ∞ run to convergence (one sweep
per width: its initialization scale depends on N), and, at a reduced d, the network by online
SGD, NT by online SGD and NT least squares with a validated ridge on n samples, with the n = ∞
fits of the same regimes. Only the task, the RF regime, the network regime and the theorems
differ; :func:`ghorbani_sweeps` and :func:`shared_series` take those as arguments.
Used through :mod:`lazylab.studies._ghorbani`, which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["Series", "Sizes", "geometric", "population_sweep", "ghorbani_sweeps", "run_cost",
           "shared_series", "NN_METRICS", "nn_sweep_name"]

Theory = Callable[[np.ndarray, Any], np.ndarray]
"""(width_ratio ρ array, task instance) -> normalized risk array."""

NN_METRICS = ["population_risk", "risk_normalized", "wall_time", "converged", "steps",
              "halvings"]
"""What the n = ∞ network runs record: the risk and the convergence certificate."""

ONLINE_DTYPE = "float32"
"""The network's online SGD trains in float32 (2.5× faster than float64 at N = 225, d = 450,
batch 100; its risk is evaluated exactly in float64 from the trained weights). Measured at
6,000 steps of fig1's paper setting: normalized risks 0.1820 / 0.1835 and 0.1865 / 0.1866
(float32 / float64) for two seeds, against a seed-to-seed spread of 0.003: SGD's noise, not
the rounding, sets the dots."""


@dataclass(frozen=True)
class Series:
    """One curve.

    Args:
        key: short identifier (CSV ``series`` column). label: legend text.
        panel: "left" (risk against N at n = ∞), "right" (risk against n/d) or "limit" (the
            n = ∞ value of a right-panel regime, drawn as a dashed line).
        sweep: the sweep (spec name) holding its runs. where: column == value filters.
        x: "width", "samples_seen", "samples" or "n_train" (the right panel divides by d).
        curve: the runs recorded checkpoints: one point per checkpoint of each run
            (:func:`lazylab.experiments.learning_curve`; x = "samples").
        theory: the theory function for the points' width ratio, or None.
        theory_name: where the formula comes from (legend and summary).
        reference, reference_name: a second theory drawn dashed beside the first (e.g. the
            exact finite-d expectation, or a printed formula lazylab departs from), or None.
        color, marker: drawing style.
    """

    key: str
    label: str
    panel: str
    sweep: str
    where: Mapping[str, Any] = field(default_factory=dict)
    x: str = "width"
    theory: Theory | None = None
    theory_name: str = ""
    reference: Theory | None = None
    reference_name: str = ""
    color: str = "C0"
    marker: str = "o"
    curve: bool = False


@dataclass(frozen=True)
class Sizes:
    """Sizes of one scale. Widths are listed per number of draws of W and of the task instance
    (seeds 0 … k−1). The network at n = ∞ runs to the tolerance ``nn_tol`` of the population
    criterion within ``nn_max_steps``; online SGD budgets are the sample sizes n = steps ×
    batch."""

    dim: int
    rf_widths: dict                 # draws -> widths
    nt_widths: tuple
    nt_draws: int
    nn_widths: tuple
    nn_draws: int
    nn_max_steps: int
    nn_learning_rate: float
    online_dim: int
    online_width: int
    online_steps: tuple             # NN online SGD steps (n = steps × batch)
    online_learning_rate: float
    online_batch: int
    nt_samples_per_dim: tuple       # n/d of the NT least-squares fits
    nt_sgd_steps: tuple             # NT online SGD steps (n = steps × batch)
    online_draws: int = 3
    nn_tol: float = 1e-4
    nn_momentum: float = 0.9
    nt_sgd_learning_rate: float = 0.1

    def describe(self) -> str:
        rf = "; ".join(f"{k} draws at N ∈ {{{', '.join(map(str, v))}}}"
                       for k, v in self.rf_widths.items())
        return (f"left panel d = {self.dim}: RF {rf}; NT(I) at N ∈ "
                f"{{{', '.join(map(str, self.nt_widths))}}} ({self.nt_draws} draws); NN at "
                f"N ∈ {{{', '.join(map(str, self.nn_widths))}}} ({self.nn_draws} draws, "
                f"population GD to tolerance {self.nn_tol:g} within {self.nn_max_steps} steps, "
                f"η = {self.nn_learning_rate:g}, momentum {self.nn_momentum:g}). Right panel "
                f"d = {self.online_dim}, N = {self.online_width}: NN online SGD (batch {self.online_batch}, η = "
                f"{self.online_learning_rate:g}, {ONLINE_DTYPE}) to n/d = "
                f"{max(self.online_steps) * self.online_batch / self.online_dim:g}; NT online "
                f"SGD to n/d = {max(self.nt_sgd_steps) * self.online_batch / self.online_dim:g}; "
                f"NT least squares (ridge chosen on a validation split) at n/d ∈ "
                f"{{{', '.join(f'{r:g}' for r in self.nt_samples_per_dim)}}}; "
                f"{self.online_draws} draws each.")


def geometric(low: int, high: int, count: int) -> tuple:
    """``count`` integers spaced geometrically from ``low`` to ``high`` (rounded)."""
    return tuple(int(round(v)) for v in np.geomspace(low, high, count))


def population_sweep(widths, seeds: int, metrics=("population_risk", "risk_normalized",
                                                  "wall_time")) -> dict:
    """The ``[sweep]`` of an n = ∞ sweep over ``widths`` with seeds 0 … seeds−1."""
    return {"width": list(widths), "n_train": "population", "n_test": 200, "seeds": seeds,
            "metrics": list(metrics)}


def nn_sweep_name(name: str, width: int) -> str:
    """The sweep of the n = ∞ network at one width (one per width: its init depends on N)."""
    return f"{name}-nn-{width}"


def _online_specs(name: str, sizes: Sizes, task: dict, network: Callable[..., dict],
                  online: Mapping[str, Any]) -> list[dict]:
    """Right panel: NN online SGD (+ its n = ∞ fit), NT online SGD, NT least squares with a
    validated ridge, NT at n = ∞."""
    width, draws, batch = sizes.online_width, sizes.online_draws, sizes.online_batch
    sgd = network(sizes, width, sizes.online_dim, training="online",
                  steps=list(sizes.online_steps), learning_rate=sizes.online_learning_rate,
                  batch_size=batch, dtype=ONLINE_DTYPE, **online)
    online_metrics = ["population_risk", "risk_normalized", "samples_seen", "wall_time"]
    tangent = {"name": "neural_tangent", "activation": "quadratic"}
    samples = [int(r * sizes.online_dim) for r in sizes.nt_samples_per_dim]
    return [
        {"name": f"{name}-online-nn", "description": "NN by online SGD on fresh samples",
         "task": task, "regime": [sgd],
         "sweep": population_sweep([width], draws, online_metrics)},
        {"name": f"{name}-online-nn-limit", "description": "the same NN by population GD",
         "task": task, "regime": [network(sizes, width, sizes.online_dim)],
         "sweep": population_sweep([width], draws, NN_METRICS)},
        {"name": f"{name}-online-nt-sgd",
         "description": "NT by online SGD on fresh samples, one run per seed checkpointed at "
                        "every budget",
         "task": task,
         "regime": [{**tangent, "solver": "sgd", "steps": max(sizes.nt_sgd_steps),
                     "checkpoints": sorted(sizes.nt_sgd_steps), "batch_size": batch,
                     "learning_rate": sizes.nt_sgd_learning_rate, "sgd_tol": 1e-12}],
         "sweep": population_sweep([width], draws, online_metrics + [
             f"population_risk_at_{t}" for t in sorted(sizes.nt_sgd_steps)])},
        {"name": f"{name}-online-nt", "description": "NT least squares, ridge by validation",
         "task": task, "regime": [{**tangent, "ridge": "auto"}],
         "sweep": {**population_sweep([width], draws, ["population_risk", "risk_normalized",
                                                        "wall_time", "selected_ridge",
                                                        "selection_at_edge"]),
                   "n_train": samples}},
        {"name": f"{name}-online-nt-limit", "description": "NT at n = ∞ (exact)",
         "task": task, "regime": [tangent],
         "sweep": population_sweep([width], draws, ["population_risk", "risk_normalized",
                                                    "wall_time", "cg_converged"])},
    ]


def ghorbani_sweeps(name: str, sizes: Sizes, task: Callable[[int], dict], rf: dict,
                    rf_description: str, network: Callable[..., dict],
                    online: Mapping[str, Any]) -> list[dict]:
    """The spec dictionaries of one scale of a Ghorbani figure.

    Args:
        name: study name (prefix of the sweep names). task: d -> the ``[task]`` table.
        rf: the RF ``[[regime]]``; rf_description: its sweeps' description.
        network: ``(sizes, width, dim, **changes) -> [[regime]]`` of the network at one width
            and dimension (population GD to convergence by default).
        online: the changes of the online-SGD network beyond training, steps, learning rate
            and batch size.
    """
    specs = [{"name": f"{name}-rf-{draws}draws", "description": rf_description,
              "task": task(sizes.dim), "regime": [rf], "sweep": population_sweep(widths, draws)}
             for draws, widths in sizes.rf_widths.items()]
    specs.append({"name": f"{name}-nt", "description": "NT(I) with σ = u² at n = ∞",
                  "task": task(sizes.dim),
                  "regime": [{"name": "neural_tangent", "activation": "quadratic"}],
                  "sweep": population_sweep(sizes.nt_widths, sizes.nt_draws,
                                            ["population_risk", "risk_normalized", "wall_time",
                                             "cg_converged", "cg_iterations"])})
    specs += [{"name": nn_sweep_name(name, width),
               "description": f"NN by population gradient descent to convergence, N = {width}",
               "task": task(sizes.dim), "regime": [network(sizes, width, sizes.dim)],
               "sweep": population_sweep([width], sizes.nn_draws, NN_METRICS)}
              for width in sizes.nn_widths]
    return specs + _online_specs(name, sizes, task(sizes.online_dim), network, online)


def run_cost(run, components: int = 1) -> float:
    """Seconds on one core (for ordering and the ETA), fitted to fig1's paper-scale store
    (d = 450, stop 22), times the number of Gaussian components of the input law. A pool
    starts the most expensive runs first, so the long right-panel fits must not be costed
    below the many short ones (at stop 21 the NT least-squares fit of 268 s was costed below a
    2-s population run and started last). Per step: population GD 0.5 ms + 1e-10·min(N, d)²·d
    (≈ 1500 steps to tolerance), online SGD 0.1 ms + 5e-11·b·N·d (float32 network) or
    0.2 ms + 1.9e-10·b·N·d (NT, float64); NT least squares 2.2e-7·n^1.8·(N·d/10⁵); the n = ∞
    RF and NT fits ≈ 0.1 s."""
    params = dict(run.regime_params)
    width, dim = float(params.get("width", 1)), float(dict(run.task_params).get("dim", 1))
    work = float(params.get("batch_size", 100)) * width * dim
    steps = float(params.get("steps") or 1500)
    if run.regime == "network" and params.get("training") == "population":
        cost = steps * (5e-4 + 1e-10 * min(width, dim) ** 2 * dim)
    elif run.regime == "network":
        cost = steps * (1e-4 + 5e-11 * work)
    elif run.regime == "neural_tangent" and params.get("solver") == "sgd":
        cost = steps * (2e-4 + 1.9e-10 * work)
    elif run.regime == "neural_tangent" and run.n_train is not None:
        cost = 2.2e-7 * run.n_train ** 1.8 * width * dim / 1e5
    else:
        cost = 0.1 + 1e-9 * width ** 2 * dim
    return components * cost


def shared_series(name: str, sizes: Sizes, theories: Mapping[str, tuple]) -> list[Series]:
    """The NT and NN curves both figures draw (left panel, right panel, n = ∞ limits).

    ``theories``: "nt" and "nn" → (theory, theory name[, reference, reference name]).
    """
    def named(key):
        entry = tuple(theories[key]) + (None, "")
        return {"theory": entry[0], "theory_name": entry[1], "reference": entry[2],
                "reference_name": entry[3]}

    nt, nn = named("nt"), named("nn")
    prefix = f"{name}-online"
    nn_left = [Series("nn", "NN", "left", nn_sweep_name(name, w), {"regime": "network"},
                      color="C3", marker="D", **nn) for w in sizes.nn_widths]
    return [
        Series("nt_isotropic", "NT(I)", "left", f"{name}-nt", {"regime": "neural_tangent"},
               color="C2", marker="^", **nt),
        *nn_left,
        Series("nn", "NN (online SGD)", "right", f"{prefix}-nn", x="samples_seen",
               color="C3", marker="D"),
        Series("nn", "NN", "limit", f"{prefix}-nn-limit", color="C3",
               theory=nn["theory"], theory_name=nn["theory_name"]),
        Series("nt_sgd", "NT(I) (online SGD)", "right", f"{prefix}-nt-sgd", x="samples",
               color="C2", marker="^", curve=True),
        Series("nt_ridge", "NT(I) (least squares, validated ridge)", "right", f"{prefix}-nt",
               x="n_train", color="C4", marker="v"),
        Series("nt_isotropic", "NT(I)", "limit", f"{prefix}-nt-limit", color="C2",
               theory=nt["theory"], theory_name=nt["theory_name"]),
    ]
