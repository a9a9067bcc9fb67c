"""ghorbani-fig1: RF vs NT vs NN on a quadratic target (Ghorbani et al. 2019, Fig. 1).

Task: y = xᵀBx − Tr B, x ~ N(0, I_d), B = diag(γ)/√d with γ_i ~ Exp(1) (task ``quadratic``,
``matrix = "exp-diagonal"``; each seed draws its own B). R₀ = ‖f*‖² = 2‖B‖_F².

Left panel (n = ∞, exact engine): normalized risk against the width N for
* RF(I) and RF(Γ*): random features with σ = u² − 1 (``hermite2``, the activation of
  Corollary 1, whose eq. (12) is what the paper plots), w_i ~ N(0, I/d) or N(0, B/Tr B), the
  population-optimal head (Cholesky of the exact N × N dual matrix); theory: Corollary 1,
  eq. (12) (= Theorem 1, eq. (10), for this σ);
* NT(I): the neural-tangent model of σ = u² at w_i ~ N(0, I/d), exact population fit by
  preconditioned CG at N < d and, at N ≥ d (where the class contains f*: risk 0, THEORY §1.4),
  as the best quadratic form (:mod:`lazylab.models._tangent_quadratic`);
  theory: Theorem 2 (NT line of eq. (13)), and dashed its exact finite-d mean over W
  (Weingarten, :func:`lazylab.theory.neural_tangent_expected_risk`);
* NN: f(x) = Σ (w_i·x)² + c, second layer fixed to 1 (the model of Theorem 3), trained by
  gradient descent on the exact population risk (network regime, training = "population",
  closed-form risk for σ = u²) from s_w² = √d/N until the population criterion meets its
  tolerance, at every width of its grid, N ≥ d included; theory: Theorem 3,
  inf L = 2Σ_{i>N} λ_i(B)² (NN line of eq. (13)); a dot with an unconverged fit is hollow.
Right panel: at a fixed N < d and a reduced d, the NN above and NT trained by online SGD on
fresh samples (n = steps × batch) and NT least squares on n samples with the ridge chosen on a
validation split, against n/d, with their n = ∞ engine values (dashed) and theory (dotted).
The summary states each claim (NN < NT < RF below N = d, NN at Theorem 3 within 1e-3, NT at
Theorem 2 and its Weingarten mean, RF at Corollary 1 with its O(N/d²) finite-d correction)
with the verdict of the data.

Scales (``SIZES``): smoke (seconds, tests), default (this machine, minutes; left panel at the
paper's d = 450), paper (every size of §4 of the paper; hours).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.studies._ghorbani import (Series, Sizes, Study, draw_figure, geometric,
                                       ghorbani_sweeps, run_cost, series_points, shared_series,
                                       sweep_seeds, sweep_task)
from lazylab.studies._ghorbani_claims import Claim, gap_claim, separation_claim, summary_text
from lazylab.theory.finite_width import finite_width_rf_correction
from lazylab.theory.ghorbani_quadratic import (network_risk, neural_tangent_expected_risk,
                                               neural_tangent_risk,
                                               random_features_risk_quadratic_activation,
                                               trace_alignment)

__all__ = ["STUDY", "SIZES"]

NAME = "ghorbani-fig1"

_PAPER_WIDTHS = geometric(45, 4500, 25)
_NN_MOMENTUM = 0.97
"""Heavy-ball β of the NN's population descent at d = 450 (η = 0.01, stable for η < 2(1 + β)/L
with L ≈ 8 Tr M + 2 ≈ 172): against β = 0.9, 1.3–3.7× fewer steps to the same tolerance at
N = 97 … 4500, the gap to Theorem 3 as small or smaller (benchmarks/RESULTS.md, stop 22)."""
SIZES = {
    "smoke": Sizes(dim=10, rf_widths={3: (3, 6, 10, 20)}, nt_widths=(3, 6, 10, 20), nt_draws=3,
                   nn_widths=(3, 6, 10, 20), nn_draws=3, nn_max_steps=20_000,
                   nn_learning_rate=0.01, online_dim=6, online_width=3, online_steps=(10, 60),
                   online_learning_rate=0.02, online_batch=50, nt_samples_per_dim=(10, 40),
                   nt_sgd_steps=(10, 60), online_draws=3),
    "default": Sizes(dim=450,
                     rf_widths={10: geometric(45, 450, 7), 4: (661, 970, 1425),
                                3: (2093, 3072, 4500)},
                     nt_widths=(*geometric(45, 307, 6), 450, 970, 2093), nt_draws=3,
                     nn_widths=(45, 97, 209, 450, 970), nn_draws=3, nn_max_steps=20_000,
                     nn_learning_rate=0.01, online_dim=40, online_width=20,
                     online_steps=(10, 30, 100, 300, 1000, 3000, 10000),
                     online_learning_rate=0.02, online_batch=100,
                     nt_samples_per_dim=(25, 75, 250, 750, 2500),
                     nt_sgd_steps=(10, 30, 100, 300, 1000, 3000), online_draws=3,
                     nn_momentum=_NN_MOMENTUM),
    "paper": Sizes(dim=450, rf_widths={10: _PAPER_WIDTHS}, nt_widths=_PAPER_WIDTHS,
                   nt_draws=10, nn_widths=_PAPER_WIDTHS, nn_draws=3, nn_max_steps=20_000,
                   nn_learning_rate=0.01, online_dim=450, online_width=225,
                   online_steps=(2000, 6000, 20000, 60000, 200000), online_learning_rate=2e-3,
                   online_batch=100, nt_samples_per_dim=(25, 75, 250),
                   nt_sgd_steps=(2000, 6000, 20000, 60000), online_draws=3,
                   nn_momentum=_NN_MOMENTUM),
}


# ----------------------------------------------------------------------------- sweeps

def _task(dim: int) -> dict:
    return {"name": "quadratic", "dim": dim, "matrix": "exp-diagonal"}


def _network(sizes: Sizes, width: int, dim: int, **changes) -> dict:
    """Theorem 3's model Σ(w_i·x)² + c, by population GD to tolerance unless ``changes`` say
    otherwise (online SGD: a fixed sample budget). Initialization at the target's scale:
    s_w² = √d/N, so Tr WᵀW ≈ √d ≈ E Tr B whatever N (one learning rate is stable at every
    width, and no eigendirection starts far below its target)."""
    regime = {"name": "network", "activation": "quadratic", "train": "first",
              "head_init": "ones", "weight_scale": float(np.sqrt(np.sqrt(dim) / width)),
              "training": "population", "max_steps": sizes.nn_max_steps, "tol": sizes.nn_tol,
              "learning_rate": sizes.nn_learning_rate, "momentum": sizes.nn_momentum,
              "rate_scaling": "none"}
    if changes.get("training") == "online":
        del regime["max_steps"], regime["tol"]
    regime.update(changes)
    return regime


def sweeps(scale: str) -> list[dict]:
    """The spec dictionaries of a scale (see :data:`SIZES`)."""
    rf = {"name": "random_features", "activation": "hermite2",
          "weight_covariance": ["isotropic", "optimal"]}
    return ghorbani_sweeps(NAME, SIZES[scale], _task, rf,
                           "RF(I), RF(Γ*) with σ = u² − 1 at n = ∞ against the width",
                           _network, {"momentum": 0.0, "schedule": "paper"})
# ----------------------------------------------------------------------------- theory

def _b(task) -> np.ndarray:
    return task.matrix.numpy()


def _rf_theory(covariance: str):
    def theory(ratio, task):
        return random_features_risk_quadratic_activation(ratio, _b(task),
                                                         weight_covariance=covariance)
    return theory


def _rf_finite(ratio, task):
    """Corollary 1 plus the finite-d correction of RF(I) (lazylab.theory.finite_width)."""
    b = _b(task)
    widths = np.maximum(np.round(np.asarray(ratio) * b.shape[0]).astype(int), 1)
    return (random_features_risk_quadratic_activation(ratio, b)
            + finite_width_rf_correction(b.shape[0], widths, trace_alignment(b)))


def _nt_theory(ratio, task):
    return neural_tangent_risk(ratio, _b(task))


def _nt_exact(ratio, task):
    b = _b(task)
    return neural_tangent_expected_risk(np.round(np.asarray(ratio) * b.shape[0]).astype(int), b)


def _nn_theory(ratio, task):
    return network_risk(ratio, _b(task))


def _series(scale: str) -> list[Series]:
    rf = [f"{NAME}-rf-{k}draws" for k in SIZES[scale].rf_widths]
    out = []
    for sweep in rf:
        out += [Series("rf_isotropic", "RF(I)", "left", sweep,
                       {"regime": "random_features", "weight_covariance": "isotropic"},
                       theory=_rf_theory("isotropic"), theory_name="Corollary 1, eq. (12)",
                       reference=_rf_finite, reference_name="Corollary 1 + finite-d correction",
                       color="C0", marker="o"),
                Series("rf_optimal", "RF(Γ*)", "left", sweep,
                       {"regime": "random_features", "weight_covariance": "optimal"},
                       theory=_rf_theory("optimal"), theory_name="Corollary 1, eq. (12)",
                       color="C1", marker="s")]
    return out + shared_series(NAME, SIZES[scale], {
        "nt": (_nt_theory, "Theorem 2", _nt_exact, "exact finite-d mean (Weingarten)"),
        "nn": (_nn_theory, "Theorem 3")})


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


def _rf_correction_note(table: pd.DataFrame, scale: str) -> str:
    """The finite-d correction of RF(I) at N ≫ d against the gaps to Corollary 1."""
    sizes = SIZES[scale]
    spec = _specs(scale)[f"{NAME}-rf-{next(iter(sizes.rf_widths))}draws"]
    share = float(np.mean([trace_alignment(_b(sweep_task(spec, s)))
                           for s in sweep_seeds(spec)]))
    rows = table[(table["series"] == "rf_isotropic") & (table["panel"] == "left")]
    wide = rows[rows["x"] > 2 * sizes.dim]
    leading = -(1 - share) * wide["x"] / (sizes.dim * (sizes.dim + 1) / 2)
    return ("RF(I) at N ≫ d: gaps to Corollary 1 of " + ", ".join(
        f"{g:+.4f} ± {e:.4f} at N = {int(x)} (predicted {c:+.4f}, leading term "
        f"−(1 − T)N/(d(d+1)/2) = {lead:+.4f})" for x, g, e, c, lead in
        zip(wide["x"], wide["gap"], wide["sem"], wide["reference"] - wide["theory"], leading))
        + f", T = {share:.3f}. This is the O(N/d²) finite-d correction "
        "(lazylab.theory.finite_width_rf_correction): Corollary 1 is the d → ∞ limit at "
        "fixed ρ, while at finite d each feature w_i w_iᵀ also captures a share of the "
        "d(d+1)/2 − 1 traceless symmetric directions of B.")


def _claims(table: pd.DataFrame, scale: str) -> list[Claim]:
    dim = SIZES[scale].dim
    labels = {"nn": "NN", "nt_isotropic": "NT(I)", "rf_isotropic": "RF(I)"}
    return [
        separation_claim(table, ["nn", "nt_isotropic", "rf_isotropic"], labels),
        gap_claim(table, "nn", "NN (population GD to convergence) at Theorem 3's minimum "
                  "2Σ_{i>N}λ_i(B)²/‖f*‖² on the same B, every width (0 at N ≥ d), within 1e-3",
                  tolerance=1e-3, panels=("left", "limit")),
        gap_claim(table, "nt_isotropic", "NT(I) at its exact finite-d expectation (Weingarten, "
                  "docs/theory.md), within 3 s.e. + 1e-3", column="reference_gap",
                  tolerance=1e-3, sems=3.0),
        gap_claim(table, "nt_isotropic", "NT(I) at Theorem 2 (d → ∞), within 3 s.e. + the "
                  "finite-d correction (Weingarten − Theorem 2) + 1e-3", tolerance=1e-3,
                  sems=3.0, allowance=table["reference"] - table["theory"],
                  panels=("left", "limit")),
        gap_claim(table, "rf_isotropic", f"RF(I) at Corollary 1 for N ≤ d = {dim}, within "
                  "3 s.e. + 0.01 (O(d^-1/2))", tolerance=0.01, sems=3.0,
                  where=lambda rows: rows["x"] <= dim),
        gap_claim(table, "rf_isotropic", "RF(I) at Corollary 1 + its finite-d correction "
                  "(lazylab.theory.finite_width_rf_correction), every width, within 3 s.e. + "
                  "0.005", tolerance=0.005, sems=3.0, column="reference_gap"),
        gap_claim(table, "rf_optimal", "RF(Γ*) at Corollary 1, within 3 s.e. + 0.01",
                  tolerance=0.01, sems=3.0),
    ]


def summary(frames: dict, scale: str) -> str:
    """What the figure shows, the claims with verdicts and numbers, and the theory gaps."""
    table = points(frames, scale)
    sizes = SIZES[scale]
    correction_text = _rf_correction_note(table, scale)
    shows = (f"The normalized population risk R/‖f*‖² of four two-layer models fitting "
             f"f*(x) = xᵀBx − Tr B at d = {sizes.dim}. Left: at n = ∞ (exact), against the "
             "width N. "
             "Random features (only the second layer trained) stay far from zero even for N ≫ d: "
             "RF(I) tends to 1 − Tr(B)²/(d‖B‖_F²) ≈ ½, RF with the optimal covariance Γ* ∝ B "
             "decays like T/(T + ρ). The neural tangent model reaches zero at N = d; the "
             "trained network (NN), run to convergence, fits the top-N eigendirections of B and "
             "is far below both for N < d. Right: at a fixed N < d and a smaller d, risk "
             "against the number of samples n/d; dashed lines are the n = ∞ values.")
    notes = [
        "Every seed draws its own B (the task stream), so dots average over B and W; theory "
        "lines are averaged over the same B instances.",
        "RF uses σ = u² − 1 (Corollary 1, plotted in the paper's Fig. 1); NT and NN use σ = u² "
        "(Theorems 2 and 3).",
        correction_text,
        f"NN: population gradient descent on the closed-form risk (η = "
        f"{sizes.nn_learning_rate:g}, momentum {sizes.nn_momentum:g}) from s_w² = √d/N until "
        f"the population criterion (relative gradient norm or relative risk change over 100 "
        f"steps) is ≤ {sizes.nn_tol:g}, within {sizes.nn_max_steps} steps.",
        "NT at n = ∞: exact population least squares by preconditioned CG at N < d; at N ≥ d "
        "the class contains f* (every symmetric matrix is Σ w_i a_iᵀ + a_i w_iᵀ), the fit is "
        "the best quadratic form in O(d³) (lazylab.models._tangent_quadratic) and the risk is 0.",
        "Right panel: NN and NT by online SGD (one fresh batch per step; the sample budget n is "
        "the x value, so those fits stop by design, not by a tolerance); NT least squares with "
        "the ridge chosen on a validation split of its own seed stream (default wide grid).",
    ]
    return summary_text(table, shows, _claims(table, scale), notes)


STUDY = Study(name=NAME, description="Ghorbani et al. 2019 Fig. 1: RF vs NT vs NN, quadratic "
              "target, exact at n = ∞ and against n", sweeps=sweeps, figure=figure,
              summary=summary, points=points,
              scales={scale: sizes.describe() for scale, sizes in SIZES.items()},
              run_cost=run_cost)
