"""The fused symmetric dual matrix (issue 12, item 4) against the general dual_matrix."""

import math

import numpy as np
import pytest
import torch

from lazylab.activations import ACTIVATIONS
from lazylab.gaussian import dual_matrix
from lazylab.gaussian import dual as dual_module
from lazylab.gaussian.dual import symmetric_dual_matrix

EPS = torch.finfo(torch.float64).eps
# 100 units in row blocks of 64 (the smallest block, forced below): a full block, a ragged one
WIDTH, DIM = 100, 12
# E[σ(sG)²] for the unbiased closed forms at s = 1 (arccos kernels at θ = 0; erf: Williams 1997)
DIAGONAL = {"relu": 0.5, "step": 0.5, "abs": 1.0, "sign": 1.0,
            "erf": 2 / math.pi * math.asin(2 / 3)}


@pytest.fixture(autouse=True)
def _smallest_blocks(monkeypatch):
    monkeypatch.setattr(dual_module, "_ELEMENTWISE_BLOCK", 1)
    monkeypatch.setattr(dual_module, "_QUADRATURE_BLOCK", 1)


def _units(seed, biased):
    rng = np.random.default_rng(seed)
    weights = torch.as_tensor(rng.standard_normal((WIDTH, DIM)) / math.sqrt(DIM))
    biases = torch.as_tensor(0.3 * rng.standard_normal(WIDTH)) if biased else None
    return weights, biases


@pytest.mark.parametrize("name,biased", [(name, biased) for name in sorted(ACTIVATIONS)
                                         for biased in (False, True)
                                         if not (biased and name == "erf")])   # erf: unbiased only
def test_symmetric_dual_matrix_equals_dual_matrix_for_every_activation(name, biased):
    # Same per-entry rules on the same float64 Gram entries: only the summation order of the dot
    # products differs (relative ~1e-16), amplified at most by the form's slope off the diagonal.
    # dual_matrix of one unit set routes here; a second copy of the units takes its general path
    weights, biases = _units(1, biased)
    reference = dual_matrix(name, weights, biases, weights2=weights.clone(),
                            biases2=None if biases is None else biases.clone())
    fused = symmetric_dual_matrix(name, weights, biases)
    assert fused.dtype == torch.float64 and fused.shape == (WIDTH, WIDTH)
    assert torch.equal(fused, fused.T)
    off = ~torch.eye(WIDTH, dtype=torch.bool)
    scale = float(reference.abs().max())
    assert float((fused - reference)[off].abs().max()) <= 1e-12 * scale


@pytest.mark.parametrize("function", [symmetric_dual_matrix, dual_matrix],
                         ids=["symmetric_dual_matrix", "dual_matrix"])
@pytest.mark.parametrize("name", sorted(DIAGONAL))
def test_the_diagonal_of_closed_forms_is_exact_at_rho_one(name, function):
    # ρ_ii = 1 is set exactly: arccos has slope ∞ at 1, so a rounded ρ_ii = 1 − ε would cost
    # √(2ε)/(2π) ≈ 3e-9 for step (dual_matrix's general path, which a frozen symmetric call
    # no longer takes, is that far off).
    weights, _ = _units(2, False)
    scales = weights.norm(dim=1)
    homogeneity = {"relu": 2, "abs": 2}.get(name, 0)
    expected = DIAGONAL[name] * scales ** homogeneity
    if name == "erf":
        variance = scales ** 2
        expected = 2 / math.pi * torch.asin(2 * variance / (1 + 2 * variance))
    got = function(name, weights, None).diagonal()
    assert torch.allclose(got, expected, rtol=8 * EPS, atol=0)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh", "hermite2"])
def test_symmetric_dual_matrix_with_an_input_covariance(name):
    weights, _ = _units(3, False)
    root = torch.as_tensor(np.random.default_rng(4).standard_normal((DIM, DIM))) / math.sqrt(DIM)
    covariance = root @ root.T + 0.1 * torch.eye(DIM, dtype=torch.float64)
    reference = dual_matrix(name, weights, None, covariance=covariance)
    fused = symmetric_dual_matrix(name, weights, None, covariance)
    off = ~torch.eye(WIDTH, dtype=torch.bool)
    assert float((fused - reference)[off].abs().max()) <= 1e-12 * float(reference.abs().max())
    assert torch.allclose(fused.diagonal(), reference.diagonal(), rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", ["relu", "abs", "erf", "tanh", "quadratic"])
def test_float32_weights_are_taken_as_exact_in_float64(name):
    # Dot products in float64 whatever the input dtype: float32 W gives the float64 matrix of
    # its rounded values to round-off, and the unrounded one to ~cond·2⁻²⁴ ≪ 1e-6.
    weights, _ = _units(5, False)
    single = weights.to(torch.float32)
    got = symmetric_dual_matrix(name, single)
    assert got.dtype == torch.float64
    rounded = symmetric_dual_matrix(name, single.to(torch.float64))
    assert torch.allclose(got, rounded, rtol=0, atol=1e-14 * float(rounded.abs().max()))
    exact = symmetric_dual_matrix(name, weights)
    assert float((got - exact).abs().max()) <= 1e-6 * float(exact.abs().max())


def test_weights_must_be_a_matrix():
    with pytest.raises(ValueError, match=r"weights must be \(N, d\), got shape \(4,\)"):
        symmetric_dual_matrix("relu", torch.ones(4, dtype=torch.float64))
