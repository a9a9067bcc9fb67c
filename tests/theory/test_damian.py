"""Damian et al.: reference scalings (exponents), CSQ bound, Lemma 1 gradient vs the engine."""

import math

import numpy as np
import pytest
import torch

from lazylab.theory.damian import (csq_sample_complexity, csq_tolerance,
                                   kernel_sample_complexity, one_step_sample_complexity,
                                   relu_gradient_leading_term, relu_gradient_quadratic_target)


def _slope(f, d1=1e3, d2=1e4):
    return (math.log(f(d2)) - math.log(f(d1))) / (math.log(d2) - math.log(d1))


def test_scaling_exponents():
    assert _slope(lambda d: kernel_sample_complexity(d, 4)) == pytest.approx(4.0, abs=1e-12)
    # d²r dominates dr^p for d ≫ r^{p−1}: the one-step slope in d tends to 2 (here r = 2, p = 4)
    assert _slope(lambda d: one_step_sample_complexity(d, 2, 4), 1e5, 1e6) == \
        pytest.approx(2.0, abs=1e-3)
    # for r^{p-1} ≫ d the d r^p term dominates and the slope is 1
    assert _slope(lambda d: one_step_sample_complexity(d, 100, 4), 10, 20) == \
        pytest.approx(1.0, abs=0.01)
    ratio = kernel_sample_complexity(1e4, 4) / one_step_sample_complexity(1e4, 1, 4)
    assert ratio > 1e3        # the separation the paper is about: d^p ≫ d² r


def test_csq_bound_exponent_and_monotonicity():
    tau = csq_tolerance(np.array([1e2, 1e4, 1e6]), 4, queries=10)
    assert np.all(np.diff(tau) < 0)
    # n ≈ 1/τ² = d^{p/2}/log^{p/2}(qd): slope in d tends to p/2 up to the logarithm
    slope = _slope(lambda d: csq_sample_complexity(d, 4, 10), 1e8, 1e9)
    assert 2.0 - 0.2 < slope < 2.0


def test_exact_quadratic_gradient_matches_the_engine_and_lemma1_error_order():
    """Engine: Quadratic(B).tangent_moment('relu', W) = E[y 1{w·x>0} x] with H = 2B.

    Lemma 1's leading term misses ŵ(ŵᵀHŵ)/(2√(2π)); for rank-r H with ‖H‖_op = O(1) and random
    ŵ, ‖that‖ ≈ r/d·… ≤ the lemma's Õ(√r/d): asserted with constant 3."""
    from lazylab import tasks
    rng = np.random.default_rng(30)
    d, r = 200, 3
    u = np.linalg.qr(rng.standard_normal((d, r)))[0]
    b = u @ np.diag([1.0, 0.7, 0.4]) @ u.T
    w = rng.standard_normal((16, d)) / math.sqrt(d)
    engine = tasks.Quadratic(torch.as_tensor(b)).tangent_moment("relu", torch.as_tensor(w))
    exact = relu_gradient_quadratic_target(2 * b, w)
    np.testing.assert_allclose(engine.numpy(), exact, atol=1e-12)
    gap = np.linalg.norm(exact - relu_gradient_leading_term(2 * b, w), axis=1)
    assert np.all(gap <= 3 * math.sqrt(r) / d)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="dim"):
        kernel_sample_complexity(0, 2)
    with pytest.raises(ValueError, match="degree"):
        one_step_sample_complexity(10, 1, 1.5)
    with pytest.raises(ValueError, match="queries"):
        csq_tolerance(10, 2, queries=-1)
    with pytest.raises(ValueError, match="nonzero"):
        relu_gradient_leading_term(np.eye(3), np.zeros((1, 3)))
