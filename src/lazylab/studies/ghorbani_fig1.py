"""ghorbani-fig1: RF vs NT vs NN on a quadratic target (Ghorbani et al. 2019, Fig. 1).

Task: y = xᵀBx − Tr B, x ~ N(0, I_d), B = diag(γ)/√d with γ_i ~ Exp(1) (task ``quadratic``,
``matrix = "exp-diagonal"``; each seed draws its own B). R₀ = ‖f*‖² = 2‖B‖_F².

Left panel (n = ∞, exact engine): normalized risk against the width N for
* RF(I) and RF(Γ*): random features with σ = u² − 1 (``hermite2``, the activation of
  Corollary 1, whose eq. (12) is what the paper plots), w_i ~ N(0, I/d) or N(0, B/Tr B), the
  population-optimal head (Cholesky of the exact N × N dual matrix); theory: Corollary 1,
  eq. (12) (= Theorem 1, eq. (10), for this σ);
* NT(I): the neural-tangent model of σ = u² at w_i ~ N(0, I/d), exact population fit by
  preconditioned CG; theory: Theorem 2 (NT line of eq. (13)). Widths N < d only: at N ≥ d the
  NT class contains f* (risk exactly 0, THEORY §1.4) and CG on the singular system is slow;
* NN: f(x) = Σ (w_i·x)² + c, second layer fixed to 1 (the model of Theorem 3), trained by
  gradient descent on the exact population risk (network regime, training = "population");
  theory: Theorem 3, inf L = 2Σ_{i>N} λ_i(B)² (NN line of eq. (13)).
Right panel: at a fixed N < d and a reduced d, the NN above trained by online SGD on fresh
samples (n = steps × batch) and NT fitted by ridge least squares on n samples, against n/d,
with their n = ∞ engine values (dashed) and theory values (dotted). NT *SGD* is not a lazylab
regime; its sample fit is the NT estimator the SGD of the paper converges to.

Scales (``SIZES``): smoke (seconds, tests), default (this machine, minutes; left panel at the
paper's d = 450), paper (every size of §4 of the paper; hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.studies._ghorbani import Series, draw_figure, series_points, summary_text
from lazylab.studies.base import Study

__all__ = ["STUDY", "SIZES", "Sizes"]

NAME = "ghorbani-fig1"


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


def _geometric(low: int, high: int, count: int) -> tuple:
    return tuple(int(round(v)) for v in np.geomspace(low, high, count))


_PAPER_WIDTHS = _geometric(45, 4500, 25)
SIZES = {
    "smoke": Sizes(dim=10, rf_widths={2: (3, 6, 10, 20)}, nt_widths=(3, 6), nt_draws=2,
                   nn_widths=(3, 6), nn_draws=1, nn_steps=150, nn_learning_rate=0.01,
                   online_dim=6, online_width=3, online_steps=(10, 60),
                   online_learning_rate=0.02, online_batch=50, nt_samples_per_dim=(10, 40),
                   online_draws=1, nt_ridge=1e-3),
    "default": Sizes(dim=450,
                     rf_widths={10: _geometric(45, 450, 7), 4: (661, 970, 1425),
                                2: (2093, 3072, 4500)},
                     nt_widths=_geometric(45, 307, 6), nt_draws=3,
                     nn_widths=(45, 97, 209), nn_draws=1, nn_steps=800,
                     nn_learning_rate=0.01, online_dim=40, online_width=20,
                     online_steps=(10, 30, 100, 300, 1000, 3000), online_learning_rate=0.02,
                     online_batch=100, nt_samples_per_dim=(25, 75, 250, 750), online_draws=2,
                     online_nt_draws=8, nt_ridge=1e-3),
    "paper": Sizes(dim=450, rf_widths={10: _PAPER_WIDTHS},
                   nt_widths=tuple(w for w in _PAPER_WIDTHS if w < 450), nt_draws=10,
                   nn_widths=_PAPER_WIDTHS, nn_draws=1, nn_steps=3000, nn_learning_rate=0.01,
                   online_dim=450, online_width=225,
                   online_steps=(2000, 6000, 20000, 60000, 200000), online_learning_rate=2e-3,
                   online_batch=100, nt_samples_per_dim=(250, 750), online_draws=1,
                   online_nt_draws=3, nt_ridge=1e-3),
}


# ----------------------------------------------------------------------------- sweeps

def _task(dim: int) -> dict:
    return {"name": "quadratic", "dim": dim, "matrix": "exp-diagonal"}


def _population(widths, seeds: int) -> dict:
    return {"width": list(widths), "n_train": "population", "n_test": 200, "seeds": seeds,
            "metrics": ["population_risk", "risk_normalized", "wall_time"]}


def _nn_regime(sizes: Sizes, **changes) -> dict:
    regime = {"name": "network", "activation": "quadratic", "train": "first",
              "head_init": "ones", "weight_scale": 0.1, "training": "population",
              "steps": sizes.nn_steps, "learning_rate": sizes.nn_learning_rate,
              "momentum": sizes.nn_momentum}
    regime.update(changes)
    return regime


def sweeps(scale: str) -> list[dict]:
    """The spec dictionaries of a scale (see :data:`SIZES`)."""
    sizes = SIZES[scale]
    task = _task(sizes.dim)
    rf = {"name": "random_features", "activation": "hermite2",
          "weight_covariance": ["isotropic", "optimal"]}
    specs = [{"name": f"{NAME}-rf-{draws}draws",
              "description": "RF(I), RF(Γ*) with σ = u² − 1 at n = ∞ against the width",
              "task": task, "regime": [rf], "sweep": _population(widths, draws)}
             for draws, widths in sizes.rf_widths.items()]
    specs.append({"name": f"{NAME}-nt", "description": "NT(I) with σ = u² at n = ∞",
                  "task": task, "regime": [{"name": "neural_tangent", "activation": "quadratic"}],
                  "sweep": _population(sizes.nt_widths, sizes.nt_draws)})
    specs.append({"name": f"{NAME}-nn", "description": "NN by population gradient descent",
                  "task": task, "regime": [_nn_regime(sizes)],
                  "sweep": _population(sizes.nn_widths, sizes.nn_draws)})
    online_task = _task(sizes.online_dim)
    online = _nn_regime(sizes, training="online", steps=list(sizes.online_steps),
                        learning_rate=sizes.online_learning_rate, batch_size=sizes.online_batch,
                        momentum=0.0, schedule="paper")
    specs.append({"name": f"{NAME}-online-nn",
                  "description": "NN by online SGD, and by population GD (n = ∞)",
                  "task": online_task, "regime": [online, _nn_regime(sizes)],
                  "sweep": {**_population([sizes.online_width], sizes.online_draws),
                            "metrics": ["population_risk", "risk_normalized", "samples_seen",
                                        "wall_time"]}})
    samples = [int(r * sizes.online_dim) for r in sizes.nt_samples_per_dim]
    specs.append({"name": f"{NAME}-online-nt", "description": "NT fitted on n samples and at n = ∞",
                  "task": online_task,
                  "regime": [{"name": "neural_tangent", "activation": "quadratic",
                              "ridge": sizes.nt_ridge}],
                  "sweep": {**_population([sizes.online_width], sizes.online_nt_draws),
                            "n_train": [*samples, "population"]}})
    return specs


def _run_cost(run) -> float:
    """Rough seconds: RF ∝ N²(1 + N/1000), NT ∝ N^2.5, NN ∝ steps × N (for ordering only)."""
    params = dict(run.regime_params)
    width = float(params.get("width", 1))
    steps = float(params.get("steps", 1))
    if run.regime == "network":
        return steps * (0.05 + width / 2000) * (1 if params.get("training") == "population"
                                                 else 0.02)
    if run.regime == "neural_tangent":
        return 1e-5 * width ** 2.5 + (run.n_train or 0) * 1e-4
    return 1e-6 * width ** 2 * (1 + width / 1000)


# ----------------------------------------------------------------------------- theory

def _b(task) -> np.ndarray:
    return task.matrix.numpy()


def _rf_theory(covariance: str):
    from lazylab.theory.ghorbani_quadratic import random_features_risk_quadratic_activation

    def theory(ratio, task):
        return random_features_risk_quadratic_activation(ratio, _b(task),
                                                         weight_covariance=covariance)
    return theory


def _nt_theory(ratio, task):
    from lazylab.theory.ghorbani_quadratic import neural_tangent_risk
    return neural_tangent_risk(ratio, _b(task))


def _nn_theory(ratio, task):
    from lazylab.theory.ghorbani_quadratic import network_risk
    return network_risk(ratio, _b(task))


def _series(scale: str) -> list[Series]:
    rf = [f"{NAME}-rf-{k}draws" for k in SIZES[scale].rf_widths]
    out = []
    for sweep in rf:
        out += [Series("rf_isotropic", "RF(I)", "left", sweep,
                       {"regime": "random_features", "weight_covariance": "isotropic"},
                       theory=_rf_theory("isotropic"), theory_name="Corollary 1, eq. (12)",
                       color="C0", marker="o"),
                Series("rf_optimal", "RF(Γ*)", "left", sweep,
                       {"regime": "random_features", "weight_covariance": "optimal"},
                       theory=_rf_theory("optimal"), theory_name="Corollary 1, eq. (12)",
                       color="C1", marker="s")]
    online_nn, online_nt = f"{NAME}-online-nn", f"{NAME}-online-nt"
    return out + [
        Series("nt_isotropic", "NT(I)", "left", f"{NAME}-nt", {"regime": "neural_tangent"},
               theory=_nt_theory, theory_name="Theorem 2", color="C2", marker="^"),
        Series("nn", "NN", "left", f"{NAME}-nn", {"regime": "network"}, theory=_nn_theory,
               theory_name="Theorem 3", color="C3", marker="D"),
        Series("nn", "NN (online SGD)", "right", online_nn, {"training": "online"},
               x="samples_seen", color="C3", marker="D"),
        Series("nn", "NN", "limit", online_nn, {"training": "population"}, theory=_nn_theory,
               theory_name="Theorem 3", color="C3"),
        Series("nt_isotropic", "NT(I) (least squares on n samples)", "right", online_nt,
               {"regime": "neural_tangent"}, x="n_train", color="C2", marker="^"),
        Series("nt_isotropic", "NT(I)", "limit", online_nt, {"n_train": np.inf},
               theory=_nt_theory, theory_name="Theorem 2", color="C2"),
    ]


def _specs(scale: str) -> dict:
    return {spec["name"]: spec for spec in sweeps(scale)}


def points(frames: dict, scale: str) -> pd.DataFrame:
    """The figure's points with theory values and gaps (the study's CSV)."""
    return series_points(frames, _series(scale), _specs(scale))


def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """Both panels as ``output_dir/ghorbani-fig1.png`` and ``.pdf``."""
    table = points(frames, scale)
    return draw_figure(table, _series(scale), _specs(scale), frames, Path(output_dir) / NAME,
                       "Ghorbani et al. (2019), Fig. 1: quadratic target, B = diag(Exp(1))/√d")


def summary(frames: dict, scale: str) -> str:
    """What the figure shows, the NN < NT < RF check at N < d, and the theory gaps."""
    table = points(frames, scale)
    sizes = SIZES[scale]
    shows = (f"The normalized population risk R/‖f*‖² of four two-layer models fitting "
             f"f*(x) = xᵀBx − Tr B at d = {sizes.dim}. Left: at n = ∞ (exact), against the width N. "
             "Random features (only the second layer trained) stay far from zero even for N ≫ d: "
             "RF(I) tends to 1 − Tr(B)²/(d‖B‖_F²) ≈ ½, RF with the optimal covariance Γ* ∝ B "
             "decays like 1/(1 + 2ρ). The neural tangent model reaches zero only at N = d; the "
             "trained network (NN) fits the top-N eigendirections of B and is far below both "
             "for N < d. Right: at a fixed N < d and a smaller d, risk against the number of "
             "samples n/d; the dashed lines are the n = ∞ values.")
    notes = [
        "Every seed draws its own B (the task stream), so dots average over B and W; theory "
        "lines are averaged over the same B instances.",
        "RF uses σ = u² − 1 (Corollary 1, plotted in the paper's Fig. 1); NT and NN use σ = u² "
        "(Theorems 2 and 3).",
        "NT(I) is computed only for N < d: at N ≥ d its risk is exactly 0 (THEORY §1.4).",
        f"NN: population gradient descent for {sizes.nn_steps} steps from a small "
        "initialization (weights × 0.1); a residual above Theorem 3 is unfinished optimization "
        "(the theorem is a t → ∞ statement), not a modelling gap.",
        "NT on samples is the ridge least-squares fit (NT online SGD is not a lazylab regime); "
        f"ridge {sizes.nt_ridge:g} damps the interpolation peak at n = Nd.",
        "The theory lines are asymptotic (N, d → ∞); at finite d the exact values differ by "
        "O(d^-1/2) fluctuations.",
    ]
    labels = {"nn": "NN", "nt_isotropic": "NT(I)", "rf_isotropic": "RF(I)"}
    return summary_text(table, ["nn", "nt_isotropic", "rf_isotropic"], labels, shows, notes)


STUDY = Study(name=NAME, description="Ghorbani et al. 2019 Fig. 1: RF vs NT vs NN, quadratic "
              "target, exact at n = ∞ and against n", sweeps=sweeps, figure=figure,
              summary=summary, points=points,
              scales={scale: sizes.describe() for scale, sizes in SIZES.items()},
              run_cost=_run_cost)
