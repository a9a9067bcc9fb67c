"""ghorbani-fig2: RF vs NT vs NN on a mixture of two Gaussians (Ghorbani et al. 2019, Fig. 2).

Task: y = ±1 with probability ½, x | y ~ N(0, I ∓ Δ), Δ diagonal with entries uniform on
{2, 1.5, 1}/√d (task ``gaussian_mixture``, ``delta = "paper"``; each seed draws its own Δ).
R₀ = E y² = 1, so risks are on the paper's scale.

Left panel (n = ∞, exact engine), against the width N:
* RF(I): σ = u² − 1 (``hermite2``), w_i ~ N(0, I/d), population-optimal head; theory:
  Theorem 4, eq. (15), and dashed the RF line of eq. (17) as printed, whose ρ/(1+2ρ)
  contradicts (15) (THEORY §1.6; :mod:`lazylab.theory.ghorbani_printed`);
* NT(I): σ = u², exact population fit (PCG at N < d, the best quadratic form at N ≥ d);
  theory: Theorem 5;
* NN: f(x) = Σ a_i (w_i·x)² + c with a and W trained (the model of Theorem 6) by Adam on the
  exact population risk until the population criterion meets its tolerance; theory: Theorem 6;
* the Bayes MMSE (dotted): 1 − E tanh(s + √s Z), s = ‖Δ‖_F²/2 (lazylab.theory, M2 limit); the
  exact finite-d MMSE of the task is quoted in the summary.
Right panel: at a fixed N < d and a reduced d, NN and NT trained by online SGD and NT least
squares with a validated ridge on n samples, against n/d, with n = ∞ values (dashed) and
theory (dotted).

Scales (``SIZES``): smoke (seconds), default (minutes; left panel at the paper's d = 450),
paper (every size of §4; hours).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.studies._ghorbani import (Series, Sizes, Study, draw_figure, geometric,
                                       ghorbani_sweeps, run_cost, series_points, shared_series,
                                       sweep_seeds, sweep_task)
from lazylab.studies._ghorbani_claims import gap_claim, separation_claim, summary_text
from lazylab.theory.ghorbani_mixture import (bayes_risk_mixture, network_risk_mixture,
                                             neural_tangent_risk_mixture,
                                             random_features_risk_mixture)
from lazylab.theory.ghorbani_printed import printed_equation17_random_features_risk

__all__ = ["STUDY", "SIZES"]

NAME = "ghorbani-fig2"

_PAPER_WIDTHS = geometric(45, 4500, 25)
SIZES = {
    "smoke": Sizes(dim=16, rf_widths={3: (4, 8, 16, 32)}, nt_widths=(4, 8, 16), nt_draws=3,
                   nn_widths=(4, 8, 16), nn_draws=3, nn_max_steps=3000, nn_learning_rate=0.1,
                   online_dim=6, online_width=3, online_steps=(10, 60),
                   online_learning_rate=0.02, online_batch=50, nt_samples_per_dim=(10, 40),
                   nt_sgd_steps=(10, 60), online_draws=3),
    "default": Sizes(dim=450,
                     rf_widths={10: geometric(45, 450, 7), 4: (661, 970, 1425),
                                3: (2093, 3072, 4500)},
                     nt_widths=(*geometric(45, 307, 6), 450, 970, 2093), nt_draws=3,
                     nn_widths=(45, 97, 209, 450, 970), nn_draws=3, nn_max_steps=3000,
                     nn_learning_rate=0.1, online_dim=40, online_width=20,
                     online_steps=(10, 30, 100, 300, 1000, 3000, 10000),
                     online_learning_rate=0.02, online_batch=100,
                     nt_samples_per_dim=(25, 75, 250, 750, 2500),
                     nt_sgd_steps=(10, 30, 100, 300, 1000, 3000), online_draws=3),
    "paper": Sizes(dim=450, rf_widths={10: _PAPER_WIDTHS}, nt_widths=_PAPER_WIDTHS,
                   nt_draws=10, nn_widths=_PAPER_WIDTHS, nn_draws=3, nn_max_steps=20_000,
                   nn_learning_rate=0.1, online_dim=450, online_width=225,
                   online_steps=(1400, 4200, 14000, 42000, 140000), online_learning_rate=2e-3,
                   online_batch=100, nt_samples_per_dim=(25, 75, 250),
                   nt_sgd_steps=(2000, 6000, 20000, 60000), online_draws=3),
}


def _task(dim: int) -> dict:
    return {"name": "gaussian_mixture", "dim": dim, "delta": "paper"}


def _network(sizes: Sizes, width: int, dim: int, **changes) -> dict:
    """Theorem 6's model Σ a_i(w_i·x)² + c (a and W trained) by Adam on the exact population
    risk until the population criterion is ≤ tol (NTK parameterization, zero second layer)."""
    regime = {"name": "network", "activation": "quadratic", "train": "both",
              "training": "population", "max_steps": sizes.nn_max_steps, "tol": sizes.nn_tol,
              "optimizer": "adam", "learning_rate": sizes.nn_learning_rate,
              "parameterization": "ntk", "head_init": "zeros"}
    if changes.get("training") == "online":
        del regime["max_steps"], regime["tol"]
    regime.update(changes)
    return regime


def sweeps(scale: str) -> list[dict]:
    """The spec dictionaries of a scale (see :data:`SIZES`)."""
    rf = {"name": "random_features", "activation": "hermite2"}
    return ghorbani_sweeps(NAME, SIZES[scale], _task, rf,
                           "RF(I) with σ = u² − 1 at n = ∞ against the width", _network,
                           {"optimizer": "sgd", "schedule": "paper",
                            "parameterization": "standard", "head_init": "gaussian"})


# ----------------------------------------------------------------------------- theory

def _delta(task) -> np.ndarray:
    return task.delta.numpy()


def _rf_theory(ratio, task):
    return random_features_risk_mixture(ratio, _delta(task), activation="hermite2")


def _rf_printed(ratio, task):
    return printed_equation17_random_features_risk(ratio, _delta(task))


def _nt_theory(ratio, task):
    return neural_tangent_risk_mixture(ratio, _delta(task))


def _nn_theory(ratio, task):
    return network_risk_mixture(ratio, _delta(task))


def _series(scale: str) -> list[Series]:
    out = [Series("rf_isotropic", "RF(I)", "left", f"{NAME}-rf-{k}draws",
                  {"regime": "random_features"}, theory=_rf_theory,
                  theory_name="Theorem 4, eq. (15)", reference=_rf_printed,
                  reference_name="eq. (17) as printed", color="C0", marker="o")
           for k in SIZES[scale].rf_widths]
    return out + shared_series(NAME, SIZES[scale], {"nt": (_nt_theory, "Theorem 5"),
                                                    "nn": (_nn_theory, "Theorem 6")})


def _specs(scale: str) -> dict:
    return {spec["name"]: spec for spec in sweeps(scale)}


@functools.lru_cache(maxsize=8)
def _mmse(scale: str, exact: bool = False, first_only: bool = False) -> float:
    """Bayes MMSE averaged over the left panel's Δ instances (or the first seed's only):
    lazylab.theory's large-d formula, or (``exact``) the task's exact finite-d value (Fourier
    inversion, seconds per instance at d = 450)."""
    spec = sweeps(scale)[0]
    seeds = sweep_seeds(spec)[:1] if first_only else sweep_seeds(spec)
    tasks = [sweep_task(spec, seed) for seed in seeds]
    if exact:
        return float(np.mean([t.bayes_risk for t in tasks]))
    return float(np.mean([bayes_risk_mixture(_delta(t)) for t in tasks]))


def points(frames: dict, scale: str) -> pd.DataFrame:
    """The figure's points with theory values and gaps (the study's CSV)."""
    return series_points(frames, _series(scale), _specs(scale))


def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """Both panels as ``output_dir/ghorbani-fig2.png`` and ``.pdf``."""
    mmse = _mmse(scale)
    return draw_figure(points(frames, scale), _series(scale), _specs(scale), frames,
                       Path(output_dir) / NAME,
                       "Ghorbani et al. (2019), Fig. 2: mixture of Gaussians, Δ entries "
                       "{2, 1.5, 1}/√d",
                       extra_lines=[("Bayes MMSE (theory, M2 limit)", mmse, "black")])


def _claims(table: pd.DataFrame) -> list:
    labels = {"nn": "NN", "nt_isotropic": "NT(I)", "rf_isotropic": "RF(I)"}
    return [
        separation_claim(table, ["nn", "nt_isotropic", "rf_isotropic"], labels),
        gap_claim(table, "nn", "NN at Theorem 6 (o_d(1); no convergence theorem for the "
                  "mixture), within 3 s.e. + 0.02", tolerance=0.02, sems=3.0,
                  panels=("left", "limit")),
        gap_claim(table, "nt_isotropic", "NT(I) at Theorem 5 on the left panel's d, within "
                  "3 s.e. + 0.01", tolerance=0.01, sems=3.0),
        gap_claim(table, "nt_isotropic", "NT(I) at Theorem 5 at the right panel's n = ∞ (its "
                  "d: o_d(1), as NN), within 3 s.e. + 0.02", tolerance=0.02, sems=3.0,
                  panels=("limit",)),
        gap_claim(table, "rf_isotropic", "RF(I) at Theorem 4, eq. (15), within 3 s.e. + 0.01",
                  tolerance=0.01, sems=3.0),
        gap_claim(table, "rf_isotropic", "RF(I) at eq. (17) as printed, within 3 s.e. + 0.01",
                  column="reference_gap", tolerance=0.01, sems=3.0),
    ]


def summary(frames: dict, scale: str) -> str:
    """What the figure shows, the claims with verdicts and numbers, and the theory gaps."""
    table = points(frames, scale)
    sizes = SIZES[scale]
    mmse = _mmse(scale)
    first, exact = _mmse(scale, first_only=True), _mmse(scale, exact=True, first_only=True)
    shows = (f"The population risk E(y − f(x))² (R₀ = E y² = 1) of two-layer models classifying "
             f"two centered Gaussians that differ only in their covariance (I ∓ Δ), d = "
             f"{sizes.dim}. Left: at n = ∞ (exact), against the width N. Random features barely "
             "improve on the trivial predictor; the neural tangent model improves until N = d; "
             "the trained network (NN) captures the largest entries of Δ first and is below "
             "both for N < d. None reaches the Bayes error (dotted): the best quadratic "
             "predictor is not the posterior mean. Right: at a fixed N < d and a smaller d, risk "
             "against n/d; dashed lines are the n = ∞ values.")
    notes = [
        f"Bayes MMSE: {mmse:.4f} (lazylab.theory.bayes_risk_mixture, large-d limit, averaged "
        f"over the Δ instances). For the first seed's Δ the formula gives {first:.4f} and the "
        f"exact finite-d MMSE is {exact:.4f} (gap {first - exact:+.4f}).",
        "Every seed draws its own Δ (the task stream); theory lines are averaged over the same "
        "instances.",
        "RF uses σ = u² − 1; solid line eq. (15), dashed line the RF line of eq. (17) as "
        "printed, ρ/(1+2ρ) in place of ρ/(1+ρ): the engine follows (15).",
        f"NN: Adam (η = {sizes.nn_learning_rate:g}, NTK parameterization, zero second layer: "
        "every a_i then turns negative, the sign the optimum M ∝ −Δ needs) on the exact "
        f"population risk until the population criterion is ≤ {sizes.nn_tol:g}, within "
        f"{sizes.nn_max_steps} steps. Theorem 6 holds up to o_d(1).",
        "NT at n = ∞: exact population least squares by preconditioned CG at N < d; at N ≥ d, "
        "where the class is every quadratic form, the best quadratic form in O(d³) "
        "(lazylab.models._tangent_quadratic).",
        "Right panel: NN (standard parameterization, random second layer, the paper's "
        "learning-rate drops) and NT by online SGD (the sample budget n is the x value); NT "
        "least squares with the ridge chosen on a validation split (default wide grid).",
    ]
    return summary_text(table, shows, _claims(table), notes)


STUDY = Study(name=NAME, description="Ghorbani et al. 2019 Fig. 2: RF vs NT vs NN, mixture of "
              "Gaussians, exact at n = ∞ and against n", sweeps=sweeps, figure=figure,
              summary=summary, points=points,
              scales={scale: sizes.describe() for scale, sizes in SIZES.items()},
              run_cost=functools.partial(run_cost, components=2))
