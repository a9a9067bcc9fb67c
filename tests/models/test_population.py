"""Exact n = ∞ fits (lazylab.models.population) against closed forms, stationarity and sampling."""

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.gaussian import dual_matrix, feature_mean
from lazylab.models import optimal_head, optimal_tangent
from lazylab.models._tangent_solvers import SymmetricInverse, TransposeCorrection
from lazylab.models import population
from lazylab.models.population import _TangentSystem
from lazylab.solvers.ridge import refined_cholesky_solve
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.solvers.ridge import solve_symmetric
from lazylab.solvers.structured import low_rank_preconditioned_solve
from montecarlo import build, monte_carlo_risk

EPS = torch.finfo(torch.float64).eps




@pytest.mark.parametrize("dim,width", [(40, 10), (60, 45), (30, 40)])
def test_tangent_fit_with_quadratic_activation_equals_projection_formula(dim, width):
    # THEORY.md §1.4: R_NT = 2‖P⊥ B P⊥‖²_F exactly, P⊥ the projection off span(W).
    task = build("quadratic", seed=dim, dim=dim)
    rng = np.random.default_rng(width)
    weights = torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))
    fit = optimal_tangent(task, "quadratic", weights, tol=1e-12)
    if width < dim:
        projection = torch.eye(dim, dtype=torch.float64) - weights.T @ torch.linalg.solve(
            weights @ weights.T, weights)
        exact = 2 * float(((projection @ task.matrix @ projection) ** 2).sum())
    else:
        exact = 0.0
    scale = task.null_risk
    assert abs(fit.diagnostics["population_risk"] - exact) <= 1e-8 * scale
    assert abs(float(population_risk(fit, task)) - exact) <= 1e-8 * scale
    assert fit.diagnostics["cg_converged"] == 1.0


def test_tangent_fit_is_stationary():
    # At the optimum, the exact risk's gradient w.r.t. every fitted parameter vanishes.
    task = build("single_neuron", dim=6, bias=0.3)
    weights = torch.as_tensor(np.random.default_rng(0).standard_normal((4, 6)) / math.sqrt(6))
    fit = optimal_tangent(task, "relu", weights, train_head=True, tol=1e-13)
    params = [fit.directions, fit.head, fit.offset]
    for p in params:
        p.requires_grad_(True)
    grads = torch.autograd.grad(population_risk(fit, task), params)
    assert max(float(g.abs().max()) for g in grads) < 1e-9


def test_head_fit_is_stationary_and_ridge_shrinks():
    task = build("quadratic", dim=10, noise=0.2)
    weights = torch.as_tensor(np.random.default_rng(1).standard_normal((15, 10)) / math.sqrt(10))
    fit = optimal_head(task, "relu", weights)
    head, offset = fit.head.clone().requires_grad_(True), fit.offset.clone().requires_grad_(True)
    risk = population_risk(TwoLayer("relu", weights, head, offset=offset), task)
    grads = torch.autograd.grad(risk, [head, offset])
    assert max(float(g.abs().max()) for g in grads) < 1e-10
    assert float(risk.detach()) == pytest.approx(fit.diagnostics["population_risk"], rel=1e-12)
    shrunk = optimal_head(task, "relu", weights, ridge=1.0)
    assert float(shrunk.head.norm()) < float(fit.head.norm())
    assert shrunk.diagnostics["population_risk"] > fit.diagnostics["population_risk"]


def test_population_head_equals_large_sample_least_squares():
    # The sample fit's exact risk exceeds the population optimum by ≈ σ²_res·(N+1)/n ± its
    # spread; with n = 2·10⁵ both the excess and the test-set error are within Monte Carlo error.
    task = build("quadratic", dim=20, noise=0.0)
    rng = np.random.default_rng(9)
    width, n = 40, 200_000
    weights = torch.as_tensor(rng.standard_normal((width, 20)) / math.sqrt(20))
    exact = optimal_head(task, "relu", weights)
    data = task.sample(n, rng=rng)
    features = torch.cat([torch.relu(data.x @ weights.T), torch.ones(n, 1, dtype=torch.float64)], 1)
    solution = torch.linalg.lstsq(features, data.y[:, None]).solution.squeeze(1)
    sampled = TwoLayer("relu", weights, solution[:-1], offset=solution[-1])
    excess = float(population_risk(sampled, task)) - exact.diagnostics["population_risk"]
    expected_excess = exact.diagnostics["population_risk"] * (width + 1) / n
    assert 0 <= excess < 5 * expected_excess
    mean, se = monte_carlo_risk(exact, task, 200_000, seed=10)
    assert abs(mean - exact.diagnostics["population_risk"]) < 5 * se


def test_singular_feature_covariance_uses_the_pseudo_inverse_and_stays_optimal():
    # σ = u² − 1 spans at most d(d + 1)/2 functions: with N = 30 > 6·7/2 = 21 features the
    # covariance is singular. The quadratic target is in that span, so the optimum is the noise.
    task = build("quadratic", dim=6, noise=0.1)
    weights = torch.as_tensor(np.random.default_rng(3).standard_normal((30, 6)) / math.sqrt(6))
    fit = optimal_head(task, "hermite2", weights)
    assert fit.diagnostics["pseudo_inverse"] == 1.0
    assert fit.diagnostics["population_risk"] == pytest.approx(0.1 ** 2, abs=1e-9)
    assert float(population_risk(fit, task)) == pytest.approx(0.1 ** 2, abs=1e-9)


def test_negative_ridge_is_rejected_with_its_value():
    task = build("quadratic", dim=5)
    weights = torch.eye(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="ridge must be a finite number >= 0, got -1.0"):
        optimal_head(task, "relu", weights, ridge=-1.0)
    with pytest.raises(ValueError, match="ridge must be a finite number >= 0, got -1.0"):
        optimal_tangent(task, "relu", weights, ridge=-1.0)


def dense_tangent_risk(task, activation, weights, train_head=False):
    """Reference: the NT normal equations as a dense matrix (columns Op e_k) solved by the
    eigendecomposition pseudo-inverse; risk = Var y − bᵀx (valid for any solution x of the
    consistent system). Independent of the preconditioned CG."""
    sigma = get_activation(activation)
    system = _TangentSystem(task, sigma, weights, train_head, 0.0)
    target_mean = float(task.target_mean())
    rhs_a = task.tangent_moment(sigma, weights) - target_mean * system.tangent_mean
    rhs_h = (task.feature_moment(sigma, weights, None) - target_mean * system.feature_mean
             if train_head else None)
    rhs = system.pack(rhs_a, rhs_h)
    eye = torch.eye(rhs.numel(), dtype=torch.float64)
    matrix = torch.stack([system.apply(column) for column in eye], dim=1)
    matrix = (matrix + matrix.T) / 2
    values, vectors = torch.linalg.eigh(matrix)
    keep = values > 1e-11 * values.max()
    solution = vectors[:, keep] @ ((vectors[:, keep].T @ rhs) / values[keep])
    variance = float(task.target_second_moment()) - target_mean ** 2
    return variance - float(solution @ rhs)


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
@pytest.mark.parametrize("width", [3, 8, 14])
@pytest.mark.parametrize("train_head", [False, True])
def test_preconditioned_tangent_fit_equals_the_dense_normal_equations(activation, width, train_head):
    # d = 8: N < d, N = d, N > d (σ = u²: κ = 4WWᵀ singular at N = 14, a pseudo-inverse
    # preconditioner on a consistent singular system). Risk to 1e-8 relative of the dense solve.
    task = build("quadratic", seed=1, dim=8, noise=0.3)
    weights = torch.as_tensor(np.random.default_rng(width).standard_normal((width, 8)) / math.sqrt(8))
    fit = optimal_tangent(task, activation, weights, train_head=train_head, tol=1e-12)
    reference = dense_tangent_risk(task, activation, weights, train_head)
    assert fit.diagnostics["cg_converged"] == 1.0
    assert fit.diagnostics["population_risk"] == pytest.approx(reference, rel=1e-8)
    assert float(population_risk(fit, task)) == pytest.approx(reference, rel=1e-8)


def test_preconditioned_tangent_fit_on_a_mixture_and_with_ridge_equals_the_dense_solve():
    # Non-isotropic components take the κ̄ ⊗ Σ̄ eigendecomposition preconditioner.
    task = build("gaussian_mixture", dim=6)
    weights = torch.as_tensor(np.random.default_rng(4).standard_normal((5, 6)) / math.sqrt(6))
    for ridge in (0.0, 1e-2):
        fit = optimal_tangent(task, "relu", weights, ridge=ridge, tol=1e-12)
        assert fit.diagnostics["cg_converged"] == 1.0
        if ridge == 0.0:
            reference = dense_tangent_risk(task, "relu", weights)
            assert fit.diagnostics["population_risk"] == pytest.approx(reference, rel=1e-8)
        else:
            assert fit.diagnostics["population_risk"] == pytest.approx(
                float(population_risk(fit, task)), rel=1e-8)


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
@pytest.mark.parametrize("ratio", [0.25, 1.0, 2.0, 4.0])
def test_tangent_cg_needs_at_most_50_iterations(activation, ratio):
    # The κ ⊗ I preconditioner (exact off span(W)), with the transpose correction at N ≥ d, keeps
    # CG at ≤ 50 iterations at tol 1e-10 (measured relu 30/29/34/44, quadratic ≤ 2; issue 12:
    # block-Jacobi needed 3185 at N = d = 450 for σ = u²).
    dim = 60
    width = int(ratio * dim)
    task = build("quadratic", seed=2, dim=dim, noise=0.1)
    weights = torch.as_tensor(np.random.default_rng(5).standard_normal((width, dim)) / math.sqrt(dim))
    fit = optimal_tangent(task, activation, weights, tol=1e-10)
    assert fit.diagnostics["cg_converged"] == 1.0
    assert fit.diagnostics["cg_iterations"] <= 50


def test_singular_quadratic_tangent_system_stays_in_the_range_of_kappa():
    # σ = u², N = 3d > d: κ = 4WWᵀ has rank d; null(κ) ⊗ ℝ^d ⊂ null(K) and the pseudo-inverse
    # preconditioner keeps the solution out of it: A = W Y for some Y (columns of A in range W).
    task = build("quadratic", seed=3, dim=10, noise=0.2)
    weights = torch.as_tensor(np.random.default_rng(6).standard_normal((30, 10)) / math.sqrt(10))
    fit = optimal_tangent(task, "quadratic", weights, tol=1e-12)
    assert fit.diagnostics["population_risk"] == pytest.approx(0.2 ** 2, rel=1e-8)
    projection = weights @ torch.linalg.pinv(weights)
    leak = fit.directions - projection @ fit.directions
    assert float(leak.norm()) <= 1e-8 * float(fit.directions.norm())


def test_transpose_correction_is_the_inverse_of_kappa_plus_the_transpose_term():
    # (M ⊗ I + T)⁻¹ by Woodbury against the dense inverse, T(A) = Ŵ((ŴᵀA)ᵀ + tr(ŴᵀA) I).
    g = np.random.default_rng(7)
    width, dim = 7, 5
    root = torch.from_numpy(g.standard_normal((width, width)))
    matrix = root @ root.T + width * torch.eye(width, dtype=torch.float64)
    scaled = 0.4 * torch.from_numpy(g.standard_normal((width, dim)))   # Ĥ = ŴᵀM⁻¹Ŵ < I
    correction = TransposeCorrection(SymmetricInverse(matrix), scaled)
    assert correction.usable

    def forward(a):
        inner = scaled.T @ a
        return matrix @ a + scaled @ (inner.T + torch.trace(inner) * torch.eye(dim, dtype=a.dtype))

    eye = torch.eye(width * dim, dtype=torch.float64)
    dense = torch.stack([forward(c.reshape(width, dim)).reshape(-1) for c in eye], dim=1)
    torch.testing.assert_close(dense, dense.T)
    assert float(torch.linalg.eigvalsh(dense).min()) > 0
    rhs = torch.from_numpy(g.standard_normal((width, dim)))
    expected = torch.linalg.solve(dense, rhs.reshape(-1)).reshape(width, dim)
    torch.testing.assert_close(correction(rhs), expected, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- fused RF head (issue 12)

def _dense_head(task, activation, weights, biases, ridge):
    """The previous optimal_head: dual_matrix for the full K, float64 solve_symmetric."""
    gram = sum(p * dual_matrix(activation, weights, biases, covariance=c) for p, c in task.components)
    mean = sum(p * feature_mean(activation, weights, biases, c) for p, c in task.components)
    target_mean = float(task.target_mean())
    gram = gram - torch.outer(mean, mean)
    cross = task.feature_moment(activation, weights, biases) - mean * target_mean
    system = gram + ridge * torch.eye(gram.shape[0], dtype=torch.float64)
    head, _ = solve_symmetric(system, cross)
    risk = task.target_second_moment() - target_mean ** 2 - 2 * head @ cross + head @ gram @ head
    return head, float(risk), float(torch.linalg.cond(system))


def _head_and_reference(task_name, activation, biased, ridge, *, dim, width, seed):
    """(task, optimal_head's fit, _dense_head's (head, risk, cond)) on W ~ N(0, I/d) and, when
    ``biased``, b ~ N(0, 0.4²)."""
    task = build(task_name, dim=dim)
    rng = np.random.default_rng(seed)
    weights = torch.as_tensor(rng.standard_normal((width, dim)) / math.sqrt(dim))
    biases = torch.as_tensor(0.4 * rng.standard_normal(width)) if biased else None
    fit = optimal_head(task, activation, weights, biases, ridge=ridge)
    return task, fit, _dense_head(task, activation, weights, biases, ridge)


@pytest.mark.parametrize("activation,biased", [
    (name, biased) for name in ("relu", "step", "abs", "sign", "erf", "cubic", "tanh", "softplus")
    for biased in (False, True) if not (biased and name == "erf")])   # erf: unbiased only
@pytest.mark.parametrize("task_name,ridge", [("quadratic", 0.0), ("gaussian_mixture", 1e-3)])
def test_fused_head_equals_the_dense_float64_solve(activation, biased, task_name, ridge):
    # Both solutions are backward stable in float64 (the fused one by float32 Cholesky and
    # refinement with float64 residuals): forward errors ≤ c·cond·ε each, c = 8 allowed.
    task, fit, (head, risk, cond) = _head_and_reference(task_name, activation, biased, ridge,
                                                        dim=8, width=70, seed=11)
    assert fit.diagnostics["pseudo_inverse"] == 0.0
    error = float((fit.head - head).norm() / head.norm()) if float(head.norm()) > 0 else 0.0
    assert error <= 8 * cond * EPS
    assert fit.diagnostics["population_risk"] == pytest.approx(risk, rel=1e-12,
                                                               abs=1e-14 * task.null_risk)


def test_refined_solve_matches_float64_cholesky_and_declines_ill_conditioned_systems():
    rng = np.random.default_rng(12)
    basis, _ = torch.linalg.qr(torch.as_tensor(rng.standard_normal((60, 60))))
    rhs = torch.as_tensor(rng.standard_normal(60))
    for cond, accepted in ((1e3, True), (1e5, True), (1e9, False)):
        matrix = basis @ torch.diag(torch.logspace(0, -math.log10(cond), 60,
                                                   dtype=torch.float64)) @ basis.T
        matrix = 0.5 * (matrix + matrix.T)
        got = refined_cholesky_solve(matrix, rhs)
        assert (got is not None) == accepted
        if accepted:
            reference = torch.linalg.solve(matrix, rhs)
            assert float((got - reference).norm() / reference.norm()) <= 8 * cond * EPS


def test_float32_weights_give_the_float64_head():
    # Dot products in float64: float32 W is the float64 fit of its rounded values to round-off
    # and of the unrounded W to ~cond·2⁻²⁴ (≤ 1e-6 relative here). The predictor stores its head
    # in W's dtype, so the head is compared to float32 rounding (2⁻²⁴) and the risk, computed
    # in float64 before storing, to 1e-12.
    task = build("quadratic", dim=10)
    weights = torch.as_tensor(np.random.default_rng(13).standard_normal((40, 10)) / math.sqrt(10))
    single = optimal_head(task, "relu", weights.to(torch.float32))
    rounded = optimal_head(task, "relu", weights.to(torch.float32).to(torch.float64))
    exact = optimal_head(task, "relu", weights)
    assert single.diagnostics["population_risk"] == pytest.approx(
        rounded.diagnostics["population_risk"], rel=1e-12)
    assert torch.allclose(single.head.double(), rounded.head, rtol=2.0 ** -23, atol=0)
    assert float((single.head.double() - exact.head).norm() / exact.head.norm()) <= 1e-6
    assert single.diagnostics["population_risk"] == pytest.approx(
        exact.diagnostics["population_risk"], rel=1e-6)


# ----------------------------------------------------------------------------- structured RF solve

def test_low_rank_part_is_the_degree_one_hermite_part_of_relu_features():
    # Centred ReLU features: S_ij = s_i s_j (κ(ρ) − 1/(2π)), κ(ρ) = (√(1−ρ²) + (π − arccos ρ)ρ)/(2π)
    # = 1/(2π) + ρ/4 + ρ²/(4π) + O(ρ⁴); V also takes the constant 1/d of ρ² = 1/d + ⟨P_i, P_j⟩
    # (λ₂ = s/√(2π)), so S − VVᵀ must be s_i s_j (κ(ρ) − 1/(2π) − ρ/4 − 1/(4πd)) entry by entry,
    # and positive semi-definite.
    dim, width = 12, 40
    task = build("quadratic", dim=dim)
    weights = torch.as_tensor(np.random.default_rng(21).standard_normal((width, dim)) / 3.0)
    sigma = get_activation("relu")
    means = [(p, feature_mean(sigma, weights, None, c)) for p, c in task.components]
    factors = population._low_rank_part(task, sigma, weights, None, means, offset=True)
    scales = weights.norm(dim=1)
    rho = ((weights @ weights.T) / torch.outer(scales, scales)).clamp(-1, 1)
    rho.fill_diagonal_(1.0)
    kappa = (torch.sqrt(1 - rho ** 2) + (math.pi - torch.arccos(rho)) * rho) / (2 * math.pi)
    expected = torch.outer(scales, scales) * (kappa - 1 / (2 * math.pi) - rho / 4
                                              - 1 / (4 * math.pi * dim))
    system = dual_matrix("relu", weights, None) - torch.outer(means[0][1], means[0][1])
    remainder = system - factors @ factors.T
    torch.testing.assert_close(remainder, expected, rtol=0, atol=1e-13)
    assert float(torch.linalg.eigvalsh(remainder).min()) >= -1e-13


def test_the_degree_two_constant_shortens_the_structured_iteration():
    # σ = u² − 1 is degree 0 + degree 2 only: without the rank-one 1/d part of ρ² the
    # preconditioned matrix has an eigenvalue ≈ 1 + N/d (= 7 here) apart from its
    # Marchenko–Pastur bulk, which costs CG iterations; with it, fewer iterations, the same
    # solution (each within cond·10⁻¹² of the exact one: the certificate).
    dim, width = 40, 240
    task = build("quadratic", dim=dim)
    weights = torch.as_tensor(np.random.default_rng(24).standard_normal((width, dim)) / dim ** 0.5)
    sigma = get_activation("hermite2")
    means = [(p, feature_mean(sigma, weights, None, c)) for p, c in task.components]
    factors = population._low_rank_part(task, sigma, weights, None, means, offset=True)
    system = dual_matrix(sigma, weights, None) - torch.outer(means[0][1], means[0][1])
    rhs = task.feature_moment(sigma, weights) - means[0][1] * float(task.target_mean())
    counts, solutions = [], []
    for columns in (factors, factors[:, :-1]):
        calls = []
        counted = type("Counted", (), {"__matmul__": lambda self, v: calls.append(1) or system @ v,
                                       "diagonal": lambda self: system.diagonal()})()
        solutions.append(low_rank_preconditioned_solve(counted, rhs, columns))
        counts.append(len(calls))
    assert counts[0] < counts[1]
    cond = float(torch.linalg.cond(system))
    assert float((solutions[0] - solutions[1]).norm() / solutions[1].norm()) <= 2e-12 * cond


@pytest.mark.parametrize("activation,biased,task_name,ridge", [
    ("relu", False, "quadratic", 0.0), ("relu", True, "gaussian_mixture", 1e-3),
    ("tanh", True, "quadratic", 0.0), ("hermite2", False, "quadratic", 0.0),
    ("softplus", False, "gaussian_mixture", 0.0), ("sign", True, "quadratic", 1e-4)])
def test_structured_head_equals_the_dense_float64_solve(activation, biased, task_name, ridge,
                                                        monkeypatch):
    # The CG route alone (the refined Cholesky made to fail), at any size: the same head to
    # cond·1e-12 (the CG certificate) and the same risk to 1e-11 relative.
    monkeypatch.setattr(population, "_structured", lambda width, dim: True)
    monkeypatch.setattr(population, "refined_cholesky_solve", _fails)
    task, fit, (head, risk, cond) = _head_and_reference(task_name, activation, biased, ridge,
                                                        dim=10, width=120, seed=22)
    assert fit.diagnostics["pseudo_inverse"] == 0.0
    assert float((fit.head - head).norm() / head.norm()) <= 1e-12 * cond
    assert fit.diagnostics["population_risk"] == pytest.approx(risk, rel=1e-11,
                                                               abs=1e-14 * task.null_risk)


def test_structured_route_falls_back_when_features_have_no_nonlinear_part(monkeypatch):
    # Linear features: S = VVᵀ exactly, no positive diagonal remainder; the Cholesky route solves.
    monkeypatch.setattr(population, "_structured", lambda width, dim: True)
    task = build("quadratic", dim=10)
    weights = torch.as_tensor(np.random.default_rng(23).standard_normal((6, 10)))
    fit = optimal_head(task, "linear", weights)
    head, risk, _ = _dense_head(task, "linear", weights, None, 0.0)
    assert fit.diagnostics["population_risk"] == pytest.approx(risk, rel=1e-10, abs=1e-12)


def _fails(*args, **kwargs):
    raise AssertionError("the structured route should have solved this system")


def test_structured_route_is_tried_only_where_the_remainder_is_near_diagonal():
    assert population._structured(4500, 450)                 # fig1's widest RF: q = 0.044
    assert not population._structured(1350, 450)             # below the width where CG wins
    assert not population._structured(16384, 32)             # q = 31: N ≫ d(d + 1)/2
