"""kernel-curves: kernel and random-features learning curves against their deterministic
equivalents (issue 13, part 2).

Panel (a), (b): kernel ridge with the infinite-width RF and NT kernels of ReLU (``kernel``
regime, kinds "rf" and "ntk"; Cholesky, FALKON above 2·10⁴ samples at the paper scale) on the
multi-index target "two-index" (task ``multi_index``, noise-free): f*(x) = ½z₁ + (½/√2)He₂(z₁) +
(½/√2)He₂(z₂) + (½/√24)He₄(z₂), z = Ux, whose Hermite-degree energies e_k = Σ_{|α|=k} c_α²α!
(computed from the task's coefficients, :func:`degree_energies`) are e = (0, ¼, ½, 0, ¼).
n = κ·d^ℓ for ℓ in the scale's exponents; the ridge is chosen on a validation split from the
shared kernel-baseline grid s·10^k, k = −14 … 4, s = E k(x, x)
(:mod:`lazylab.studies._kernel_baselines`: its low end is the solver's numerical floor); the
risk is the test risk on ``n_test`` fresh samples (noise-free: an unbiased estimate of the
excess risk; Var y = 1).
Theory lines (:mod:`lazylab.theory.staircase`): the staircase ‖P_{>⌊ℓ⌋}f*‖² and the
deterministic-equivalent risk at each run's validated ridge, with the kernel's profile
h(t) = K(x, y) at ‖x‖ = ‖y‖ = √d, ⟨x, y⟩/d = t, evaluated through the kernel itself
(:func:`kernel_profile`).
Caveat (stated in the summary): the theory is for x uniform on √d·S^{d−1}; the tasks are
Gaussian. A bias-free ReLU kernel is 1-homogeneous, K(x, y) = r_x r_y h(x̂·ŷ) with r = ‖x‖/√d,
so it only represents r·g(x̂) (r and x̂ independent). [D] For He₂(u·x) = r²a − 1, a = d(u·x̂)²,
the best r·g leaves E_r(r²a − 1)² − (aE r³ − E r)²/E r² = (a + 1)²/(2d) + O(d⁻²) (E r² = 1,
Var r² = 2/d); averaged over a (E a = 1, E a² = 3) and divided by E He₂² = 2: 3/(2d) of a pure
He₂ energy is out of reach, a floor the spherical theory does not have. One-off check (exact
kernel ridge, NT kernel, λ = 10⁻⁵): He₂ alone leaves 0.131 (d = 16, n = 1024) and 0.064 (d = 32,
n = 4096) of its energy on Gaussian inputs, 0.005 and 0.006 on the sphere (theory 0.004, 0.007).

Panel (c): random-features ridge regression (``random_features``, ReLU, w ~ N(0, I/d), free
offset) at fixed ψ₂ = n/d against N/n, on the single-neuron target y = relu(w*·x), ‖w*‖ = 1; the
risk is the exact population risk. Two ridges: a small fixed one and the one validated on a
grid. Theory: :func:`lazylab.theory.random_features_ridge_risk` and
:func:`~lazylab.theory.random_features_optimal_ridge_risk` (Mei & Montanari 2019) with
F₁² = ‖E[y x]‖² and F*² = E y² − (E y)² − F₁², both from the task's exact moments.

Scales: see :data:`SIZES`.
"""


from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lazylab.plots import draw_points, plt, save_figure
from lazylab.studies._kernel_baselines import RIDGE_EXPONENTS
from lazylab.studies._kernel_curves_data import (KINDS, NAME, PRESET, RF_SMALL_RIDGE,
                                                 SCALES, SIZES, Sizes, degree_energies,
                                                 kernel_dots, kernel_profile, kernel_table,
                                                 points, rf_dots, rf_table, rf_theory, run_cost,
                                                 spec_task, sweeps, target_split)
from lazylab.studies.base import Study
from lazylab.theory.staircase import staircase_risk

__all__ = ["STUDY", "SIZES", "Sizes", "degree_energies", "kernel_profile", "target_split",
           "kernel_table", "rf_table", "kernel_dots", "rf_dots"]

_LABELS = {"rf": "RF kernel", "ntk": "NT kernel"}


# ----------------------------------------------------------------------------- figure

def _kernel_panel(axes, dots: pd.DataFrame, kind: str, energies: tuple, colors: list) -> None:
    """Risk / Var y against ℓ = log n / log d per d, theory at the validated ridge, staircase."""
    rows = dots[dots["kind"] == kind]
    for index, dim in enumerate(sorted(rows["dim"].unique())):
        group = rows[rows["dim"] == dim].sort_values("n_train")
        color = colors[index % len(colors)]
        draw_points(axes, group["ell"], group["mean"], group["sem"], color=color, marker="o",
                    linestyle="none", markersize=5, capsize=2, label=f"kernel ridge, d = {dim}",
                    unconverged=group["unconverged"])
        axes.plot(group["ell"], group["theory"], "-", color=color, linewidth=1,
                  label=f"deterministic equivalent, d = {dim}")
    ells = np.linspace(0.9, 2.6, 400)
    dim = 64.0
    stairs = [float(staircase_risk(dim ** ell, int(dim), energies)) for ell in ells]
    axes.plot(ells, stairs, "k--", linewidth=1, label="staircase ‖P_{>⌊ℓ⌋} f*‖²")
    axes.set(xlabel="ℓ = log n / log d", ylabel="test risk / Var y", ylim=(0, 1.15),
             title=f"({'ab'[KINDS.index(kind)]}) {_LABELS[kind]} ridge (ReLU), validated ridge")
    axes.legend(fontsize=6, frameon=False)


def _rf_panel(axes, dots: pd.DataFrame, split: tuple, sizes: Sizes, colors: list) -> None:
    """Population risk / Var y against N/n with the Mei–Montanari curves."""
    linear, nonlinear, variance = split
    ratios = np.geomspace(min(sizes.rf_width_ratios), max(sizes.rf_width_ratios), 60)
    psi2 = sizes.rf_sample_ratio
    psi1 = tuple(float(v) for v in ratios * psi2)
    small = np.array(rf_theory(psi1, psi2, "small", linear, nonlinear))
    best = np.array(rf_theory(psi1, psi2, "validated", linear, nonlinear))
    for index, (rule, curve, label) in enumerate((
            ("small", small, f"ridge λ = {RF_SMALL_RIDGE:g}"),
            ("validated", best, "validated ridge (theory: optimal ridge)"))):
        color = colors[(index + 3) % len(colors)]
        group = dots[dots["ridge_rule"] == rule].sort_values("ratio")
        draw_points(axes, group["ratio"], group["mean"], group["sem"], color=color, marker="s",
                    linestyle="none", markersize=4, capsize=2, label=f"RF, {label}")
        axes.plot(ratios, curve / variance, "-", color=color, linewidth=1,
                  label="Mei–Montanari 2019" if index == 0 else "Mei–Montanari, optimal λ")
    axes.axvline(1.0, color="grey", linewidth=0.6, linestyle=":")
    axes.set_xscale("log")
    axes.minorticks_off()
    ticks = [t for t in (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
             if min(sizes.rf_width_ratios) <= t <= max(sizes.rf_width_ratios)]
    axes.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    axes.set(yscale="log", xlabel="N / n (width / samples)",
             ylabel="population risk / Var y",
             title=f"(c) RF ridge, ReLU, n/d = {psi2:g}, d = {sizes.rf_dim}")
    axes.legend(fontsize=6, frameon=False)


def figure(frames: dict, scale: str, output_dir: Path) -> list[Path]:
    """(a), (b) kernel learning curves against ℓ; (c) the RF double-descent curve."""
    sizes = SIZES[scale]
    kernel = kernel_dots(kernel_table(frames, scale))
    rf = rf_dots(rf_table(frames, scale))
    energies = degree_energies(spec_task(scale, "kc-rf-d", 0))
    split = target_split(spec_task(scale, "kc-rfridge-small", 0))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes[:2], KINDS):
        _kernel_panel(ax, kernel, kind, energies, colors)
    _rf_panel(axes[2], rf, split, sizes, colors)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.25)
    fig.suptitle("Kernel and random-features learning curves against their deterministic "
                 f"equivalents (target {PRESET}: energies {', '.join(f'{e:g}' for e in energies)}"
                 " in degrees 0–4; ReLU single neuron in (c))", fontsize=10)
    return save_figure(fig, Path(output_dir) / NAME)


# ----------------------------------------------------------------------------- summary

def _verdict(ok: bool) -> str:
    return "**supported**" if ok else "**not supported**"


def _kernel_summary(dots: pd.DataFrame, energies: tuple, seeds: int) -> list[str]:
    tails = np.cumsum(np.asarray(energies)[::-1])[::-1]
    lines = [f"## (a), (b) kernel ridge learning curves ({seeds} seeds per dot)", "",
             f"Target energies by Hermite degree e = ({', '.join(f'{e:g}' for e in energies)});"
             f" staircase plateaus ‖P_{{>ℓ}}f*‖² = {', '.join(f'{t:g}' for t in tails[1:])} "
             "for ℓ = 0, 1, ….  Gap = risk/theory − 1 at each run's validated ridge (mean ± "
             "s.e. over seeds). The equivalence *applies* at a dot where |gap| ≤ 2 s.e. + "
             "0.5/√d (0.5/√d: its finite-d error, the tolerance of "
             "tests/theory/test_staircase.py) and s.e. ≤ 0.5/√d; 'unresolved' where the s.e. is "
             "larger; 'no' where |gap| exceeds the bound. The test risk (fresh samples) is "
             "noisy: the unlearned (½/√24)He₄ part of the residual is heavy-tailed, so one "
             "seed's estimate has s.d. ≈ 0.1–0.15 at the default n_test.", "",
             "| kernel | d | n | ℓ | risk / Var y | theory | staircase | gap | applies | "
             "ridge at grid edge |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in dots.itertuples(index=False):
        lines.append(f"| {row.kind} | {row.dim} | {row.n_train} | {row.ell:.2f} | "
                     f"{row.mean:.3f} ± {row.sem:.3f} | {row.theory:.3f} | {row.staircase:.2f} | "
                     f"{100 * row.gap:+.1f} % ± {100 * row.gap_sem:.1f} % | {row.applies} | "
                     f"{row.at_edge:.2f} |")
    lines += [""] + _pooled_claims(dots) + _plateau_claims(dots, tails)
    return lines


def _pooled_claims(dots: pd.DataFrame) -> list[str]:
    """The gap pooled over d per kernel and ℓ (independent data sets): mean ± s.e."""
    lines = []
    for ell, group in dots.groupby(dots["ell"].round(1)):
        parts = []
        ok = True
        for kind, rows in group.groupby("kind"):
            mean = float(rows["gap"].mean())
            sem = float(np.sqrt((rows["gap_sem"] ** 2).sum()) / len(rows))
            bound = 2 * sem + 0.5 / math.sqrt(float(rows["dim"].min()))
            ok = ok and abs(mean) <= bound
            parts.append(f"{kind} {100 * mean:+.1f} % ± {100 * sem:.1f} % over d = "
                         f"{', '.join(str(d) for d in rows['dim'])}")
        lines.append(f"* Claim (deterministic equivalent at n = d^{ell:g}; Misiakiewicz 2022, "
                     f"Hu & Lu 2022, for inputs on the sphere): {_verdict(ok)} — pooled gap "
                     + "; ".join(parts) + " (bound 2 s.e. + 0.5/√d at the smallest d).")
    return lines


def _plateau_claims(dots: pd.DataFrame, tails: np.ndarray) -> list[str]:
    """Plateau heights at ℓ = 1.5 and 2.5 against the staircase, and the gap against d."""
    lines = []
    for ell, plateau, before in ((1.5, tails[2], tails[1]), (2.5, tails[3], tails[2])):
        rows = dots[(dots["ell"] - ell).abs() < 0.05]
        if rows.empty:
            continue
        by_d = rows.groupby("dim")["mean"].mean()
        nearer = bool(np.all((by_d - plateau).abs() < (by_d - before).abs()))
        lines.append(f"* Claim (staircase: at n = d^{ell:g} the risk sits on the plateau "
                     f"‖P_{{>{int(ell)}}}f*‖² = {plateau:g}, the level {before:g} of the "
                     f"previous step left behind): {_verdict(nearer)} — risk by d: "
                     + ", ".join(f"d = {d}: {v:.3f}" for d, v in by_d.items())
                     + "; its distance to the plateau at finite d is what the deterministic "
                     "equivalent adds (table).")
    high = dots[dots["ell"] >= 1.95]
    if len(high):
        lines.append("* Gap × d at ℓ ≥ 2 (were the gap the 1/d radial floor of Gaussian inputs "
                     "alone, module docstring, this would stay constant): " + ", ".join(
                         f"{r.kind} d={r.dim} ℓ={r.ell:.1f}: {r.gap * r.dim:.2f}"
                         for r in high.itertuples()) + ".")
    lines += _edge_lines(dots)
    return lines


def _edge_lines(dots: pd.DataFrame) -> list[str]:
    """Grid-edge selections, split into the numerical floor (ridge-less optimal), the top (the
    null predictor optimal) and any other edge (none possible with this grid: both ends are
    one of the two)."""
    floor = dots[dots["floor_edge"] > 0]
    null = dots[dots["null_edge"] > 0]
    interior = dots[dots["at_edge"] == 0]

    def cells(rows, column):
        return ", ".join(f"{r.kind} d={r.dim} ℓ={r.ell:.1f} ({getattr(r, column):.2f} of seeds)"
                         for r in rows.itertuples())
    grid = ", ".join(str(k) for k in RIDGE_EXPONENTS)
    return [f"* Ridge grid (shared with the other kernel baselines, "
            f"`studies/_kernel_baselines.py`): λ = s·10^k, k ∈ {{{grid}}}, s = E k(x, x) = h(1) "
            f"(the kernel's scale). Every seed's choice is interior at {len(interior)} of "
            f"{len(dots)} dots.",
            f"* At the numerical floor (λ = 10⁻¹⁴·s: *ridge-less is optimal*, the validation "
            f"risk is flat below ≈ 10⁻⁸·s, the kernel's high-degree tail acting as a ridge by "
            f"itself; not an optimum outside the grid): {len(floor)} of {len(dots)} dots"
            + (f": {cells(floor, 'floor_edge')}." if len(floor) else "."),
            f"* At the top (λ = 10⁴·s: *predicting ≈ 0 is optimal*, the risk equals the null "
            f"risk): {len(null)} of {len(dots)} dots" + (f": {cells(null, 'null_edge')}."
                                                          if len(null) else ".")]


def _rf_summary(dots: pd.DataFrame, sizes: Sizes, split: tuple) -> list[str]:
    linear, nonlinear, variance = split
    lines = ["", f"## (c) random-features ridge regression ({sizes.rf_seeds} seeds per dot)", "",
             f"d = {sizes.rf_dim}, n = {sizes.rf_sample_ratio:g}·d, ReLU features, target "
             f"relu(w*·x): F₁² = {linear:.4f}, F*² = {nonlinear:.4f} (Var y = {variance:.4f}),"
             " from the task's exact moments; exact population risks.", "",
             "| ridge | N/n | risk / Var y | Mei–Montanari | gap | ridge used |",
             "|---|---|---|---|---|---|"]
    for row in dots.itertuples(index=False):
        lines.append(f"| {row.ridge_rule} | {row.ratio:g} | {row.mean:.3f} ± {row.sem:.3f} | "
                     f"{row.theory:.3f} | {100 * row.gap:+.1f} % ± {100 * row.gap_sem:.1f} % | "
                     f"{row.ridge:.2g} |")
    validated = dots[dots["ridge_rule"] == "validated"]
    lines.append(f"* Validated RF ridge (platform grid 'auto', scale·10^-8 … scale·10^2) on a grid "
                 f"edge at {int((validated['at_edge'] > 0).sum())} of {len(validated)} dots.")
    small = dots[dots["ridge_rule"] == "small"].sort_values("ratio")
    best = dots[dots["ridge_rule"] == "validated"].sort_values("ratio")
    if len(small) > 2:
        peak = float(small["ratio"].iloc[int(np.argmax(small["mean"].to_numpy()))])
        lines.append(f"* Claim (double descent: the small-ridge risk peaks at N = n): "
                     f"{_verdict(0.75 <= peak <= 1.25)} — measured peak at N/n = {peak:g}.")
    if len(best) > 2:
        rises = np.diff(best["mean"].to_numpy()) - 2 * best["sem"].to_numpy()[1:]
        lines.append(f"* Claim (the optimal ridge removes the peak: risk non-increasing in N): "
                     f"{_verdict(bool(np.all(rises <= 0)))} — largest rise between neighbours "
                     f"{float(np.max(np.diff(best['mean'].to_numpy()))):+.3f}.")
    for rule, rows in dots.groupby("ridge_rule"):
        far = rows[(rows["ratio"] - 1).abs() >= 0.25]
        near = rows[(rows["ratio"] - 1).abs() < 0.25]
        if far.empty:
            continue
        worst = float(far["gap"].abs().max())
        lines.append(f"* Claim (Mei–Montanari Theorem 1 at finite d, {rule} ridge): "
                     f"{_verdict(worst <= 0.1)} within 10 % away from the peak (|N/n − 1| ≥ "
                     f"0.25): largest |gap| {100 * worst:.1f} % (at N/n = "
                     f"{float(far.loc[far['gap'].abs().idxmax(), 'ratio']):g}), mean |gap| "
                     f"{100 * float(far['gap'].abs().mean()):.1f} %"
                     + (f"; near the peak largest |gap| "
                        f"{100 * float(near['gap'].abs().max()):.1f} %" if len(near) else "")
                     + ".")
    return lines


def summary(frames: dict, scale: str) -> str:
    """Claims with verdicts: deterministic equivalent, staircase, double descent, MM theory."""
    sizes = SIZES[scale]
    kernel = kernel_dots(kernel_table(frames, scale))
    rf = rf_dots(rf_table(frames, scale))
    energies = degree_energies(spec_task(scale, "kc-rf-d", 0))
    split = target_split(spec_task(scale, "kc-rfridge-small", 0))
    lines = [f"Scale {scale}: {SCALES[scale]}.", "",
             "Theory for (a), (b) is stated for inputs on the sphere √d·S^{d−1}; the data are "
             "Gaussian. The bias-free ReLU kernels only represent r·g(x̂) (r = ‖x‖/√d), which "
             "leaves an O(1/d) part of each degree-≥2 component unlearnable (≈ 1.5/d of a pure "
             "He₂ energy, [D] in the module docstring): a floor the theory lacks.", ""]
    lines += _kernel_summary(kernel, energies, sizes.seeds)
    lines += _rf_summary(rf, sizes, split)
    return "\n".join(lines)


STUDY = Study(name=NAME, description="kernel ridge (RF/NT kernels) against the staircase and "
              "its deterministic equivalent; RF ridge double descent against Mei–Montanari",
              sweeps=sweeps, figure=figure, summary=summary, points=points, scales=SCALES,
              run_cost=run_cost)
