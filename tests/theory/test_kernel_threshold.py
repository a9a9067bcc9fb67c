"""Samples a ReLU kernel needs: profiles against the Kernel model, the staircase limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.theory import (RELU_KERNEL_PROFILES, best_kernel_ridge_risk, harmonic_dimension,
                            homogeneous_floor,
                            kernel_samples_needed)


@pytest.mark.parametrize("kind", ["rf", "ntk"])
def test_profiles_equal_the_model_kernels_on_the_sphere(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 7))
    x *= math.sqrt(7) / np.linalg.norm(x, axis=1, keepdims=True)
    gram = DualKernel(kind)(torch.from_numpy(x), torch.from_numpy(x)).numpy()
    assert np.allclose(RELU_KERNEL_PROFILES[kind](x @ x.T / 7), gram, atol=1e-12)


def test_best_risk_follows_the_staircase():
    # two-index energies (degrees 1, 2, 4): at n = 4d² degrees ≤ 2 are learned and the
    # degree-4 energy 0.25 is left (+ finite-d excess); at n = d^4·16 almost everything
    energies = [0.0, 0.25, 0.5, 0.0, 0.25]
    at_4d2 = best_kernel_ridge_risk(4 * 64**2, 64, "ntk", energies)
    assert 0.25 <= at_4d2 < 0.3
    assert best_kernel_ridge_risk(16 * 16**4, 16, "ntk", energies) < 0.02
    with pytest.raises(ValueError, match="kind"):
        best_kernel_ridge_risk(10, 8, "relu", energies)


def test_samples_needed_scales_like_the_top_degree():
    energies = [0.0, 0.25, 0.5, 0.0, 0.25]
    needed = [kernel_samples_needed(d, "ntk", energies, 0.1) for d in (16, 32)]
    # below the degree-4 energy the kernel must learn degree 4: n ≍ N_4 ≈ d^4/24
    for d, n in zip((16, 32), needed):
        assert 0.5 * harmonic_dimension(d, 4) < n < 5 * harmonic_dimension(d, 4)
    assert 3.3 < math.log2(needed[1] / needed[0]) < 4.2
    degree_two = [kernel_samples_needed(d, "ntk", [0.0, 0.0, 1.0], 0.1) for d in (16, 32)]
    # a pure degree-2 target: n ∝ N_2, so the ratio is that of the harmonic dimensions (≈ 3.9)
    ratio = harmonic_dimension(32, 2) / harmonic_dimension(16, 2)
    assert math.log2(degree_two[1] / degree_two[0]) == pytest.approx(math.log2(ratio), abs=0.15)
    assert kernel_samples_needed(8, "ntk", energies, 0.1, n_max=100) == math.inf


def _he2(z):
    return (z[:, 0] ** 2 - 1) / math.sqrt(2)


@pytest.mark.parametrize("dim", [8, 32])
def test_homogeneous_floor_matches_the_he2_closed_form(dim):
    from scipy.special import gammaln
    mean_r_squared = 2 * math.exp(2 * (gammaln((dim + 1) / 2) - gammaln(dim / 2)))
    exact = 1 - mean_r_squared * (2 * dim**2 + 2 * dim - 1) / (2 * dim**2 * (dim + 2))
    value = homogeneous_floor(_he2, dim, 1, rng=np.random.default_rng(0), directions=40000)
    # Monte Carlo over θ: floor_θ is ≤ O(1/d)-spread; 40 000 draws give < 2 % (measured sd ~0.5 %)
    assert value == pytest.approx(exact, rel=0.02)


def test_homogeneous_floor_vanishes_on_homogeneous_targets():
    linear = homogeneous_floor(lambda z: z[:, 0] - 2 * z[:, 1], 16, 2, rng=np.random.default_rng(1))
    assert abs(linear) < 1e-10
    constant = homogeneous_floor(lambda z: np.ones(len(z)), 16, 1, rng=np.random.default_rng(1))
    from scipy.special import gammaln
    assert constant == pytest.approx(1 - 2 * math.exp(2 * (gammaln(8.5) - gammaln(8))) / 16,
                                     rel=1e-8)
    assert best_kernel_ridge_risk(64**2, 64, "ntk", [0.0, 0.0, 1.0], floors=[0, 0, 0.3]) > 0.29
    assert kernel_samples_needed(8, "ntk", [0.0, 0.0, 1.0], 0.1, floors=[0, 0, 0.1]) == math.inf


def test_best_risk_without_floors_is_the_staircase_risk():
    from lazylab.theory import kernel_ridge_risk
    energies = [0.0, 0.25, 0.5, 0.0, 0.25]
    profile = RELU_KERNEL_PROFILES["rf"]
    expected = min(kernel_ridge_risk(500, 12, profile, energies, ridge=r)
                   for r in (1e-6, 1e-3))
    assert best_kernel_ridge_risk(500, 12, "rf", energies, ridges=(1e-6, 1e-3)) == \
        pytest.approx(expected, rel=1e-9)
