"""Boundary checks of the dual engine (issue 14) and dtype independence of dual_matrix (issue 12)."""

import math

import numpy as np
import pytest
import torch

from lazylab.gaussian import dual_matrix, pair_expectation
from lazylab.gaussian.tangent import tangent_operator

ONE = torch.ones(3, dtype=torch.float64)


@pytest.mark.parametrize("sigma", ["relu", "abs", "tanh", "quadratic"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_impossible_covariance_raises_naming_it(sigma, unbiased):
    bias = None if unbiased else 0.2 * ONE
    cov = torch.tensor([0.5, 1.5, 0.2], dtype=torch.float64)   # |cov| > √(1·1) at index 1
    with pytest.raises(ValueError, match=r"cov = 1\.5 is impossible.*sqrt\(var1\*var2\) = 1\.0"):
        pair_expectation(sigma, sigma, ONE, ONE, cov, bias, bias)
    with pytest.raises(ValueError, match=r"cov = -1\.5 is impossible"):
        pair_expectation(sigma, sigma, ONE, ONE, -cov, bias, bias)


def test_round_off_beyond_the_bound_is_accepted_and_exact_at_one():
    # ρ = 1 + 1e-14 is round-off: treated as ρ = 1 (E[relu(G)²] = 1/2)
    got = pair_expectation("relu", "relu", ONE, ONE, ONE * (1 + 1e-14), None, None)
    assert torch.allclose(got, 0.5 * ONE, rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="is impossible"):
        pair_expectation("relu", "relu", ONE, ONE, ONE * (1 + 1e-10), None, None)


def test_constant_unit_with_nonzero_covariance_raises():
    with pytest.raises(ValueError, match=r"cov = 0\.3 is impossible.*= 0\.0"):
        pair_expectation("relu", "tanh", 0 * ONE, ONE, 0.3 * ONE, 0.1 * ONE, 0 * ONE)


@pytest.mark.parametrize("name", ["var1", "var2"])
def test_negative_variance_raises_naming_the_argument(name):
    args = {"var1": ONE, "var2": ONE, "cov": 0 * ONE}
    args[name] = torch.tensor([1.0, -0.25, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"{name} must be >= 0 \(a variance\), got -0\.25"):
        pair_expectation("relu", "relu", **args)


@pytest.mark.parametrize("name", ["var1", "var2", "cov", "bias1", "bias2"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_nan_inputs_raise(name, unbiased):
    if unbiased and name.startswith("bias"):
        return
    nan = torch.tensor([1.0, float("nan"), 1.0], dtype=torch.float64)
    bias = None if unbiased else 0 * ONE
    args = {"var1": ONE, "var2": ONE, "cov": 0.1 * ONE, "bias1": bias, "bias2": bias,
            name: nan if name.startswith("var") or name.startswith("bias") else 0.1 * nan}
    with pytest.raises(ValueError, match=rf"{name} must not contain NaN"):
        pair_expectation("relu", "relu", **args)


def test_dual_matrix_rejects_nan_weights_and_indefinite_covariance():
    weights = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN"):
        dual_matrix("relu", weights * float("nan"), None)
    indefinite = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="var1 must be >= 0"):
        dual_matrix("relu", weights, None, covariance=indefinite)


@pytest.mark.parametrize("sigma, biased", [("relu", False), ("relu", True), ("abs", False),
                                           ("step", False), ("erf", False), ("quadratic", True)])
def test_float32_weights_agree_with_float64(sigma, biased):
    # Issue 12: dot products were taken in float32 before the upcast (1.7e-4 off on the
    # diagonal). float32 weights are taken as exact, so the kernel of the float32 weights must
    # equal, to 1e-6 relative, the float64 kernel of the same (rounded) numbers.
    rng = np.random.default_rng(5)
    weights = torch.as_tensor(rng.standard_normal((40, 300)) / math.sqrt(300), dtype=torch.float32)
    biases = torch.as_tensor(rng.standard_normal(40) * 0.3, dtype=torch.float32) if biased else None
    single = dual_matrix(sigma, weights, biases)
    double = dual_matrix(sigma, weights.double(), None if biases is None else biases.double())
    assert single.dtype == torch.float64
    scale = double.abs().max()
    assert float((single - double).abs().max() / scale) < 1e-6
    assert torch.allclose(torch.diagonal(single), torch.diagonal(double), rtol=1e-12, atol=0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_tangent_operator_from_float32_weights_agrees_with_float64(activation):
    rng = np.random.default_rng(6)
    weights = torch.as_tensor(rng.standard_normal((12, 200)) / math.sqrt(200), dtype=torch.float32)
    single, double = (tangent_operator(activation, w) for w in (weights, weights.double()))
    directions = torch.as_tensor(rng.standard_normal((12, 200)))
    got, expected = single.apply(directions), double.apply(directions)
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-6
    assert torch.allclose(torch.diagonal(single.kappa), torch.diagonal(double.kappa), rtol=1e-12)
