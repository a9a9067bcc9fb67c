"""The matrix-free NT ridge path: every λ is the per-λ fit (to a bound derived from the CG
certificate), warm starts save iterations, models come back in the caller's order, and model
selection through the platform chooses as refitting does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lazylab.experiments import DONE, default_catalog, execute_run
from lazylab.experiments.runs import make_run
from lazylab.models import NeuralTangent
from lazylab.models._tangent_solvers import AntisymmetricDeflation, SampleStatistics
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.tasks import TASKS
from tangent_cases import (EPS, centered_system, gated_features, shuffled_grid,
                           single_neuron_data, solution_vector)

WIDTH, DIM, N = 4, 8, 300


def _data(seed=1):
    return single_neuron_data(N, DIM, seed)


def _features(activation, train_head, seed=3):
    return gated_features(activation, train_head, WIDTH, DIM, seed)


def _system(features, data):
    """The dense centered normal equations: (G = Φ_cᵀΦ_c/n, b = Φ_cᵀ(y − ȳ)/n)."""
    return centered_system(features, data)[1:]


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
@pytest.mark.parametrize("train_head", [False, True])
def test_every_ridge_of_the_path_is_the_per_ridge_fit(activation, train_head):
    # Certificate: A_λ = G + λI, ‖b − A_λ v‖ ≤ r‖b‖ with r the reported relative residual, so
    # ‖v − v*‖ ≤ r‖b‖/λ_min(A_λ); two CG solutions differ by at most (r₁ + r₂)‖b‖/λ_min. The
    # direct solve is backward stable: ‖v_direct − v*‖ ≤ 10·p·ε·cond(A_λ)·‖v*‖ (p unknowns).
    # The offsets c = ȳ − μ·v then agree to ‖μ‖ times the same bound.
    data, features = _data(), _features(activation, train_head)
    gram, rhs = _system(features, data)
    ridges = shuffled_grid(features, data)
    regime = NeuralTangent(width=WIDTH, activation=activation, train_head=train_head,
                           solver="cg", tol=1e-10)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    assert len(path) == len(ridges)
    mean = features.matrix(data.x).mean(0)
    for ridge, model in zip(ridges, path):
        fits = {solver: dataclasses.replace(regime, ridge=ridge, solver=solver, tol=1e-12).fit(
            data, rng=np.random.default_rng(3)) for solver in ("cg", "direct")}
        assert set(model.diagnostics) == set(fits["cg"].diagnostics)
        assert model.diagnostics["cg_converged"] == 1.0
        assert model.diagnostics["cg_residual"] <= 1e-10
        torch.testing.assert_close(model.weights, fits["cg"].weights, rtol=0, atol=0)
        values = torch.linalg.eigvalsh(gram) + ridge
        smallest, condition = float(values.min()), float(values.max() / values.min())
        bounds = {"cg": (model.diagnostics["cg_residual"] + fits["cg"].diagnostics["cg_residual"])
                  * float(torch.linalg.vector_norm(rhs)) / smallest}
        bounds["direct"] = model.diagnostics["cg_residual"] * float(
            torch.linalg.vector_norm(rhs)) / smallest + 10 * features.size * EPS * condition \
            * float(torch.linalg.vector_norm(solution_vector(fits["direct"])))
        for solver, fit in fits.items():
            error = float(torch.linalg.vector_norm(solution_vector(model) - solution_vector(fit)))
            assert error <= bounds[solver], (solver, ridge, error, bounds[solver])
            offset = abs(float(model.offset) - float(fit.offset))
            assert offset <= float(torch.linalg.vector_norm(mean)) * bounds[solver] + 1e-12


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_warm_starts_take_fewer_conjugate_gradient_iterations_than_cold_fits(activation):
    # The largest λ is solved cold with the same preconditioner as a cold fit: the same count.
    # Each later λ₂ = λ₁/10 starts from v(λ₁) (or better), residual (λ₁ − λ₂)v(λ₁): ≈ ‖b‖ while λ
    # exceeds the spectrum (no gain), ≈ λ₁‖v‖ ≪ ‖b‖ below it. So the three smallest ridges
    # must each take fewer iterations than cold, and the path fewer in all (measured here:
    # relu 131 vs 181, quadratic 130 vs 163; benchmarks/bench_selection.py at larger sizes).
    data, features = _data(), _features(activation, False)
    ridges = shuffled_grid(features, data)
    regime = NeuralTangent(width=WIDTH, activation=activation, solver="cg", tol=1e-10)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    cold = [dataclasses.replace(regime, ridge=r).fit(data, rng=np.random.default_rng(3))
            for r in ridges]
    warm_its = [m.diagnostics["cg_iterations"] for m in path]
    cold_its = [m.diagnostics["cg_iterations"] for m in cold]
    largest = int(np.argmax(ridges))
    assert warm_its[largest] == cold_its[largest]
    assert sum(warm_its) < sum(cold_its), (warm_its, cold_its)
    for k in np.argsort(ridges)[:3]:
        assert warm_its[k] < cold_its[k], (ridges[k], warm_its, cold_its)
    assert all(m.diagnostics["cg_converged"] == 1.0 for m in path + cold)


def test_the_path_keeps_the_callers_order_and_each_ridges_own_certificate():
    # Duplicated and unsorted ridges: each model is the fit at its own λ (the norm of the ridge
    # solution decreases in λ); the duplicate starts from its twin's solution: 0 iterations.
    data = _data()
    ridges = [1e-2, 10.0, 1e-2, 1e-5]
    regime = NeuralTangent(width=WIDTH, solver="cg")
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    norms = [float(m.directions.norm()) for m in path]
    assert norms[1] < norms[0] == pytest.approx(norms[2], rel=1e-8) and norms[0] < norms[3]
    assert path[2].diagnostics["cg_iterations"] == 0 < path[0].diagnostics["cg_iterations"]
    assert all(m.diagnostics["cg_converged"] == 1.0 for m in path)
    with pytest.raises(ValueError, match=r"ridges\[1\]"):
        regime.fit_path(data, [1e-3, -1.0], rng=np.random.default_rng(3))


def test_auto_above_the_dense_size_takes_the_path_and_sgd_and_population_decline(monkeypatch):
    data = _data()
    monkeypatch.setattr("lazylab.models.neural_tangent.DIRECT_ENTRIES", 10)
    path = NeuralTangent(width=WIDTH).fit_path(data, [1e-3, 1.0], rng=np.random.default_rng(3))
    assert all(m.diagnostics["cg_iterations"] > 0 for m in path)
    assert NeuralTangent(width=3, solver="sgd").fit_path(data, [1.0],
                                                         rng=np.random.default_rng(3)) is None
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=DIM)
    assert NeuralTangent(width=3, solver="cg").fit_path(task, [1.0],
                                                        rng=np.random.default_rng(3)) is None


def test_the_shifted_preconditioner_is_the_dense_inverse_at_every_ridge():
    # SampleStatistics.at(λ) (eigenbases once, eigenvalues shifted) against the dense
    # (κ̂ ⊗ Ĉ + λI)⁻¹ ⊕ (H_cᵀH_c/n + λI)⁻¹ built per λ; agreement to cond·ε (cond ≤ 10⁷ here).
    data, features = _data(), _features("relu", True)
    x = data.x
    covariance = x.T @ x / N
    gates = features.gate.function(x @ features.weights.T)
    kappa = (gates * (x * x).sum(1, keepdim=True)).T @ gates / N / torch.trace(covariance)
    heads = features.head.function(x @ features.weights.T)
    head_gram = torch.cov(heads.T, correction=0)
    statistics = SampleStatistics(features, x)
    vector = torch.from_numpy(np.random.default_rng(5).standard_normal(features.size))
    for ridge in (1e-6, 1e-3, 0.3):
        dense = torch.block_diag(torch.kron(kappa, covariance), head_gram) \
            + ridge * torch.eye(features.size, dtype=torch.float64)
        expected = torch.linalg.solve(dense, vector)
        torch.testing.assert_close(statistics.at(ridge)(vector), expected, rtol=1e-8, atol=1e-8)


PLATFORM_GRID = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]


@pytest.mark.parametrize("activation", ["relu", "quadratic"])
def test_selection_through_the_platform_chooses_as_refitting_does(monkeypatch, activation):
    # The path route does no per-value fit; refitting (fit_path stripped) fits every value.
    # Both certify relative residual ≤ tol = 1e-12; the coefficient bound of the test above is
    # then ≤ 2·10⁻¹²·cond ≲ 10⁻⁴·‖v‖ at the smallest λ and ≲ 10⁻⁸ from λ = 10⁻⁴ on, so the
    # choice and edge flag agree and the chosen fit's risks agree to 1e-6 relative.
    catalog = default_catalog()
    params = {"width": 3, "activation": activation, "solver": "cg", "tol": 1e-12,
              "ridge": {"grid": PLATFORM_GRID, "select": "validation"}}
    run = make_run("quadratic", {"dim": 4}, "neural_tangent", params, 60, 200, 2, 100)
    regime_class = catalog.regimes["neural_tangent"]
    calls, real = [], regime_class.fit

    def counted(self, *args, **kwargs):
        calls.append(self.ridge)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(regime_class, "fit", counted)
    path = execute_run(run, catalog=catalog)
    assert calls == [] and path.status == DONE, path.error
    stripped = dataclasses.make_dataclass("Refit", [], bases=(regime_class,), frozen=True,
                                          kw_only=True, namespace={"fit_path": None})
    refit = execute_run(run, catalog=dataclasses.replace(
        catalog, regimes={**catalog.regimes, "neural_tangent": stripped}))
    assert calls == PLATFORM_GRID and refit.status == DONE, refit.error
    for metric in ("selected_ridge", "selection_at_edge", "selection_unconverged"):
        assert path.metrics[metric] == refit.metrics[metric], metric
    for metric in ("selection_risk", "test_risk", "train_risk"):
        assert path.metrics[metric] == pytest.approx(refit.metrics[metric], rel=1e-6), metric


def test_the_path_keeps_the_gates_up_to_its_own_budget(monkeypatch):
    # Cached: the gates g(XWᵀ) are evaluated once (one row block here) for all ridges and
    # iterations; above the budget, once per block per operator application. Same arithmetic,
    # so the same iterations and the same solutions.
    data, ridges = _data(), [1.0, 1e-3]
    calls, parts = [], GatedFeatures._parts

    def counted(self, x):
        calls.append(x.shape[0])
        return parts(self, x)

    monkeypatch.setattr(GatedFeatures, "_parts", counted)
    monkeypatch.setattr("lazylab.models.neural_tangent.CACHE_ENTRIES", 10)  # fit: no cache
    regime = NeuralTangent(width=WIDTH, solver="cg")
    cached = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    assert calls == [N]
    monkeypatch.setattr("lazylab.models.neural_tangent.PATH_CACHE_ENTRIES", 10)
    recomputed = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    assert len(calls) - 1 > sum(m.diagnostics["cg_iterations"] for m in recomputed)
    for a, b in zip(cached, recomputed):
        assert a.diagnostics["cg_iterations"] == b.diagnostics["cg_iterations"]
        torch.testing.assert_close(a.directions, b.directions, rtol=1e-12, atol=1e-14)


def test_the_antisymmetric_deflation_projects_out_a_null_space_of_linear_gates():
    # σ = u² (g = 2u): Σ_i g(w_i·x)⟨(SW)_i, x⟩ = 2xᵀWᵀSWx = 0 for antisymmetric S, on any x.
    # Π must be the orthogonal projector onto the complement of {SW}: Π² = Π, Π(SW) = 0,
    # ⟨ΠA, SW⟩ = 0; it applies to linear gates with N ≤ d only.
    g = np.random.default_rng(7)
    data, features = _data(), _features("quadratic", False)
    weights = features.weights
    skew = torch.from_numpy(g.standard_normal((WIDTH, WIDTH)))
    skew = skew - skew.T
    null = skew @ weights
    assert float(features.apply(data.x, null.reshape(-1)).abs().max()) < 1e-12 * float(
        null.norm())
    assert AntisymmetricDeflation.applicable(features.gate, weights)
    project = AntisymmetricDeflation(weights)
    directions = torch.from_numpy(g.standard_normal((WIDTH, DIM)))
    once = project(directions)
    torch.testing.assert_close(project(once), once, rtol=1e-12, atol=1e-12)
    assert float(project(null).norm()) < 1e-12 * float(null.norm())
    assert abs(float((once * null).sum())) < 1e-12 * float(once.norm() * null.norm())
    relu = _features("relu", False)
    assert not AntisymmetricDeflation.applicable(relu.gate, relu.weights)
    wide = torch.from_numpy(g.standard_normal((DIM + 1, DIM)))
    assert not AntisymmetricDeflation.applicable(features.gate, wide)


def _least_squares_fits(monkeypatch, **device):
    """NT least squares by every sample route (direct, primal CG, primal CG in mixed precision,
    dual CG; single fits and paths, with a head), ``device=`` if given."""
    from lazylab.models import _tangent_path
    monkeypatch.setattr(_tangent_path, "use_mixed",
                        lambda n, p, dtype: dtype == torch.float64 and n == 300)
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5, noise=0.1)
    fits = []
    for n, solver in ((300, "direct"), (300, "cg"), (200, "cg"), (12, "cg")):
        data = task.sample(n, rng=np.random.default_rng(n))
        regime = NeuralTangent(width=6, train_head=True, ridge=1e-3, solver=solver, tol=1e-12,
                               **device)
        fits.append(regime.fit(data, rng=np.random.default_rng(1)))
        fits += regime.fit_path(data, [1e-2, 1e-4], rng=np.random.default_rng(1))
    return fits


def test_least_squares_on_the_cpu_named_is_the_default(monkeypatch):
    for named, default in zip(_least_squares_fits(monkeypatch, device="cpu"),
                              _least_squares_fits(monkeypatch)):
        assert named.directions.device.type == named.head.device.type == "cpu"
        torch.testing.assert_close(named.directions, default.directions, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_least_squares_on_cuda_match_the_cpu_by_every_route(monkeypatch):
    """Every route on the GPU within 1e-8 of the CPU's solution (tol 1e-12; the mixed route's
    float32 products are refined to the same float64 certificate), returned on the CPU."""
    for gpu, cpu in zip(_least_squares_fits(monkeypatch, device="cuda"),
                        _least_squares_fits(monkeypatch)):
        assert gpu.directions.device.type == gpu.head.device.type == "cpu"
        for got, expected in ((gpu.directions, cpu.directions), (gpu.head, cpu.head)):
            torch.testing.assert_close(got, expected, rtol=1e-8,
                                       atol=1e-8 * float(expected.abs().max()))
        assert float(gpu.offset) == pytest.approx(float(cpu.offset), rel=1e-8, abs=1e-10)
