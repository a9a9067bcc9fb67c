"""Single-neuron target y = τ(w*·x + b*) + noise·ξ, x ~ N(0, I_d) (Yehudai & Shamir 2019, §2.3).

Notation: s* = ‖w*‖, s_i = ‖w_i‖, c_i = w*·w_i, λ_k(τ; s, b) = E[τ(sG + b) He_k(G)].

Moments [D]:
* E y = λ_0(τ; s*, b*);  E y² = E[τ(s*G + b*)²] + noise²;  E[y x] = w* λ_1(τ; s*, b*)/s*.
* E[y σ(w_i·x + b_i)] = E[τ(u + b*) σ(v + b_i)] with (u, v) ~ N(0, [[s*², c_i], [c_i, s_i²]]).
* Stein's lemma on h(x) = τ(w*·x + b*) σ′(w·x):
      E[y σ′(w·x) x] = w*·E[τ′(u + b*) σ′(v)] + w·E[τ(u + b*) σ″(v)],
  where Dirac parts of τ′ or σ″ (relu″ = δ) are integrated by conditioning
  (:mod:`lazylab.gaussian.stein`): E[τ(u + b*) δ(v)] = λ_0(τ; s*√(1 − ρ²), b*)/(√(2π) s_i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from lazylab.activations import Activation
from lazylab.gaussian import pair_expectation
from lazylab.gaussian.stein import derivative_parts, parts_pair
from lazylab.tasks.base import (DTYPE, GaussianTask, as_biases, as_weights, check_dim,
                                check_noise, resolve_activation, tangent_activation,
                                unit_directions)

__all__ = ["SingleNeuron", "single_neuron"]


@dataclass(frozen=True, eq=False)
class SingleNeuron(GaussianTask):
    """y = τ(w*·x + b*) + noise·ξ.

    Args:
        weights: w*, shape (d,) (any nonzero norm).
        bias: b*.
        activation: τ (name, :class:`Activation` or callable), default relu.
        noise: label noise standard deviation.
    """

    weights: torch.Tensor
    bias: float = 0.0
    activation: Activation | str = "relu"
    noise: float = 0.0
    _tau: Activation = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = torch.as_tensor(self.weights, dtype=DTYPE)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must be a nonempty vector (d,), got shape {tuple(w.shape)}")
        if not torch.isfinite(w).all() or float(w.norm()) == 0:
            raise ValueError("weights must be finite and nonzero")
        if not math.isfinite(float(self.bias)):
            raise ValueError(f"bias must be finite, got {self.bias!r}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", float(self.bias))
        object.__setattr__(self, "noise", check_noise(self.noise))
        object.__setattr__(self, "_tau", resolve_activation(self.activation))

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def _scale(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.weights)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self._tau(x @ self.weights + self.bias)

    def _lambda(self, degree: int) -> torch.Tensor:
        return self._tau.hermite_coefficients(degree, self._scale, self.bias)

    def target_mean(self) -> float:
        return float(self._lambda(0)[0])

    def signal_second_moment(self) -> float:
        var = self._scale ** 2
        return float(pair_expectation(self._tau, self._tau, var, var, var, self.bias, self.bias))

    def linear_moment(self) -> torch.Tensor:
        """E[y x] = w* λ_1(τ; s*, b*)/s*, shape (d,)."""
        return self.weights * (self._lambda(1)[1] / self._scale)

    def _unit_args(self, weights):
        var = (weights * weights).sum(-1)
        return self._scale ** 2, var, weights @ self.weights

    def feature_moment(self, activation, weights, biases=None) -> torch.Tensor:
        """E[y σ(w_i·x + b_i)], shape (N,): one dual activation per unit."""
        sigma = resolve_activation(activation)
        weights = as_weights(weights, self.dim)
        biases = as_biases(biases, weights.shape[0])
        var_target, var, cov = self._unit_args(weights)
        target_bias = None if (biases is None and self.bias == 0.0) else self.bias
        return pair_expectation(self._tau, sigma, var_target, var, cov, target_bias, biases)

    def tangent_moment(self, activation, weights) -> torch.Tensor:
        """E[y σ′(w_i·x) x] = w* E[τ′σ′] + w_i E[τ σ″], shape (N, d) (Stein's lemma)."""
        sigma = tangent_activation(activation)
        weights = as_weights(weights, self.dim)
        unit_directions(weights, allow_zero=False)
        first = derivative_parts(sigma)
        second = derivative_parts(first.function)
        var_target, var, cov = self._unit_args(weights)
        along_target = parts_pair(derivative_parts(self._tau), first, var_target, var, cov,
                                  self.bias, None)
        along_unit = parts_pair(self._tau, second, var_target, var, cov, self.bias, None)
        return along_target[:, None] * self.weights + along_unit[:, None] * weights


def single_neuron(*, rng: np.random.Generator, dim: int = 10, weight_norm: float = 1.0,
                  bias: float = 0.0, activation: str = "relu",
                  noise: float = 0.0) -> SingleNeuron:
    """Build y = τ(w*·x + b*) + noise·ξ with w* uniform on the sphere of radius ``weight_norm``.

    w* = weight_norm·g/‖g‖ with g ~ N(0, I_d) drawn from ``rng`` (rotation invariance of g makes
    the direction uniform on the sphere).
    """
    dim = check_dim(dim)
    if not (isinstance(weight_norm, (int, float)) and math.isfinite(weight_norm)
            and weight_norm > 0):
        raise ValueError(f"weight_norm must be a positive finite float, got {weight_norm!r}")
    g = rng.standard_normal(dim)
    while not np.linalg.norm(g) > 0:
        g = rng.standard_normal(dim)
    weights = torch.from_numpy(weight_norm * g / np.linalg.norm(g))
    return SingleNeuron(weights=weights, bias=bias, activation=activation, noise=noise)
