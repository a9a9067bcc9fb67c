"""Rich-end predictions (lazylab.theory.feature_learning) against exact identities over W₀ draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.models._network_diagnostics import quadratic_kernel_change
from lazylab.theory import kernel_norm_squared, rich_alignment, rich_kernel_change, top_part

_DIM, _WIDTH, _SCALE = 30, 6, 0.3


def _b(seed: int = 0) -> np.ndarray:
    return np.diag(np.random.default_rng(seed).exponential(1.0, _DIM)) / math.sqrt(_DIM)


def _draws(count: int):
    rng = np.random.default_rng(1)
    for _ in range(count):
        w0 = _SCALE * rng.standard_normal((_WIDTH, _DIM)) / math.sqrt(_DIM)
        yield w0.T @ w0


def test_kernel_norm_is_quadratic_kernel_change_of_an_added_matrix():
    m0, q = next(_draws(1)), top_part(_b(), _WIDTH)
    exact = quadratic_kernel_change(torch.from_numpy(m0), torch.from_numpy(m0 + q))
    assert exact == pytest.approx(math.sqrt(kernel_norm_squared(q) / kernel_norm_squared(m0)),
                                  rel=1e-12)


def test_rich_kernel_change_matches_the_mean_over_initializations():
    """‖B_N‖_K/(α‖M₀‖_K) over 400 W₀ draws. The prediction puts E‖M₀‖_K² inside the root; by
    the second-order expansion E[E^{-1/2}] ≈ (E E)^{-1/2}(1 + (3/8)CV²), CV the draws' relative
    spread of E = ‖M₀‖_K² (≈ 1.7 % here): with that correction, within 3 s.e."""
    alpha, q = 0.01, top_part(_b(), _WIDTH)
    energies = np.array([kernel_norm_squared(m0) for m0 in _draws(400)])
    values = np.sqrt(kernel_norm_squared(q) / energies) / alpha
    sem = np.std(values, ddof=1) / math.sqrt(len(values))
    predicted = float(rich_kernel_change(alpha, _b(), _WIDTH, _SCALE))
    jensen = 1 + 3 / 8 * np.var(energies) / np.mean(energies) ** 2
    assert abs(np.mean(values) - predicted * jensen) < 3 * sem
    # the Wishart moments themselves: the mean energy E‖M₀‖_K² within 3 s.e.
    energy_sem = np.std(energies, ddof=1) / math.sqrt(len(energies))
    expected = kernel_norm_squared(q) / (predicted * alpha) ** 2
    assert abs(np.mean(energies) - expected) < 3 * energy_sem


def test_rich_alignment_is_the_share_of_m0_plus_b_n_over_alpha():
    """With WᵀW = M₀ + B_N/α (the rich end) the exact share Tr(P WᵀW)/Tr(WᵀW), averaged over
    W₀, against the prediction with A₀ = N/d: within 3 s.e.; limits 1 and A₀."""
    b = _b()
    values, vectors = np.linalg.eigh(b)
    projector = vectors[:, ::-1][:, :_WIDTH] @ vectors[:, ::-1][:, :_WIDTH].T
    for alpha in (0.1, 1.0, 10.0):
        shares = [np.trace(projector @ (m0 + top_part(b, _WIDTH) / alpha))
                  / np.trace(m0 + top_part(b, _WIDTH) / alpha) for m0 in _draws(200)]
        sem = np.std(shares, ddof=1) / math.sqrt(len(shares))
        predicted = float(rich_alignment(alpha, b, _WIDTH, _SCALE, _WIDTH / _DIM))
        assert abs(np.mean(shares) - predicted) < 3 * sem + 0.005
    assert float(rich_alignment(1e-9, b, _WIDTH, _SCALE, 0.2)) == pytest.approx(1.0, abs=1e-6)
    assert float(rich_alignment(1e9, b, _WIDTH, _SCALE, 0.2)) == pytest.approx(0.2, abs=1e-6)


def test_top_part_keeps_the_largest_positive_eigenvalues():
    b = np.diag([3.0, -5.0, 1.0, 2.0])
    assert np.allclose(top_part(b, 2), np.diag([3.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="symmetric"):
        top_part(np.ones((2, 3)), 1)
