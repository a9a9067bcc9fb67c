"""Bivariate normal CDF and the biased ReLU/step closed forms."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from lazylab.gaussian.bivariate import bivariate_normal_cdf, relu_relu


def reference_cdf(h, k, rho):
    """Φ₂ = ∫_{-∞}^h φ(x) Φ((k − ρx)/q) dx by adaptive quadrature, with breakpoints across the
    conditional step at x = k/ρ (width q/|ρ|) so that ρ → ±1 is resolved."""
    q = np.sqrt(1 - rho * rho)
    points = []
    if rho != 0:
        centre, width = k / rho, q / abs(rho)
        points = sorted(p for p in (centre + j * width for j in range(-10, 11)) if -40 < p < h)
    value, _ = integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.cdf((k - rho * x) / q),
                              -40, h, epsabs=1e-15, epsrel=1e-14, limit=2000,
                              points=points or None)
    return value


RHOS = [-1 + 1e-9, -0.999999, -0.9, -0.5, 0.0, 0.3, 0.69, 0.71, 0.99, 0.999999, 1 - 1e-9]
POINTS = [(0.0, 0.0), (1.0, -1.0), (0.3, 0.3001), (2.0, 2.0), (-3.0, 2.0), (-5.0, -5.0),
          (0.5, 0.5 + 1e-7), (4.0, -4.0)]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_cdf_matches_adaptive_quadrature_up_to_perfect_correlation():
    h, k, rho, expected = [], [], [], []
    for r in RHOS:
        for a, b in POINTS:
            h.append(a), k.append(b), rho.append(r), expected.append(reference_cdf(a, b, r))
    got = bivariate_normal_cdf(*(torch.tensor(v, dtype=torch.float64) for v in (h, k, rho)))
    assert np.max(np.abs(got.numpy() - np.array(expected))) < 5e-12


def test_cdf_limits_and_symmetry():
    h = torch.tensor([-1.0, 0.2, 1.5], dtype=torch.float64)
    k = torch.tensor([0.3, -0.4, 2.0], dtype=torch.float64)
    zero = bivariate_normal_cdf(h, k, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(zero, stats_cdf(h) * stats_cdf(k), atol=1e-15)
    rho = torch.tensor([0.4, -0.8, 0.95], dtype=torch.float64)
    assert torch.allclose(bivariate_normal_cdf(h, k, rho), bivariate_normal_cdf(k, h, rho), atol=1e-14)


def stats_cdf(x):
    return torch.as_tensor(stats.norm.cdf(x.numpy()))


def test_biased_relu_pair_is_differentiable():
    args = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for v in ([1.2, 0.7], [0.8, 1.9], [0.3, -0.85], [0.4, -0.2], [-0.5, 0.9])]
    assert torch.autograd.gradcheck(relu_relu, args)
