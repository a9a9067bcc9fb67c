"""The layout shared by the two Ghorbani et al. (2019) studies: sizes, sweeps and curves.

Both figures run the same five kinds of sweep (THEORY.md §1.7): RF against the width at n = ∞
(one sweep per number of draws), NT(I) and the network at n = ∞, and, at a reduced d, the
network by online SGD and NT on n samples. Only the task, the RF regime, the network regime and
the theorems differ; :func:`ghorbani_sweeps` and :func:`shared_series` take those as arguments.
Used through :mod:`lazylab.studies._ghorbani`, which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["Series", "Sizes", "geometric", "population_sweep", "ghorbani_sweeps", "run_cost",
           "shared_series"]

Theory = Callable[[np.ndarray, Any], np.ndarray]
"""(width_ratio ρ array, task instance) -> normalized risk array."""


@dataclass(frozen=True)
class Series:
    """One curve.

    Args:
        key: short identifier (CSV ``series`` column). label: legend text.
        panel: "left" (risk against N at n = ∞), "right" (risk against n/d) or "limit" (the
            n = ∞ value of a right-panel regime, drawn as a dashed line).
        sweep: the sweep (spec name) holding its runs. where: column == value filters.
        x: "width", "samples_seen" or "n_train" (the right panel divides by d).
        theory: the theory function for the points' width ratio, or None.
        theory_name: where the formula comes from (legend and summary).
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
    color: str = "C0"
    marker: str = "o"


@dataclass(frozen=True)
class Sizes:
    """Sizes of one scale. Widths are listed per number of draws of W (seeds 0 … k−1)."""

    dim: int
    rf_widths: dict                 # draws -> widths
    nt_widths: tuple
    nt_draws: int
    nn_widths: tuple
    nn_draws: int
    nn_steps: int
    nn_learning_rate: float
    online_dim: int
    online_width: int
    online_steps: tuple             # online SGD steps (n = steps × batch)
    online_learning_rate: float
    online_batch: int
    nt_samples_per_dim: tuple       # n/d of the NT sample fits
    online_draws: int
    nt_ridge: float = 1e-4
    nn_momentum: float = 0.9
    online_nt_draws: int = 1

    def describe(self) -> str:
        rf = "; ".join(f"{k} draws at N ∈ {{{', '.join(map(str, v))}}}"
                       for k, v in self.rf_widths.items())
        return (f"left panel d = {self.dim}: RF(I) and RF(Γ*) {rf}; NT(I) at N ∈ "
                f"{{{', '.join(map(str, self.nt_widths))}}} ({self.nt_draws} draws); NN at "
                f"N ∈ {{{', '.join(map(str, self.nn_widths))}}} ({self.nn_draws} draws, "
                f"{self.nn_steps} population GD steps, η = {self.nn_learning_rate:g}, momentum "
                f"{self.nn_momentum:g}). Right panel "
                f"d = {self.online_dim}, N = {self.online_width}: NN online SGD (batch "
                f"{self.online_batch}, η = {self.online_learning_rate:g}) for "
                f"{', '.join(map(str, self.online_steps))} steps; NT ridge ({self.nt_ridge:g}) "
                f"fits at n/d ∈ {{{', '.join(f'{r:g}' for r in self.nt_samples_per_dim)}}}; "
                f"{self.online_draws} draws of the NN, {self.online_nt_draws} of NT.")


def geometric(low: int, high: int, count: int) -> tuple:
    """``count`` integers spaced geometrically from ``low`` to ``high`` (rounded)."""
    return tuple(int(round(v)) for v in np.geomspace(low, high, count))


def population_sweep(widths, seeds: int) -> dict:
    """The ``[sweep]`` of an n = ∞ sweep over ``widths`` with seeds 0 … seeds−1."""
    return {"width": list(widths), "n_train": "population", "n_test": 200, "seeds": seeds,
            "metrics": ["population_risk", "risk_normalized", "wall_time"]}


def ghorbani_sweeps(name: str, sizes: Sizes, task: Callable[[int], dict], rf: dict,
                    rf_description: str, network: Callable[..., dict],
                    online: Mapping[str, Any]) -> list[dict]:
    """The spec dictionaries of one scale of a Ghorbani figure.

    Args:
        name: study name (prefix of the sweep names). task: d -> the ``[task]`` table.
        rf: the RF ``[[regime]]``; rf_description: its sweeps' description.
        network: ``(sizes, **changes) -> [[regime]]`` of the network (population GD by default).
        online: the changes of the online-SGD network beyond training, steps, learning rate
            and batch size.
    """
    specs = [{"name": f"{name}-rf-{draws}draws", "description": rf_description,
              "task": task(sizes.dim), "regime": [rf], "sweep": population_sweep(widths, draws)}
             for draws, widths in sizes.rf_widths.items()]
    specs.append({"name": f"{name}-nt", "description": "NT(I) with σ = u² at n = ∞",
                  "task": task(sizes.dim),
                  "regime": [{"name": "neural_tangent", "activation": "quadratic"}],
                  "sweep": population_sweep(sizes.nt_widths, sizes.nt_draws)})
    specs.append({"name": f"{name}-nn", "description": "NN by population gradient descent",
                  "task": task(sizes.dim), "regime": [network(sizes)],
                  "sweep": population_sweep(sizes.nn_widths, sizes.nn_draws)})
    online_task = task(sizes.online_dim)
    sgd = network(sizes, training="online", steps=list(sizes.online_steps),
                  learning_rate=sizes.online_learning_rate, batch_size=sizes.online_batch,
                  **online)
    specs.append({"name": f"{name}-online-nn",
                  "description": "NN by online SGD, and by population GD (n = ∞)",
                  "task": online_task, "regime": [sgd, network(sizes)],
                  "sweep": {**population_sweep([sizes.online_width], sizes.online_draws),
                            "metrics": ["population_risk", "risk_normalized", "samples_seen",
                                        "wall_time"]}})
    samples = [int(r * sizes.online_dim) for r in sizes.nt_samples_per_dim]
    specs.append({"name": f"{name}-online-nt", "description": "NT fitted on n samples and at n = ∞",
                  "task": online_task,
                  "regime": [{"name": "neural_tangent", "activation": "quadratic",
                              "ridge": sizes.nt_ridge}],
                  "sweep": {**population_sweep([sizes.online_width], sizes.online_nt_draws),
                            "n_train": [*samples, "population"]}})
    return specs


def run_cost(run, components: int = 1) -> float:
    """Rough seconds (for ordering only): RF ∝ N²(1 + N/1000), NT ∝ N^2.5, NN ∝ steps × N;
    times the number of Gaussian components of the input law."""
    params = dict(run.regime_params)
    width = float(params.get("width", 1))
    steps = float(params.get("steps", 1))
    if run.regime == "network":
        cost = steps * (0.05 + width / 2000) * (1 if params.get("training") == "population"
                                                 else 0.02)
    elif run.regime == "neural_tangent":
        cost = 1e-5 * width ** 2.5 + (run.n_train or 0) * 1e-4
    else:
        cost = 1e-6 * width ** 2 * (1 + width / 1000)
    return components * cost


def shared_series(name: str, nt_theory: Theory, nn_theory: Theory, nt_name: str,
                  nn_name: str) -> list[Series]:
    """The NT and NN curves both figures draw (left panel, right panel, n = ∞ limits)."""
    online_nn, online_nt = f"{name}-online-nn", f"{name}-online-nt"
    return [
        Series("nt_isotropic", "NT(I)", "left", f"{name}-nt", {"regime": "neural_tangent"},
               theory=nt_theory, theory_name=nt_name, color="C2", marker="^"),
        Series("nn", "NN", "left", f"{name}-nn", {"regime": "network"}, theory=nn_theory,
               theory_name=nn_name, color="C3", marker="D"),
        Series("nn", "NN (online SGD)", "right", online_nn, {"training": "online"},
               x="samples_seen", color="C3", marker="D"),
        Series("nn", "NN", "limit", online_nn, {"training": "population"}, theory=nn_theory,
               theory_name=nn_name, color="C3"),
        Series("nt_isotropic", "NT(I) (least squares on n samples)", "right", online_nt,
               {"regime": "neural_tangent"}, x="n_train", color="C2", marker="^"),
        Series("nt_isotropic", "NT(I)", "limit", online_nt, {"n_train": np.inf},
               theory=nt_theory, theory_name=nt_name, color="C2"),
    ]
