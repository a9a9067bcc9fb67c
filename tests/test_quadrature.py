"""Piecewise Gauss–Legendre Gaussian expectations against exact moments."""

import math

import pytest
import torch

from lazylab.quadrature import gaussian_nodes, normal_cdf, normal_pdf


def expect(function, kinks=None, order=32):
    z, w = gaussian_nodes(kinks, order=order)
    return torch.sum(w * function(z), dim=-1)


@pytest.mark.parametrize("power", range(0, 21, 2))
def test_even_moments_are_double_factorials(power):
    exact = math.prod(range(power - 1, 0, -2)) if power else 1
    assert float(expect(lambda z: z**power)) == pytest.approx(exact, rel=1e-13)


def test_kinked_integrands_are_exact_when_cut_at_the_kink():
    # E|G| = √(2/π); E[(G − t)₊] = φ(t) − tΦ̄(t), for a batch of kinks t.
    assert float(expect(torch.abs, torch.zeros(1, dtype=torch.float64))) == pytest.approx(
        math.sqrt(2 / math.pi), rel=1e-14)
    t = torch.linspace(-3, 3, 13, dtype=torch.float64)
    z, w = gaussian_nodes(t[:, None])
    got = torch.sum(w * torch.relu(z - t[:, None]), dim=-1)
    exact = normal_pdf(t) - t * (1 - normal_cdf(t))
    assert torch.allclose(got, exact, rtol=0, atol=1e-15)


def test_analytic_integrand_with_nearby_poles_has_converged():
    # tanh(3z) has poles at distance π/6 from the real axis: doubling the order changes nothing.
    f = lambda z: torch.tanh(3 * z) ** 2  # noqa: E731
    assert float(expect(f, order=32)) == pytest.approx(float(expect(f, order=64)), abs=1e-15)
