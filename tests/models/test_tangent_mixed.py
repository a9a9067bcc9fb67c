"""float32 products refined in float64 (the primal sample CG from n·p ≥ MIXED_ENTRIES): the
float32 Gram is the float64 one to float32 round-off, every refined fit — along the ridge path
and cold — is the dense solution to the bound its float64 certificate gives, and a float32
operator too wrong to help hands the solve to float64 PCG, which still certifies it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.models import NeuralTangent
from lazylab.models._tangent_mixed import STALL, SinglePrecisionGram, _correction, use_mixed
from lazylab.models._tangent_path import CenteredNormalEquations
from tangent_cases import assert_path_and_cold_fits_solve_densely, gated_features, single_neuron_data

EPS32 = torch.finfo(torch.float32).eps
WIDTH, DIM, N = 4, 8, 300


@pytest.fixture(autouse=True)
def _mixed_everywhere(monkeypatch):
    monkeypatch.setattr("lazylab.models._tangent_mixed.MIXED_ENTRIES", 0)


def _data(seed=1):
    return single_neuron_data(N, DIM, seed)


def _features(activation, train_head, seed=3):
    return gated_features(activation, train_head, WIDTH, DIM, seed)


def test_the_single_precision_gram_is_the_double_one_to_float32_round_off():
    # Each entry of Φᵀ(Φv) is a sum of n·p products of float32-rounded factors: relative error
    # ≲ (a few)·ε₃₂ per factor and O(√(n p))·ε₃₂ accumulated at worst; measured ≈ 1e-7.
    data, features = _data(), _features("relu", True)
    equations = CenteredNormalEquations(features, data.x, data.y)
    single = SinglePrecisionGram(equations)
    v = torch.from_numpy(np.random.default_rng(5).standard_normal(features.size))
    exact, approximate = equations.operator(0.1)(v), single.operator(0.1)(v)
    assert approximate.dtype == torch.float64
    error = float(torch.linalg.vector_norm(approximate - exact) / torch.linalg.vector_norm(exact))
    assert 0 < error <= 10 * (N * features.size) ** 0.5 * EPS32, error
    assert use_mixed(N, features.size, torch.float64)
    assert not use_mixed(N, features.size, torch.float32)


@pytest.mark.parametrize("activation, train_head", [("relu", True), ("quadratic", False)])
def test_every_refined_fit_is_the_dense_solution(activation, train_head):
    # tests/models/tangent_cases.py: ‖v − v*‖ ≤ r‖b‖/λ_min(A_λ) from the float64 certificate r,
    # plus the dense solve's 10·p·ε·cond·‖v*‖.
    data, features = _data(), _features(activation, train_head)
    assert_path_and_cold_fits_solve_densely(
        NeuralTangent(width=WIDTH, activation=activation, train_head=train_head, solver="cg",
                      tol=1e-10), data, features)


def test_a_useless_single_precision_operator_falls_back_to_double(monkeypatch):
    # A float32 "Gram" of twice the true one: each correction overshoots (residual ↦ −r), never
    # halving it, so the solve continues in float64 and meets the same certificate.
    data = _data()
    real = SinglePrecisionGram.operator

    def doubled(self, ridge):
        apply = real(self, ridge)
        return lambda v: 2 * apply(v)

    monkeypatch.setattr(SinglePrecisionGram, "operator", doubled)
    model = NeuralTangent(width=WIDTH, activation="quadratic", solver="cg", ridge=1e-3).fit(
        data, rng=np.random.default_rng(3))
    monkeypatch.setattr("lazylab.models._tangent_mixed.MIXED_ENTRIES", 10**18)
    plain = NeuralTangent(width=WIDTH, activation="quadratic", solver="cg", ridge=1e-3).fit(
        data, rng=np.random.default_rng(3))
    assert model.diagnostics["cg_converged"] == 1.0 and model.diagnostics["cg_residual"] <= 1e-10
    assert model.diagnostics["cg_iterations"] > plain.diagnostics["cg_iterations"]
    torch.testing.assert_close(model.directions, plain.directions, rtol=1e-6, atol=1e-9)


def test_a_correction_solve_stops_at_its_attainable_accuracy():
    # Asked for a relative residual of 1e-30, PCG reaches round-off (≈ 1e-16) and then cannot
    # halve its residual any more: it must stop STALL iterations later, not run to max_iter;
    # its correction is still the solution to round-off.
    g = np.random.default_rng(8)
    basis, _ = torch.linalg.qr(torch.from_numpy(g.standard_normal((40, 40))))
    matrix = (basis * torch.linspace(1.0, 10.0, 40, dtype=torch.float64)) @ basis.T
    rhs = torch.from_numpy(g.standard_normal(40))
    correction, iterations = _correction(lambda v: matrix @ v, rhs, lambda r: r, tol=1e-30,
                                         max_iter=10**6)
    assert iterations <= 40 + 3 * STALL, iterations
    torch.testing.assert_close(correction, torch.linalg.solve(matrix, rhs), rtol=1e-10,
                               atol=1e-12)
