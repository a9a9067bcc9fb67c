"""The n = ∞ NT fit of σ = c₀ + c₂u² by the best quadratic form, against conjugate gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation, polynomial
from lazylab.models import optimal_tangent, population
from lazylab.models._tangent_quadratic import quadratic_tangent
from lazylab.risk import population_risk
from lazylab.tasks import TASKS

DIM = 6


def _task(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if name == "quadratic":
        return TASKS["quadratic"](rng=rng, dim=DIM, matrix="exp-diagonal", noise=0.3)
    if name == "uncentred":
        return TASKS["quadratic"](rng=rng, dim=DIM, matrix="low-rank", rank=2, centered=False)
    return TASKS["gaussian_mixture"](rng=rng, dim=DIM, delta=name, noise=0.1)


def _weights(width: int, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((width, DIM))) / DIM ** 0.5


def _conjugate_gradient(monkeypatch, task, activation, weights):
    with monkeypatch.context() as patch:
        patch.setattr(population, "quadratic_tangent", lambda *args, **kwargs: None)
        return optimal_tangent(task, activation, weights, tol=1e-13)


@pytest.mark.parametrize("name", ["quadratic", "uncentred", "paper"])
@pytest.mark.parametrize("activation", ["quadratic", "hermite2",
                                        polynomial([0.3, 0.0, -2.5], name="scaled")])
@pytest.mark.parametrize("width", [DIM, 2 * DIM + 3])
def test_the_quadratic_form_is_the_conjugate_gradient_fit(monkeypatch, name, activation, width):
    task, weights = _task(name), _weights(width)
    fast = optimal_tangent(task, activation, weights)
    reference = _conjugate_gradient(monkeypatch, task, activation, weights)
    assert fast.diagnostics["cg_iterations"] == 0 and fast.diagnostics["cg_converged"] == 1.0
    assert fast.diagnostics["cg_residual"] < 1e-12
    risk = fast.diagnostics["population_risk"]
    assert risk == pytest.approx(reference.diagnostics["population_risk"], rel=1e-10, abs=1e-13)
    assert risk == pytest.approx(float(population_risk(fast, task)), rel=1e-10, abs=1e-13)
    assert float(fast.offset) == pytest.approx(float(reference.offset), abs=1e-10)
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((50, DIM)))
    assert torch.allclose(fast.predict(x), reference.predict(x), rtol=1e-9, atol=1e-11)


def test_the_directions_lie_in_the_column_space_of_the_first_layer():
    """A is orthogonal to every A₀ with WᵀA₀ = 0 (directions that change nothing)."""
    task, weights = _task("paper"), _weights(2 * DIM + 3)
    directions = optimal_tangent(task, "quadratic", weights).directions
    outside = torch.from_numpy(np.random.default_rng(5).standard_normal(weights.shape))
    outside = outside - weights @ torch.linalg.solve(weights.T @ weights, weights.T @ outside)
    assert torch.allclose(weights.T @ outside, torch.zeros(DIM, DIM, dtype=torch.float64),
                          atol=1e-12)
    cosine = torch.sum(directions * outside) / (torch.linalg.matrix_norm(directions)
                                                * torch.linalg.matrix_norm(outside))
    assert abs(float(cosine)) < 1e-12


def test_an_ill_conditioned_square_layer_is_still_certified(monkeypatch):
    """N = d with cond(W) = 10⁵: the realization loses ≈ cond(W)·ε, far inside 10⁻¹⁰ (the
    minimum-norm one through WᵀW would lose cond(W)²·ε ≈ 10⁻⁶)."""
    rng = np.random.default_rng(6)
    q1, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    q2, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    weights = torch.from_numpy(q1 @ np.diag(np.logspace(0, -5, DIM)) @ q2.T)
    task = _task("paper")
    fit = optimal_tangent(task, "quadratic", weights)
    assert fit.diagnostics["cg_iterations"] == 0 and fit.diagnostics["cg_residual"] < 1e-10
    reference = optimal_tangent(task, "quadratic", _weights(3 * DIM))
    assert fit.diagnostics["population_risk"] == pytest.approx(
        reference.diagnostics["population_risk"], rel=1e-12)


def test_the_risk_is_flat_in_the_width_once_the_layer_has_full_rank():
    task = _task("paper")
    risks = [optimal_tangent(task, "quadratic", _weights(width, seed)).diagnostics[
        "population_risk"] for width, seed in ((DIM, 3), (3 * DIM, 4), (10 * DIM, 5))]
    assert np.ptp(risks) < 1e-12 * max(risks)


@pytest.mark.parametrize("case", ["relu", "linear term", "narrow", "rotated", "singular"])
def test_it_declines_where_the_function_class_argument_fails(case):
    task, activation, weights = _task("paper"), get_activation("quadratic"), _weights(2 * DIM)
    if case == "relu":
        activation = get_activation("relu")
    elif case == "linear term":
        activation = polynomial([0.0, 1.0, 1.0])
    elif case == "narrow":
        weights = _weights(DIM - 1)
    elif case == "rotated":
        task = _task("paper-rotated")
    else:
        weights = torch.cat([weights[:, :1].repeat(1, 2), weights[:, 2:]], dim=1)
    assert quadratic_tangent(task, activation, weights, tol=1e-10) is None


def test_ridge_and_a_trained_head_keep_the_conjugate_gradient(monkeypatch):
    calls = []
    monkeypatch.setattr(population, "quadratic_tangent",
                        lambda *args, **kwargs: calls.append(1))
    task, weights = _task("quadratic"), _weights(2 * DIM)
    optimal_tangent(task, "quadratic", weights, ridge=1e-3)
    optimal_tangent(task, "quadratic", weights, train_head=True)
    assert calls == []
    optimal_tangent(task, "quadratic", weights)
    assert calls == [1]
