"""Small NT least-squares cases shared by the tangent tests (ridge path, dual, mixed precision).

The single-neuron data, the gated features ``NeuralTangent.fit`` builds from ``default_rng(3)``,
the dense centered normal equations G v = b (G = Φ_cᵀΦ_c/n, b = Φ_cᵀ(y − ȳ)/n), and the check
every certified CG solution must pass against the dense solve: with A_λ = G + λI and r the
reported relative residual, ‖v − v*‖ ≤ r‖b‖/λ_min(A_λ); the dense solve is backward stable,
‖v_dense − v*‖ ≤ 10·p·ε·cond(A_λ)·‖v*‖ (p unknowns); the offsets c = ȳ − μ·v then agree to ‖μ‖
times the same bound.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lazylab.activations import get_activation
from lazylab.experiments.selection import default_ridge_grid
from lazylab.models._common import draw_weights
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.tasks import TASKS

EPS = torch.finfo(torch.float64).eps
SHUFFLED = (3, 10, 0, 7, 5, 1, 9, 2, 8, 4, 6)
"""An order of the 11-value default grid that a ridge path must not care about."""


def single_neuron_data(n: int, dim: int, seed: int = 1):
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=dim, noise=0.2)
    return task.sample(n, rng=np.random.default_rng(seed))


def gated_features(activation: str, train_head: bool, width: int, dim: int, seed: int = 3):
    """The features ``fit`` builds from ``default_rng(seed)`` (W drawn the same way)."""
    sigma = get_activation(activation)
    weights = draw_weights(np.random.default_rng(seed), width, dim)
    return GatedFeatures(weights, sigma.derivative(), sigma if train_head else None)


def centered_system(features, data):
    """(Φ_c, G = Φ_cᵀΦ_c/n, b = Φ_cᵀ(y − ȳ)/n) of the centered normal equations."""
    phi = features.matrix(data.x)
    centered = phi - phi.mean(0)
    n = data.x.shape[0]
    return centered, centered.T @ centered / n, centered.T @ (data.y - data.y.mean()) / n


def shuffled_grid(features, data) -> list[float]:
    """The default grid at the features' scale, in the order :data:`SHUFFLED`."""
    scale = float((features.matrix(data.x) ** 2).sum(1).mean())
    return [default_ridge_grid(scale)[k] for k in SHUFFLED]


def solution_vector(model) -> torch.Tensor:
    """The fitted unknowns (directions, then the head when trained), flat."""
    flat = model.directions.reshape(-1)
    return flat if model.head is None else torch.cat([flat, model.head])


def assert_path_and_cold_fits_solve_densely(regime, data, features):
    """Every λ of ``regime.fit_path`` on the shuffled grid, and the cold fit at each λ, is the
    dense solution within the certificate bound of the module docstring (offsets too)."""
    _, gram, rhs = centered_system(features, data)
    ridges = shuffled_grid(features, data)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    mean = features.matrix(data.x).mean(0)
    identity = torch.eye(features.size, dtype=torch.float64)
    for ridge, model in zip(ridges, path):
        cold = dataclasses.replace(regime, ridge=ridge).fit(data, rng=np.random.default_rng(3))
        exact = torch.linalg.solve(gram + ridge * identity, rhs)
        values = torch.linalg.eigvalsh(gram) + ridge
        smallest, condition = float(values.min()), float(values.max() / values.min())
        for fit in (model, cold):
            assert fit.diagnostics["cg_converged"] == 1.0
            assert fit.diagnostics["cg_residual"] <= regime.tol
            bound = (fit.diagnostics["cg_residual"] * float(torch.linalg.vector_norm(rhs))
                     / smallest + 10 * features.size * EPS * condition
                     * float(torch.linalg.vector_norm(exact)))
            error = float(torch.linalg.vector_norm(solution_vector(fit) - exact))
            assert error <= bound, (ridge, error, bound)
            offset = float(data.y.mean() - mean @ exact)
            assert abs(float(fit.offset) - offset) <= float(
                torch.linalg.vector_norm(mean)) * bound + 1e-12
