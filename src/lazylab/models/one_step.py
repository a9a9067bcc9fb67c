"""One large gradient step on the first layer, then ridge on the head (Damian, Lee &
Soltanolkotabi 2022, Algorithm 1; THEORY.md §4.2–4.3, the authors' code §4.7).

Notation: m = ``width`` (even), W (m × d), b (m), a (m); L(θ) = mean_k (ỹ_k − aᵀσ(Wx_k + b))²
on the preprocessed labels ỹ = y − α − β·x with α = mean y, β = mean y x.

Algorithm ("paper" variant, THEORY §4.3):
1. symmetric initialization: for j ≤ m/2, a_j ~ ±1, a_{j+m/2} = −a_j, w_j = w_{j+m/2} ~ N(0, I/d),
   b = 0, so f_{θ⁰} ≡ 0;
2. preprocess α, β;
3. W¹ = W⁰ − η₁(∇_W L(θ⁰) + λ₁W⁰); with the default λ₁ = 1/η₁ this is W¹ = −η₁∇_W L(θ⁰)
   (Theorem 1). Default η₁ = √d (Theorem 1's η₁ = Õ(√d); the row gradients are O(1/√d));
4. re-initialize b_j ~ N(0, 1), iid over all m units;
5. head a = argmin (1/n)‖ỹ − σ(XW¹ᵀ + b)a‖² + λ‖a‖² (closed-form ridge, as the code; the paper's
   steps t ≥ 2 run gradient descent on the same strongly convex objective);
6. predictor x ↦ α + β·x + aᵀσ(W¹x + b): a :class:`TwoLayer` with offset α and linear β.

"code" variant (THEORY §4.7): biases b ~ N(0, 1) drawn at initialization (symmetric,
b_j = b_{j+m/2}) and kept; the step is normalized, W¹ = (1 − η λ₁)W⁰ − η∇ with
η = η₁ / RMS_j ‖∇_{w_j} L‖, so the default η₁ = 1 gives the code's W ← −dw/√(mean_j ‖dw_j‖²).

η₁ = 0 means no step: W¹ = W⁰ (whatever λ₁).

Ridge: a number, a tuple (grid), or "auto" = the code's geomspace(1e-10, 1e15, 100). With a grid
on samples a validation split is drawn from ``rng`` (``validation_fraction`` = 0.2 of the
samples, a random permutation); α, β, the step and the head use the other 80 %, the ridge with
the least validation error is kept (no refit). At n = ∞ the grid is scored by the exact
population risk.

n = ∞ (a task with moments): α = E y, β = E[y x]; the step uses the exact population gradient,
∇_W of :func:`lazylab.risk.population_risk` of the TwoLayer (W⁰, a, b⁰, offset α, linear β) by
torch autograd (that risk is exactly E[(ỹ − f_θ(x))²]); the head is
:func:`lazylab.models.optimal_head` on the preprocessed task ỹ (exact moments), without offset.

Random stream (so that η₁ = 0 reduces to RandomFeatures draw for draw): W_half by one
``rng.standard_normal((m/2, d))``; ("code") b_half by one ``rng.standard_normal(m/2)``; the
signs; the validation permutation (grid on samples); ("paper") the m re-initialized biases.
Hence OneStep(width=2k, first_step_size=0, variant="code", ridge=λ) equals
RandomFeatures(width=k, biases="gaussian", offset=False, ridge=λ/2) fitted on (x, ỹ), plus
α + β·x: the paired units are duplicates, and duplicating every feature halves the ridge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.gaussian import dual_matrix, feature_input_moment, feature_mean
from lazylab.models._common import draw_biases, draw_weights, numeric, resolve_input
from lazylab.models.population import optimal_head
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.solvers import solve_ridge

__all__ = ["OneStep", "CODE_RIDGE_GRID", "Preprocessed"]

CODE_RIDGE_GRID = tuple(np.geomspace(1e-10, 1e15, 100).tolist())
"""The authors' ridge grid, np.geomspace(1e-10, 1e15, 100) (THEORY §4.7)."""


def _ridge_grid(ridge: Any) -> tuple[float, ...]:
    if isinstance(ridge, str):
        checks.choice(ridge, "ridge", ("auto",))
        return CODE_RIDGE_GRID
    values = ridge if isinstance(ridge, (tuple, list, np.ndarray)) else (ridge,)
    if len(values) == 0:
        raise ValueError("ridge grid must not be empty")
    return tuple(checks.nonnegative_float(v, "ridge") for v in values)


class Preprocessed:
    """The task with labels ỹ = y − α − β·x: the moments optimal_head needs, exactly.

    E ỹ = E y − α; E ỹ² = E y² − 2αE y − 2β·E[yx] + α² + Σ_c p_c βᵀC_cβ (x centered);
    E[ỹ σ(w·x + b)] = E[y σ] − α E σ − E[σ x]·β.
    """

    has_moments = True

    def __init__(self, task, alpha: float, beta: torch.Tensor):
        self.task, self.alpha, self.beta = task, float(alpha), beta
        self.dim, self.components = task.dim, task.components

    def target_mean(self) -> float:
        return float(self.task.target_mean()) - self.alpha

    def target_second_moment(self) -> float:
        b, a = self.beta, self.alpha
        quad = sum(p * float(b @ (b if c is None else c @ b)) for p, c in self.components)
        return (float(self.task.target_second_moment()) - 2 * a * float(self.task.target_mean())
                - 2 * float(b @ self.task.linear_moment()) + a * a + quad)

    def feature_moment(self, activation, weights, biases=None) -> torch.Tensor:
        out = self.task.feature_moment(activation, weights, biases)
        for p, c in self.components:
            out = out - p * (self.alpha * feature_mean(activation, weights, biases, c)
                             + feature_input_moment(activation, weights, biases, c) @ self.beta)
        return out


@dataclass(frozen=True, kw_only=True)
class OneStep:
    """Damian–Lee–Soltanolkotabi one-step feature learning (module docstring).

    Args:
        width: m, even, ≥ 2. activation: σ (the paper: relu).
        first_step_size: η₁ ≥ 0; None = √d ("paper") or 1 (the "code" normalized step).
        weight_decay: λ₁ ≥ 0 on the first step; None = 1/η₁ (W¹ = −η₁∇).
        ridge: head ridge λ, a tuple grid, or "auto" (the code's grid).
        validation_fraction: share of samples held out to choose the ridge on a grid.
        variant: "paper" or "code". bias_scale: standard deviation of the biases (1).
    """

    width: int = 1000
    activation: str = "relu"
    first_step_size: float | None = None
    weight_decay: float | None = None
    ridge: Any = "auto"
    validation_fraction: float = 0.2
    variant: str = "paper"
    bias_scale: float = 1.0

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        if self.width % 2:
            raise ValueError("width must be even (symmetric initialization pairs units), got "
                             f"{self.width}")
        get_activation(self.activation)
        if self.first_step_size is not None:
            checks.nonnegative_float(self.first_step_size, "first_step_size")
        if self.weight_decay is not None:
            checks.nonnegative_float(self.weight_decay, "weight_decay")
        _ridge_grid(self.ridge)
        checks.probability(self.validation_fraction, "validation_fraction", open_interval=True)
        checks.choice(self.variant, "variant", ("paper", "code"))
        checks.nonnegative_float(self.bias_scale, "bias_scale")

    # ------------------------------------------------------------------ initialization and step
    def initialize(self, dim: int, *, rng: np.random.Generator):
        """Symmetric (W⁰, b⁰ or None, a) from ``rng`` in the documented order."""
        half = self.width // 2
        w = draw_weights(rng, half, dim)
        b = draw_biases(rng, half, self.bias_scale) if self.variant == "code" else None
        signs = torch.from_numpy(rng.choice(np.array([-1.0, 1.0]), size=half))
        weights = torch.cat([w, w])
        return weights, None if b is None else torch.cat([b, b]), torch.cat([signs, -signs])

    def _step(self, weights: torch.Tensor, gradient: torch.Tensor) -> tuple[torch.Tensor, float]:
        eta = (math.sqrt(weights.shape[1]) if self.variant == "paper" else 1.0) \
            if self.first_step_size is None else float(self.first_step_size)
        if eta == 0.0:
            return weights.clone(), 0.0
        if self.variant == "code":
            rms = float(torch.sqrt(torch.mean(torch.sum(gradient ** 2, dim=1))))
            eta = eta / rms if rms > 0 else 0.0
        decay = 1.0 / eta if self.weight_decay is None and eta > 0 else (self.weight_decay or 0.0)
        return (1.0 - eta * decay) * weights - eta * gradient, eta

    def _final_biases(self, biases, rng):
        if self.variant == "paper":
            return draw_biases(rng, self.width, self.bias_scale)
        return biases

    # ------------------------------------------------------------------ fit
    def fit(self, data_or_task, *, rng: np.random.Generator) -> TwoLayer:
        """One step then ridge; diagnostics ``ridge_chosen``, ``head_norm_max``,
        ``first_step_size_effective``, ``weights_row_norm_rms``, and ``validation_risk``
        (samples, grid) or ``population_risk`` (n = ∞)."""
        data, task = resolve_input(data_or_task)
        dim = data.dim if task is None else task.dim
        weights, biases, head0 = self.initialize(dim, rng=rng)
        sigma = get_activation(self.activation)
        if task is not None:
            return self._fit_population(task, sigma, weights, biases, head0, rng)
        return self._fit_samples(data, sigma, weights, biases, head0, rng)

    def _finish(self, sigma, weights, biases, head, alpha, beta, eta, info) -> TwoLayer:
        info.update(head_norm_max=head.abs().max(), first_step_size_effective=eta,
                    weights_row_norm_rms=torch.sqrt(torch.mean(torch.sum(weights ** 2, 1))))
        return TwoLayer(sigma, weights, head, biases=biases, offset=alpha, linear=beta,
                        diagnostics=numeric(info))

    def _fit_samples(self, data, sigma, weights, biases, head0, rng) -> TwoLayer:
        grid = _ridge_grid(self.ridge)
        x, y = data.x, data.y
        validation = None
        if len(grid) > 1:
            order = torch.from_numpy(rng.permutation(data.n_samples))
            n_val = max(1, int(round(self.validation_fraction * data.n_samples)))
            if n_val >= data.n_samples:
                raise ValueError(f"a ridge grid needs a validation split: validation_fraction="
                                 f"{self.validation_fraction} of n_samples = {data.n_samples} "
                                 f"leaves no training samples (n = {data.n_samples} sample"
                                 f"{'s' if data.n_samples > 1 else ''})")
            validation = (x[order[:n_val]], y[order[:n_val]])
            x, y = x[order[n_val:]], y[order[n_val:]]
        alpha = y.mean()
        beta = (y[:, None] * x).mean(0)
        residual = y - alpha - x @ beta
        w = weights.clone().requires_grad_(True)
        pre = x @ w.T if biases is None else x @ w.T + biases
        loss = torch.mean((residual - sigma.function(pre) @ head0) ** 2)
        gradient, = torch.autograd.grad(loss, w)
        weights, eta = self._step(weights, gradient)
        biases = self._final_biases(biases, rng)
        model = TwoLayer(sigma, weights, torch.zeros(self.width, dtype=torch.float64), biases)
        features = model.features(x)
        info = {}
        ridge = grid[0]
        if validation is not None:
            x_val, y_val = validation
            ridge, info["validation_risk"] = _choose_ridge(
                features, residual, model.features(x_val), y_val - alpha - x_val @ beta, grid)
        head = solve_ridge(features, residual, ridge=ridge).coef
        info["ridge_chosen"] = ridge
        return self._finish(sigma, weights, biases, head, alpha, beta, eta, info)

    def _fit_population(self, task, sigma, weights, biases, head0, rng) -> TwoLayer:
        alpha = float(task.target_mean())
        beta = task.linear_moment().to(torch.float64)
        w = weights.clone().requires_grad_(True)
        start = TwoLayer(sigma, w, head0, biases=biases, offset=alpha, linear=beta)
        gradient, = torch.autograd.grad(population_risk(start, task), w)
        weights, eta = self._step(weights, gradient)
        biases = self._final_biases(biases, rng)
        residual_task = Preprocessed(task, alpha, beta)
        grid = _ridge_grid(self.ridge)
        ridge = grid[0] if len(grid) == 1 else _choose_population_ridge(
            residual_task, sigma, weights, biases, grid)
        fitted = optimal_head(residual_task, sigma, weights, biases, offset=False, ridge=ridge)
        model = self._finish(sigma, weights, biases, fitted.head, alpha, beta, eta,
                             {"ridge_chosen": ridge})
        with torch.no_grad():
            model.diagnostics["population_risk"] = float(population_risk(model, task))
        return model


def _choose_ridge(features, targets, features_val, targets_val, grid):
    """argmin over the grid of the validation MSE of the ridge head.

    One eigendecomposition of the smaller Gram (HᵀH when m ≤ n, else HHᵀ), then every ridge
    costs one (n_val × r) product: a(λ) = Q(Λ + nλ)⁻¹QᵀHᵀy (primal) or Hᵀ U(Λ + nλ)⁻¹Uᵀy (dual);
    eigenvalues below r·ε·max are dropped (the minimum-norm solution at λ = 0).
    """
    n, m = features.shape
    if m <= n:
        values, vectors = torch.linalg.eigh(features.T @ features)
        projected, z = features_val @ vectors, vectors.T @ (features.T @ targets)
    else:
        values, vectors = torch.linalg.eigh(features @ features.T)
        projected, z = (features_val @ features.T) @ vectors, vectors.T @ targets
    keep = values > values.shape[0] * torch.finfo(values.dtype).eps * float(values.max())
    values, projected, z = values[keep], projected[:, keep], z[keep]
    best = (math.inf, grid[0])
    for ridge in grid:
        error = float(torch.mean((targets_val - projected @ (z / (values + n * ridge))) ** 2))
        best = min(best, (error, ridge))
    return best[1], best[0]


def _choose_population_ridge(task, sigma, weights, biases, grid):
    """argmin over the grid of the exact population risk of the ridge head (one eigh)."""
    gram = sum(p * dual_matrix(sigma, weights, biases, covariance=c) for p, c in task.components)
    cross = task.feature_moment(sigma, weights, biases)
    values, vectors = torch.linalg.eigh(gram)
    values = values.clamp_min(0.0)
    cutoff = values.shape[0] * torch.finfo(values.dtype).eps * float(values.max())
    z = vectors.T @ cross
    second = task.target_second_moment()
    best = (math.inf, grid[0])
    for ridge in grid:
        shifted = values + ridge
        scale = torch.where(shifted > cutoff, 1.0 / shifted.clamp_min(cutoff),
                            torch.zeros_like(values))
        coef = scale * z
        risk = second - 2 * float(coef @ z) + float((values * coef) @ coef)
        best = min(best, (risk, ridge))
    return best[1]
