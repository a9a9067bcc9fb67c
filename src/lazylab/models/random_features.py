"""Random features: a frozen random first layer, only the head (and offset) trained.

Notation (DESIGN.md): f(x) = c + Σ_i a_i σ(w_i·x + b_i), w_i ~ N(0, Γ) iid, b_i ~ N(0, s²) or 0,
frozen; a (and c when ``offset``) trained by ridge,

    min (1/n) Σ_k (y_k − f(x_k))² + λ ‖a‖²            (samples; lazylab.solvers.ridge)
    min E[(y − f(x))²] + λ ‖a‖²                          (n = ∞; lazylab.models.optimal_head)

(Ghorbani et al. 2019, eq. 2 and 4; THEORY.md §1.1–1.3). Γ = I/d ("isotropic"), Γ* = B/Tr B
("optimal", THEORY §1.2: needs the quadratic task's B) or a given (d, d) matrix.

Relation to the kernel limit: the features' Gram F Fᵀ ≈ N·K with K(x, y) = E_w[σ(w·x)σ(w·y)], so
RandomFeatures(ridge=N·λ, offset=False) → Kernel(kind="rf", ridge=λ) as N → ∞.

Device: a fit on samples (in memory, streamed, or along a ridge path) forms the features and
solves the ridge on ``device``; W and b are drawn on the CPU from the same stream whatever the
device, and the fitted network comes back on the CPU. The n = ∞ fit is the CPU's exact engine
and ignores ``device`` (a sweep decides n per run, so a spec's device cannot be refused there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.models._common import (draw_biases, draw_weights, numeric, resolve_input,
                                    weight_covariance_matrix)
from lazylab.models.population import optimal_head
from lazylab.predictors import TwoLayer
from lazylab.solvers import solve_ridge, streaming_ridge
from lazylab.solvers.batches import resolve_device
from lazylab.solvers.ridge import RidgeSolution
from lazylab.solvers.ridge_path import ridge_path

__all__ = ["RandomFeatures", "fit_head_on_samples", "STREAMING_ENTRIES"]

STREAMING_ENTRIES = 25_000_000
"""Above n·N feature entries (200 MB in float64) the normal equations are streamed in blocks."""

_BLOCK_ROWS_ENTRIES = 4_000_000


def fit_head_on_samples(model_features, x: torch.Tensor, y: torch.Tensor, width: int, *,
                        ridge: float, offset: bool, device: torch.device | None = None):
    """Ridge of y on features F = model_features(x) (n, N): in memory or streamed in blocks.

    ``device`` (default: x's) is where the features are formed and the ridge solved;
    ``model_features`` must accept inputs there. A streamed fit moves one block of rows at a
    time. Returns the :class:`lazylab.solvers.RidgeSolution` and whether it was streamed.
    """
    n, device = x.shape[0], x.device if device is None else device
    if n * width <= STREAMING_ENTRIES:
        return solve_ridge(model_features(x.to(device)), y.to(device), ridge=ridge,
                           fit_intercept=offset), False
    rows = max(1, _BLOCK_ROWS_ENTRIES // width)
    blocks = ((x[s:s + rows].to(device), y[s:s + rows].to(device)) for s in range(0, n, rows))
    return streaming_ridge(model_features, blocks, ridge=ridge, fit_intercept=offset), True


@dataclass(frozen=True, kw_only=True)
class RandomFeatures:
    """Random-features regression (only the second layer is trained).

    Args:
        width: N ≥ 1 hidden units.
        activation: σ (a name of ``lazylab.activations.ACTIVATIONS``, ``monomialK``).
        weight_covariance: "isotropic" (Γ = I/d), "optimal" (Γ* = B/Tr B, quadratic task only)
            or a (d, d) PSD matrix.
        biases: False (no biases) or "gaussian" (b_i ~ N(0, bias_scale²), frozen).
        bias_scale: s for gaussian biases.
        offset: fit an unpenalized constant c (Ghorbani et al.'s RF class has none).
        ridge: λ ≥ 0 on ‖a‖² (1/n-normalized loss, as in :mod:`lazylab.solvers.ridge`).
        device: where a fit on samples forms its features and solves ("cpu" or "cuda[:k]"; the
            fitted network is returned on the CPU; the n = ∞ fit ignores it).
    Random stream: W by one ``rng.standard_normal((N, d))``, then b by one
    ``rng.standard_normal(N)`` when biases are gaussian.
    """

    width: int = 100
    activation: str = "relu"
    weight_covariance: Any = "isotropic"
    biases: Any = False
    bias_scale: float = 1.0
    offset: bool = True
    ridge: float = 0.0
    device: str = "cpu"

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        checks.device(self.device)
        get_activation(self.activation)
        checks.ridge(self.ridge)
        checks.nonnegative_float(self.bias_scale, "bias_scale")
        checks.choice(self.biases, "biases", (False, "gaussian"))
        checks.choice(self.offset, "offset", (True, False))
        if isinstance(self.weight_covariance, str):
            checks.choice(self.weight_covariance, "weight_covariance", ("isotropic", "optimal"))

    def initialize(self, dim: int, *, rng: np.random.Generator, task: Any = None):
        """(W (N, d), b (N,) or None) drawn from ``rng`` (see the class docstring)."""
        gamma = weight_covariance_matrix(self.weight_covariance, dim, task)
        weights = draw_weights(rng, self.width, dim, gamma)
        biases = None
        if self.biases == "gaussian":
            biases = draw_biases(rng, self.width, self.bias_scale)
        return weights, biases

    def fit(self, data_or_task, *, rng: np.random.Generator) -> TwoLayer:
        """Fit the head on samples (a Dataset) or exactly at n = ∞ (a task with moments).

        Diagnostics: ``head_norm_max``, ``population_risk`` (n = ∞ only), ``streamed`` (1 when
        the normal equations were accumulated in blocks).
        """
        data, task = resolve_input(data_or_task)
        dim = data.dim if task is None else task.dim
        weights, biases = self.initialize(dim, rng=rng, task=task)
        sigma = get_activation(self.activation)
        if task is not None:
            model = optimal_head(task, sigma, weights, biases, offset=self.offset, ridge=self.ridge)
            model.diagnostics = numeric(model.diagnostics)
            return model
        template = TwoLayer(sigma, weights, torch.zeros(self.width, dtype=torch.float64), biases)
        device = resolve_device(self.device)
        solution, streamed = fit_head_on_samples(
            _placed(template, device).features, data.x, data.y, self.width, ridge=self.ridge,
            offset=self.offset, device=device)
        return _head_model(template, solution, streamed)

    def fit_path(self, data_or_task, ridges, *, rng: np.random.Generator
                 ) -> list[TwoLayer] | None:
        """This regime fitted on samples at every λ of ``ridges`` (its own ``ridge`` is ignored).

        W (and b) are drawn once from ``rng``, exactly as :meth:`fit` draws them; the features
        and their smaller Gram, FᵀF/n or FFᵀ/n, are formed once (on ``device``), and every
        λ's head is solved on it (:func:`lazylab.solvers.ridge_path.ridge_path`: a Cholesky
        per λ, or one shared eigendecomposition for long grids): what :meth:`fit` gives per λ,
        to round-off.
        Returns None (the caller refits per λ) at n = ∞ and where :meth:`fit` streams the
        normal equations (n·N > :data:`STREAMING_ENTRIES`). Diagnostics as :meth:`fit`.
        """
        data, task = resolve_input(data_or_task)
        if task is not None or data.x.shape[0] * self.width > STREAMING_ENTRIES:
            return None
        weights, biases = self.initialize(data.dim, rng=rng)
        template = TwoLayer(get_activation(self.activation), weights,
                            torch.zeros(self.width, dtype=torch.float64), biases)
        device = resolve_device(self.device)
        features = _placed(template, device).features(data.x.to(device))
        solutions = ridge_path(features, data.y.to(device), ridges, fit_intercept=self.offset)
        return [_head_model(template, solution, False) for solution in solutions]


def _placed(template: TwoLayer, device: torch.device) -> TwoLayer:
    """The template itself on the CPU, else a copy of it on ``device``."""
    if device.type == "cpu":
        return template
    return TwoLayer(template.activation, template.weights, template.head,
                    biases=template.biases, device=device)


def _head_model(template: TwoLayer, solution: RidgeSolution, streamed: bool) -> TwoLayer:
    """The fitted network on the CPU: the template's first layer, the solution's head and
    offset (moved from the device they were solved on)."""
    head = solution.coef.cpu()
    return TwoLayer(template.activation, template.weights, head, biases=template.biases,
                    offset=solution.intercept.cpu(),
                    diagnostics=numeric({"head_norm_max": head.abs().max(),
                                         "streamed": float(streamed)}))
