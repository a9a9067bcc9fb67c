"""The non-linear share of relu(G − t) against its closed form and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from lazylab.theory.yehudai_shamir import relu_nonlinear_share


def _closed_form(t: float) -> tuple[float, float]:
    """(G − t)₊: E = φ(t) − tQ(t), E[·G] = Q(t) (Stein), E[·He₂] = φ(t), E[·²] = (1+t²)Q(t) − tφ(t)."""
    phi, tail = norm.pdf(t), norm.sf(t)
    mean, lam1, lam2 = phi - t * tail, tail, phi
    variance = (1 + t * t) * tail - t * phi - mean ** 2
    return (variance - lam1 ** 2) / variance, (variance - lam1 ** 2 - lam2 ** 2 / 2) / variance


@pytest.mark.parametrize("kink", [0.0, 0.7, -1.3])
def test_relu_nonlinear_share_matches_the_closed_form(kink):
    assert relu_nonlinear_share(kink) == pytest.approx(_closed_form(kink), rel=1e-10)


def test_relu_nonlinear_share_at_zero_and_by_monte_carlo():
    variance = 0.5 - 1 / (2 * math.pi)
    beyond1, beyond2 = relu_nonlinear_share(0.0)
    assert beyond1 == pytest.approx((variance - 0.25) / variance, rel=1e-12)
    assert beyond2 == pytest.approx((variance - 0.25 - 1 / (4 * math.pi)) / variance, rel=1e-12)
    # Monte Carlo of the degree-1 share: 1 − Cov(f, G)²/Var f; m = 4e6 draws, the estimate's
    # standard deviation is below 1e-3 here, tolerance 5e-3 (failure probability < 1e-6).
    g = np.random.default_rng(0).standard_normal(4_000_000)
    f = np.maximum(g, 0.0)
    estimate = 1 - np.mean(f * g) ** 2 / np.var(f)
    assert estimate == pytest.approx(beyond1, abs=5e-3)
    with pytest.raises(ValueError, match="kink must be finite"):
        relu_nonlinear_share(math.inf)
