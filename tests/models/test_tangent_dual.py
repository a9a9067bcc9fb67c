"""The NT least squares in the dual (n < p): its products are the dense ones, every λ of a
dual solve and of a dual ridge path — by the dual CG, or from the dense dual matrix — is the
dense primal solution (to a bound derived from the primal certificate each carries), and on the
σ = u² task of ghorbani-fig1 the dual CG takes fewer iterations than the primal PCG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.experiments.selection import default_ridge_grid
from lazylab.models import NeuralTangent
from lazylab.models._common import draw_weights
from lazylab.models._tangent_dual import (DenseDual, DualEquations,
                                          multishift_conjugate_gradient, transposed_apply,
                                          use_dense, use_dual)
from lazylab.models._tangent_path import CenteredNormalEquations
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.solvers import solve_ridge
from lazylab.tasks import TASKS
from tangent_cases import (assert_path_and_cold_fits_solve_densely, centered_system,
                           gated_features, single_neuron_data)

WIDTH, DIM, N = 4, 8, 14  # p = 32 (36 with a head) unknowns, n < p/2
DUAL_CG = ("lazylab.models._tangent_dual.DENSE_MAX_SAMPLES", 0)
"""monkeypatch.setattr(*DUAL_CG): the dual by CG, not from its dense matrix."""


def _data(n=N, seed=1):
    return single_neuron_data(n, DIM, seed)


def _features(activation, train_head, seed=3):
    return gated_features(activation, train_head, WIDTH, DIM, seed)


@pytest.mark.parametrize("activation, train_head", [("relu", True), ("quadratic", False)])
def test_the_dual_products_are_the_dense_ones(activation, train_head):
    data, features = _data(), _features(activation, train_head)
    centered, _, _ = centered_system(features, data)
    dual = DualEquations(CenteredNormalEquations(features, data.x, data.y), data.y)
    r = torch.from_numpy(np.random.default_rng(4).standard_normal(N))
    torch.testing.assert_close(transposed_apply(features, data.x, r),
                               features.matrix(data.x).T @ r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dual.transpose(r), centered.T @ r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dual.operator(0.3)(r), centered @ (centered.T @ r) / N + 0.3 * r,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dual.diagonal, (centered * centered).sum(1) / N,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dual.rhs, (data.y - data.y.mean()) / N, rtol=0, atol=0)


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
@pytest.mark.parametrize("train_head", [False, True])
@pytest.mark.parametrize("dense", [False, True])
def test_every_ridge_of_the_dual_path_is_the_dense_solution(activation, train_head, dense,
                                                             monkeypatch):
    # v solves the primal system to its reported relative residual r: with A_λ = G + λI,
    # ‖v − v*‖ ≤ r‖b‖/λ_min(A_λ); the dense solve is backward stable, ‖v_dense − v*‖ ≤
    # 10·p·ε·cond(A_λ)·‖v*‖. The offsets agree to ‖μ‖ times the same bound. Cold fits (fit,
    # solver "cg") take the dual too and meet the same bound.
    data, features = _data(), _features(activation, train_head)
    if not dense:
        monkeypatch.setattr(*DUAL_CG)
    assert use_dual(N, features.size) and use_dense(N, features.size) == dense
    assert_path_and_cold_fits_solve_densely(
        NeuralTangent(width=WIDTH, activation=activation, train_head=train_head, solver="cg",
                      tol=1e-10), data, features)


def test_the_dual_path_takes_fewer_iterations_than_the_primal_on_the_fig1_task(monkeypatch):
    # ghorbani-fig1's σ = u² on y = xᵀBx − tr B at n = p/9 (its paper's smallest n/(Nd) = 1/9):
    # the primal PCG spends most small-λ iterations on the null space of Φ_c (dimension
    # ≥ p − n), the dual has none (module docstring of lazylab.models._tangent_dual). Measured
    # here: see the assertion message; both routes certify every λ.
    dim, width = 24, 12
    n = width * dim // 9
    task = TASKS["quadratic"](rng=np.random.default_rng(dim), dim=dim, matrix="exp-diagonal")
    data = task.sample(n, rng=np.random.default_rng(n))
    regime = NeuralTangent(width=width, activation="quadratic", solver="cg")
    features = GatedFeatures(draw_weights(np.random.default_rng(0), width, dim),
                             get_activation("quadratic").derivative())
    scale = float((features.matrix(data.x) ** 2).sum(1).mean())
    ridges = list(default_ridge_grid(scale))
    monkeypatch.setattr(*DUAL_CG)
    dual = regime.fit_path(data, ridges, rng=np.random.default_rng(0))
    monkeypatch.setattr("lazylab.models._tangent_dual.DUAL_FRACTION", 0.0)
    primal = regime.fit_path(data, ridges, rng=np.random.default_rng(0))
    counts = [sum(m.diagnostics["cg_iterations"] for m in fits) for fits in (dual, primal)]
    assert all(m.diagnostics["cg_converged"] == 1.0 for m in dual + primal)
    assert counts[0] < counts[1], counts


def test_the_dual_is_taken_below_half_the_unknowns_only():
    assert use_dual(50, 100) and not use_dual(51, 100) and not use_dual(300, 32)


def test_the_dense_dual_is_taken_for_few_samples_against_the_unknowns_only():
    assert use_dense(1000, 65536) and use_dense(2048, 65536)      # xie's digits: n² ≤ 64p
    assert not use_dense(2049, 65536) and not use_dense(11_250, 101_250)  # fig1's NT: CG
    assert not use_dense(4097, 10 ** 6) and not use_dense(60, 100)       # cap; not the dual


@pytest.mark.parametrize("train_head", [False, True])
def test_the_sample_gram_is_the_dense_one(train_head):
    data, features = _data(n=300), _features("relu", train_head)   # units in several chunks
    rows = features.matrix(data.x)
    torch.testing.assert_close(features.sample_gram(data.x), rows @ rows.T,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_the_dense_dual_at_zero_ridge_is_the_minimum_norm_interpolant(activation):
    # n < p: ridge 0 interpolates where Φ_c has rank n − 1; the dual from the pseudo-inverse
    # (eigenvalues of round-off size dropped) is the minimum-norm least-squares solution, which
    # the SVD least squares also returns.
    data, features = _data(), _features(activation, False)
    equations = CenteredNormalEquations(features, data.x, data.y)
    vector, offset, info, _ = DenseDual(DualEquations(equations, data.y)).solve(
        0.0, tol=1e-10, max_iter=10 * N)
    reference = solve_ridge(features.matrix(data.x), data.y, ridge=0.0, fit_intercept=True)
    torch.testing.assert_close(vector, reference.coef, rtol=1e-8, atol=1e-10)
    assert float(offset) == pytest.approx(float(reference.intercept), abs=1e-9)
    assert info["cg_converged"] == 1.0
    centered, _, _ = centered_system(features, data)
    if int(torch.linalg.matrix_rank(centered)) == N - 1:   # σ = u²; relu's gates leave rows 0
        fitted = features.matrix(data.x) @ vector + offset
        torch.testing.assert_close(fitted, data.y, rtol=0, atol=1e-8)      # interpolates
    else:
        assert activation == "relu"


def test_the_multishift_solutions_are_the_dense_solutions_of_every_shift():
    # CG-M on one Krylov space: each x_j meets its recursive tolerance; its recomputed residual
    # may drift from the recursive one by O(k·ε·‖A‖‖x‖) (k steps), far below 1e-8 here, and
    # ‖x_j − x_j*‖ ≤ ‖residual‖/λ_min(A + s_j).
    g = np.random.default_rng(6)
    basis, _ = torch.linalg.qr(torch.from_numpy(g.standard_normal((60, 60))))
    values = torch.logspace(-3, 0, 60, dtype=torch.float64)
    matrix = (basis * values) @ basis.T
    matrix = (matrix + matrix.T) / 2
    rhs = torch.from_numpy(g.standard_normal(60))
    shifts = [1.0, 1e-2, 1e-5, 0.1, 0.0]
    solved = multishift_conjugate_gradient(lambda v: matrix @ v, rhs, shifts,
                                           tolerances=[1e-11] * 5, max_iter=600)
    identity = torch.eye(60, dtype=torch.float64)
    counts = []
    for shift, (x, iterations) in zip(shifts, solved):
        exact = torch.linalg.solve(matrix + shift * identity, rhs)
        residual = float(torch.linalg.vector_norm(rhs - (matrix + shift * identity) @ x)
                         / torch.linalg.vector_norm(rhs))
        assert residual <= 1e-8, (shift, residual)
        bound = residual * float(torch.linalg.vector_norm(rhs)) / (1e-3 + shift)
        assert float(torch.linalg.vector_norm(x - exact)) <= bound, shift
        counts.append(iterations)
    # larger shifts are better conditioned: they stop no later than the smaller ones
    assert counts[0] <= counts[3] <= counts[1] <= counts[2] <= counts[4], counts


def test_the_dual_path_shares_its_products_among_the_ridges(monkeypatch):
    # One Krylov space for every λ: the products of the shared run are those of the smallest λ
    # alone, plus per λ one transpose and one primal product to certify (and a continuation
    # where that fails); so 11 ridges cost far fewer products than their summed iterations.
    data, features = _data(), _features("quadratic", False)
    calls, real = [], GatedFeatures.apply

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GatedFeatures, "apply", counted)
    monkeypatch.setattr(*DUAL_CG)
    scale = float((features.matrix(data.x) ** 2).sum(1).mean())
    ridges = list(default_ridge_grid(scale))
    path = NeuralTangent(width=WIDTH, activation="quadratic", solver="cg").fit_path(
        data, ridges, rng=np.random.default_rng(3))
    its = [int(m.diagnostics["cg_iterations"]) for m in path]
    assert all(m.diagnostics["cg_converged"] == 1.0 for m in path)
    assert len(calls) < sum(its), (len(calls), its)
