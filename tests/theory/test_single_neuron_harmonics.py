"""Sphere energies of relu, the random-projection deterministic equivalent, and exact RF."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazylab.theory.single_neuron_harmonics import (
    harmonic_multiplicities, random_projection_risk, relu_features_required_width,
    relu_features_risk, relu_sphere_energies)
from lazylab.theory.yehudai_shamir import single_neuron_random_features_risk


@pytest.mark.parametrize("dim", [3, 8, 24])
def test_energies_are_a_partition_with_the_exact_low_degrees(dim):
    e = relu_sphere_energies(dim, 40)
    assert 0.999 < e.sum() <= 1 + 1e-9                  # the degrees above 40 hold < 0.1 %
    assert e[1] == pytest.approx(0.5, rel=1e-9)         # E[t relu(t)]²·d / E relu(t)² = 1/2
    # E relu(t) = Γ(d/2)/(2√π Γ((d+1)/2)), E relu(t)² = 1/(2d)
    mean = math.exp(math.lgamma(dim / 2) - math.lgamma((dim + 1) / 2)) / (2 * math.sqrt(math.pi))
    assert e[0] == pytest.approx(mean ** 2 * 2 * dim, rel=1e-9)
    assert np.all(np.abs(e[3::2]) < 1e-12)              # relu = t/2 + |t|/2: no odd k ≥ 3


def test_energies_tend_to_the_hermite_shares():
    e = relu_sphere_energies(100, 4)
    # Gaussian limit: λ_k²/k! / E relu² with λ₀ = λ₂ = 1/√(2π), λ₄ = −1/√(2π)
    hermite = np.array([1 / math.pi, 0.5, 1 / (2 * math.pi), 0.0, 1 / (24 * math.pi)])
    assert np.allclose(e, hermite, atol=3e-3)


def test_projection_matches_gaussian_random_projections():
    rng = np.random.default_rng(0)
    mult = np.array([1, 30, 300])
    mu = np.array([1.0, 0.02, 1e-4])
    energies = np.array([0.2, 0.5, 0.3])
    scale = np.repeat(np.sqrt(mu), mult)
    beta = np.concatenate([rng.standard_normal(n) for n in mult])
    starts = np.cumsum(np.concatenate([[0], mult]))
    for k in range(3):
        block = beta[starts[k]:starts[k + 1]]
        beta[starts[k]:starts[k + 1]] = block * math.sqrt(energies[k] / (block @ block))
    for width in (20, 60):
        residuals = []
        for _ in range(20):
            phi = rng.standard_normal((width, scale.size)) * scale
            projected = phi.T @ np.linalg.lstsq(phi.T, beta, rcond=None)[0]
            residuals.append(float((beta - projected) @ (beta - projected)))
        theory = float(random_projection_risk(width, mu, mult, energies))
        assert np.mean(residuals) == pytest.approx(theory, rel=0.05)
    assert float(random_projection_risk(331, mu, mult, energies)) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_prediction_matches_exact_random_features(seed):
    dim, width = 16, 384
    rng = np.random.default_rng(seed)
    target = np.zeros(dim)
    target[0] = dim
    exact = single_neuron_random_features_risk(target, 0.0, rng.standard_normal((width, dim)))
    # the equivalent is asymptotic: measured gaps 13 % here (d = 16, r = 384, between the degree-2
    # and degree-4 blocks), 1–4 % at d = 16–24 with r ≥ 1024
    assert exact.normalized_risk == pytest.approx(float(relu_features_risk(width, dim)), rel=0.2)


def test_required_width_inverts_the_risk_and_grows_with_precision():
    width = relu_features_required_width(0.05, 12)
    assert float(relu_features_risk(width, 12)) == pytest.approx(0.05, rel=1e-4)
    assert relu_features_required_width(0.02, 12) > 2 * width
    assert harmonic_multiplicities(5, 2).tolist() == [1, 5, 14]
    with pytest.raises(ValueError, match="epsilon"):
        relu_features_required_width(1.5, 12)
