"""Exponential and power-law growth fits recover known rates exactly and skip missing sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazylab.theory.growth import exponential_fit, log_log_slope


def test_exponential_fit_recovers_rate_and_scale():
    dims = np.array([2.0, 4.0, 8.0, 16.0])
    a, c = exponential_fit(dims, 3.0 * np.exp(0.7 * dims))
    assert a == pytest.approx(math.log(3.0), abs=1e-10) and c == pytest.approx(0.7, rel=1e-12)


def test_exponential_fit_skips_unreached_sizes():
    dims = [2, 4, 8, 16]
    values = [np.exp(0.5 * 2), np.exp(0.5 * 4), math.inf, np.nan]
    assert exponential_fit(dims, values)[1] == pytest.approx(0.5, rel=1e-12)
    assert exponential_fit([2, 4], [math.inf, 1.0]) is None


def test_log_log_slope_recovers_the_exponent():
    dims = np.array([16.0, 32.0, 64.0, 128.0])
    assert log_log_slope(dims, 0.3 * dims ** 2 + 0 * dims) == pytest.approx(2.0, rel=1e-12)
    assert log_log_slope(dims, dims ** 4) == pytest.approx(4.0, rel=1e-12)
    assert log_log_slope([16, 32], [math.inf, 5.0]) is None
    with pytest.raises(ValueError, match="same length"):
        log_log_slope([1, 2, 3], [1, 2])
