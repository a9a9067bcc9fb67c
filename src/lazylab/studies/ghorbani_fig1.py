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

from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.studies._ghorbani import (Series, Sizes, Study, draw_figure, geometric,
                                       ghorbani_sweeps, run_cost, series_points, shared_series,
                                       summary_text)
from lazylab.theory.ghorbani_quadratic import (network_risk, neural_tangent_risk,
                                               random_features_risk_quadratic_activation)

__all__ = ["STUDY", "SIZES"]

NAME = "ghorbani-fig1"

_PAPER_WIDTHS = geometric(45, 4500, 25)
SIZES = {
    "smoke": Sizes(dim=10, rf_widths={2: (3, 6, 10, 20)}, nt_widths=(3, 6), nt_draws=2,
                   nn_widths=(3, 6), nn_draws=1, nn_steps=150, nn_learning_rate=0.01,
                   online_dim=6, online_width=3, online_steps=(10, 60),
                   online_learning_rate=0.02, online_batch=50, nt_samples_per_dim=(10, 40),
                   online_draws=1, nt_ridge=1e-3),
    "default": Sizes(dim=450,
                     rf_widths={10: geometric(45, 450, 7), 4: (661, 970, 1425),
                                2: (2093, 3072, 4500)},
                     nt_widths=geometric(45, 307, 6), nt_draws=3,
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


def _nn_regime(sizes: Sizes, **changes) -> dict:
    regime = {"name": "network", "activation": "quadratic", "train": "first",
              "head_init": "ones", "weight_scale": 0.1, "training": "population",
              "steps": sizes.nn_steps, "learning_rate": sizes.nn_learning_rate,
              "momentum": sizes.nn_momentum}
    regime.update(changes)
    return regime


def sweeps(scale: str) -> list[dict]:
    """The spec dictionaries of a scale (see :data:`SIZES`)."""
    rf = {"name": "random_features", "activation": "hermite2",
          "weight_covariance": ["isotropic", "optimal"]}
    return ghorbani_sweeps(NAME, SIZES[scale], _task, rf,
                           "RF(I), RF(Γ*) with σ = u² − 1 at n = ∞ against the width",
                           _nn_regime, {"momentum": 0.0, "schedule": "paper"})


# ----------------------------------------------------------------------------- theory

def _b(task) -> np.ndarray:
    return task.matrix.numpy()


def _rf_theory(covariance: str):
    def theory(ratio, task):
        return random_features_risk_quadratic_activation(ratio, _b(task),
                                                         weight_covariance=covariance)
    return theory


def _nt_theory(ratio, task):
    return neural_tangent_risk(ratio, _b(task))


def _nn_theory(ratio, task):
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
    return out + shared_series(NAME, _nt_theory, _nn_theory, "Theorem 2", "Theorem 3")


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
              run_cost=run_cost)
