"""Gram spectra and power-law exponents against closed forms and a Monte Carlo law."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.theory.spectra import gram_spectrum, power_law_exponent


def test_gram_spectrum_of_a_known_eigendecomposition():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    eigenvalues = np.geomspace(5.0, 1e-3, 12)
    gram = (basis * eigenvalues) @ basis.T
    assert np.allclose(gram_spectrum(gram), eigenvalues / 12, rtol=1e-10, atol=1e-15)
    assert np.allclose(gram_spectrum(torch.as_tensor(gram)), eigenvalues / 12, rtol=1e-10)


def test_gram_spectrum_of_a_linear_kernel_is_the_covariance_spectrum():
    """K = X Xᵀ with x ~ N(0, I_d): the d nonzero eigenvalues of K/n are exactly those of the
    d × d sample covariance XᵀX/n (same singular values), which lie within the Marchenko–Pastur
    edges (1 ± √(d/n))² up to O(n^(-2/3)) fluctuations (tolerance 0.05); the rest vanish."""
    rng = np.random.default_rng(1)
    n, d = 400, 4
    x = rng.standard_normal((n, d))
    values = gram_spectrum(x @ x.T)
    covariance = np.sort(np.linalg.eigvalsh(x.T @ x / n))[::-1]
    assert np.allclose(values[:d], covariance, rtol=1e-10)
    edge = np.sqrt(d / n)
    assert np.all(values[:d] > (1 - edge) ** 2 - 0.05) and np.all(values[:d] < (1 + edge) ** 2 + 0.05)
    assert np.all(values[d:] < 1e-12) and np.all(values >= 0)
    assert np.all(np.diff(values) <= 0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.7])
def test_power_law_exponent_is_exact_on_a_power_law(alpha):
    values = 3.0 * np.arange(1, 501, dtype=float) ** -alpha
    assert power_law_exponent(values) == pytest.approx(alpha, rel=1e-12)
    assert power_law_exponent(values, low=10, high=40) == pytest.approx(alpha, rel=1e-12)


def test_power_law_exponent_skips_zeros_and_rejects_too_few_points():
    values = np.arange(1, 101, dtype=float) ** -1.5
    values[7] = 0.0
    assert power_law_exponent(values) == pytest.approx(1.5, rel=1e-12)
    with pytest.raises(ValueError, match="needs two positive values"):
        power_law_exponent(np.zeros(50))
    with pytest.raises(ValueError, match="square"):
        gram_spectrum(np.ones((2, 3)))
