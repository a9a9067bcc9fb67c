"""Mei–Montanari RF ridge asymptotics: limits, identities, and the exact finite-d engine.

Target for the engine test: y = F₁He₁(u₁·x) + (F*/√2)He₂(u₂·x) + τξ (``MultiIndex``), so
‖β‖² = F₁², E f_NL² = F*², with F₁² = 1, F*² = 0.25, τ² = 0.25; activation erf (odd: μ₀ = μ₂ = 0,
closed-form dual kernel).
"""

import math

import numpy as np
import pytest
import torch

from lazylab.models import RandomFeatures
from lazylab.risk import population_risk
from lazylab.tasks.multi_index import MultiIndex
from lazylab.theory import (hermite_constants, random_features_optimal_ridge_risk,
                            random_features_ridge_bias_variance,
                            random_features_ridge_fixed_point, random_features_ridge_risk)

LINEAR, NONLINEAR, NOISE = 1.0, 0.25, 0.25
ENERGIES = dict(linear_energy=LINEAR, nonlinear_energy=NONLINEAR, noise_variance=NOISE)


def _marchenko_pastur_stieltjes(gamma, ratio):
    """m(−γ) = ∫ dμ(s)/(s + γ) for the MP law of XᵀX/n, d/n = ratio (positive branch)."""
    shifted = 1.0 - ratio + gamma
    return (np.sqrt(shifted**2 + 4.0 * ratio * gamma) - shifted) / (2.0 * ratio * gamma)


def _linear_ridge_risk(sample_ratio, gamma, signal, noise):
    """Ridge (XᵀX + nγ)⁻¹Xᵀy, x ~ N(0, I_d), ‖β‖² = signal, noise variance ``noise`` [D]:
    bias signal·γ²∫(s+γ)⁻², variance noise·(d/n)∫s(s+γ)⁻²."""
    ratio, step = 1.0 / sample_ratio, 1e-6 * gamma
    m = _marchenko_pastur_stieltjes(gamma, ratio)
    second = -(_marchenko_pastur_stieltjes(gamma + step, ratio)
               - _marchenko_pastur_stieltjes(gamma - step, ratio)) / (2.0 * step)
    return signal * gamma**2 * second + noise * ratio * (m - gamma * second)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("sample_ratio", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("paper_ridge", [1e-3, 0.1, 1.0])
def test_wide_limit_is_kernel_ridge(activation, sample_ratio, paper_ridge):
    """ψ₁ → ∞: kernel ridge with K(X, X) + ψ₂λI; in the proportional regime K ≈ μ₁²XXᵀ/d + μ*²I
    (+ constants), i.e. linear ridge with γ = (μ*² + ψ₂λ)/(μ₁²ψ₂) and noise τ² + F*² [D]."""
    consts = hermite_constants(activation, offset=True)
    width_ratio = 1e7
    risk = random_features_ridge_risk(width_ratio, sample_ratio, ridge=paper_ridge * width_ratio,
                                      activation=activation, **ENERGIES)
    gamma = (consts.lambda_tilde + sample_ratio * paper_ridge) / (consts.lambda1**2 * sample_ratio)
    expected = _linear_ridge_risk(sample_ratio, gamma, LINEAR, NOISE + NONLINEAR) + NONLINEAR
    assert float(risk) == pytest.approx(expected, abs=1e-5)    # O(1/ψ₁) + finite differences


def test_infinite_ridge_gives_null_risk():
    risk = random_features_ridge_risk([0.5, 1.0, 2.0], 1.5, ridge=1e12, **ENERGIES)
    assert np.allclose(risk, LINEAR + NONLINEAR, atol=1e-5)
    with_noise = random_features_ridge_risk(1.0, 1.5, ridge=1e12, include_noise=True, **ENERGIES)
    assert float(with_noise) == pytest.approx(LINEAR + NONLINEAR + NOISE, abs=1e-5)


def test_purely_nonlinear_activation_identity():
    """ζ = 0: the features carry no linear part, so the linear target is noise: ℬ = 1 + 𝒱."""
    psi1, psi2 = np.meshgrid([0.3, 1.0, 4.0], [0.5, 2.0])
    bias, variance = random_features_ridge_bias_variance(psi1, psi2, 0.05, 0.0)
    assert np.allclose(bias, 1.0 + variance, rtol=1e-12)


def test_fixed_point_solves_definition_1():
    psi1, psi2, lam, zeta = 1.7, 0.6, 0.02, 1.3
    a1, a2 = random_features_ridge_fixed_point(psi1, psi2, lam, zeta)
    xi, nu1, nu2 = 1j * math.sqrt(psi1 * psi2 * lam), 1j * float(a1), 1j * float(a2)
    coupling = zeta**2 / (1.0 - zeta**2 * nu1 * nu2)
    assert abs(nu1 - psi1 / (-xi - nu2 - coupling * nu2)) < 1e-12
    assert abs(nu2 - psi2 / (-xi - nu1 - coupling * nu1)) < 1e-12
    assert abs(nu1) <= psi1 / xi.imag and abs(nu2) <= psi2 / xi.imag


def test_interpolation_peak_at_equal_ratios():
    """λ → 0: the risk diverges at ψ₁ = ψ₂ like λ^{-1/2} and stays finite elsewhere."""
    ridges = np.array([1e-6, 1e-8])
    peak = random_features_ridge_risk(1.0, 1.0, ridge=ridges, **ENERGIES)
    slope = math.log(peak[1] / peak[0]) / math.log(ridges[1] / ridges[0])
    assert slope == pytest.approx(-0.5, abs=0.02)
    for psi1 in (0.5, 2.0):
        off = random_features_ridge_risk(psi1, 1.0, ridge=ridges, **ENERGIES)
        assert off[1] == pytest.approx(off[0], rel=1e-3) and off[1] < peak[1] / 50


def test_optimal_ridge_is_interior_minimum():
    risk, ridge = random_features_optimal_ridge_risk([0.5, 1.0, 2.0], 1.0, **ENERGIES)
    assert np.all((ridge > 1e-6) & (ridge < 1e3))           # with noise the optimum is interior
    grid = np.geomspace(1e-4, 1e2, 400)
    for psi1, r in zip([0.5, 1.0, 2.0], risk):
        assert r <= random_features_ridge_risk(psi1, 1.0, ridge=grid, **ENERGIES).min() + 1e-9
    assert np.all(np.diff(risk) < 0)       # with optimal ridge, more features never hurt


def test_validation():
    with pytest.raises(ValueError, match="ridge"):
        random_features_ridge_risk(1.0, 1.0, ridge=0.0)
    with pytest.raises(ValueError, match="sample_ratio"):
        random_features_ridge_risk(1.0, -1.0, ridge=0.1)
    with pytest.raises(ValueError, match="noise_variance"):
        random_features_ridge_risk(1.0, 1.0, ridge=0.1, noise_variance=-1.0)


def _engine_risk(dim, width_ratio, sample_ratio, ridge, seeds):
    """Mean and standard error over seeds of the exact excess risk of RF ridge on samples."""
    values = []
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        directions = np.linalg.qr(rng.standard_normal((dim, 2)))[0].T
        task = MultiIndex(torch.tensor(directions),
                          {(1, 0): math.sqrt(LINEAR), (0, 2): math.sqrt(NONLINEAR / 2)},
                          noise=math.sqrt(NOISE))
        data = task.sample(round(sample_ratio * dim), rng=rng)
        model = RandomFeatures(width=round(width_ratio * dim), activation="erf", ridge=ridge,
                               offset=True).fit(data, rng=rng)
        values.append(float(population_risk(model, task)) - NOISE)
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(seeds))


@pytest.mark.slow
@pytest.mark.parametrize("width_ratio, sample_ratio, kind", [
    (0.5, 2.0, "optimal"), (2.0, 0.5, "optimal"), (1.0, 1.0, "optimal"), (2.0, 2.0, "optimal"),
    (0.5, 2.0, "small"), (2.0, 0.5, "small")])
def test_engine_agreement(width_ratio, sample_ratio, kind):
    """Exact RF ridge at d = 120, 6 seeds. Tolerance 4.5 standard errors (statistical) plus
    0.3/√d relative for the o(1) of Theorem 1 (at d = 150 the mean gap over 9 (ψ₁, ψ₂) at the
    optimal ridge was +1.6 % ≈ 0.2/√d). Small ridge (λ_L = 1e-3) only off the peak ψ₁ = ψ₂."""
    dim = 120
    if kind == "optimal":
        _, ridge = random_features_optimal_ridge_risk(width_ratio, sample_ratio,
                                                      activation="erf", **ENERGIES)
        ridge = float(ridge)
    else:
        ridge = 1e-3
    theory = float(random_features_ridge_risk(width_ratio, sample_ratio, ridge=ridge,
                                              activation="erf", **ENERGIES))
    mean, error = _engine_risk(dim, width_ratio, sample_ratio, ridge, seeds=6)
    assert abs(mean - theory) <= 4.5 * error + 0.3 / math.sqrt(dim) * theory
