"""The fused symmetric dual matrix (issue 12, item 4) against the general dual_matrix."""

import math

import numpy as np
import pytest
import torch

from lazylab.activations import ACTIVATIONS, get_activation
from lazylab.gaussian import dual_matrix, feature_mean
from lazylab.gaussian import dual as dual_module
from lazylab.gaussian.dual import lower_dual_matrix, symmetric_dual_matrix

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
    monkeypatch.setattr(dual_module, "_CACHE_BLOCK", 1)     # chunks of one row each


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


@pytest.mark.parametrize("name,biased", [("relu", False), ("sign", False), ("hermite2", True),
                                         ("cubic", False), ("tanh", True)])
@pytest.mark.parametrize("cache_block", [1, 300, 1 << 16])
def test_lower_dual_matrix_is_the_lower_triangle_in_any_chunking(name, biased, cache_block,
                                                                 monkeypatch):
    # Chunks of one row, of a few rows (ragged against the row blocks of 64) and of whole row
    # blocks evaluate the same per-entry formula on the same Gram entries: equal up to the
    # vectorized and scalar tails of the elementwise kernels (a few ulps). Only the lower
    # triangle is promised.
    monkeypatch.setattr(dual_module, "_CACHE_BLOCK", cache_block)
    weights, biases = _units(6, biased)
    lower = lower_dual_matrix(name, weights, biases).tril()
    monkeypatch.setattr(dual_module, "_CACHE_BLOCK", 1)
    reference = symmetric_dual_matrix(name, weights, biases).tril()
    assert torch.allclose(lower, reference, rtol=0, atol=8 * EPS * float(reference.abs().max()))


def test_polynomial_with_a_constant_unit_equals_the_general_path():
    # A zero row is a constant unit σ(b): its Gram row is 0, so ρ = 0 there (the general path's
    # degenerate rule) and the Mehler sum leaves E = σ(b_i)·E σ(w_j·x + b_j), the diagonal σ(b)².
    weights, biases = _units(7, True)
    weights[3] = 0.0
    for name in ("hermite2", "cubic"):
        reference = dual_matrix(name, weights, biases, weights2=weights.clone(),
                                biases2=biases.clone())
        fused = symmetric_dual_matrix(name, weights, biases)
        scale = float(reference.abs().max())
        assert float((fused - reference).abs().max()) <= 1e-12 * scale
        value = float(get_activation(name).function(biases[3]))
        assert float(fused[3, 3]) == pytest.approx(value ** 2, rel=1e-14)


@pytest.mark.parametrize("name,biased", [("relu", False), ("hermite2", True), ("tanh", True)])
def test_lower_dual_matrix_subtracts_the_rank_one_term_entry_by_entry(name, biased):
    # K − u uᵀ with u the feature means (the centred second moment): one rounding of the
    # difference per entry, as the dense K − outer(u, u).
    weights, biases = _units(8, biased)
    mean = feature_mean(name, weights, biases)
    got = lower_dual_matrix(name, weights, biases, subtract=mean).tril()
    expected = (symmetric_dual_matrix(name, weights, biases) - torch.outer(mean, mean)).tril()
    assert torch.allclose(got, expected, rtol=0, atol=4 * EPS * float(expected.abs().max()))


def test_chunks_on_threads_restore_the_thread_count_and_raise_what_a_chunk_raises():
    # The chunks' operations run single-threaded on Python threads; the intra-op thread count
    # comes back however the map ends, and a chunk's exception reaches the caller.
    before = torch.get_num_threads()
    seen = []
    dual_module._map_single_threaded(lambda item: seen.append((item, torch.get_num_threads())),
                                     range(5))
    assert sorted(item for item, _ in seen) == list(range(5))
    assert all(threads == 1 for _, threads in seen)
    assert torch.get_num_threads() == before

    def fails(item):
        raise ArithmeticError(f"chunk {item}")
    with pytest.raises(ArithmeticError, match="chunk"):
        dual_module._map_single_threaded(fails, range(3))
    assert torch.get_num_threads() == before
