"""Predictors: the two-layer network and its neural-tangent linearization.

Notation (DESIGN.md): x ∈ ℝ^d; W (N × d) = ``weights``, b (N) = ``biases``, a (N) = ``head``,
c = ``offset``, β (d) = ``linear``; σ = ``activation``.
* :class:`TwoLayer`: f(x) = c + βᵀx + Σ_i a_i σ(w_i·x + b_i).
* :class:`NeuralTangentModel`: f(x) = c + Σ_i σ′(w_i·x)⟨a_i, x⟩ + Σ_i h_i σ(w_i·x)
  (Ghorbani et al. 2019, eq. 3; the last sum only when the head is trained too).
Parameters are torch tensors (float64 unless given in another floating dtype) and may require
gradients; ``device`` (e.g. "cuda") moves them there, and ``predict`` moves its input along.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lazylab.activations import Activation, get_activation

__all__ = ["TwoLayer", "NeuralTangentModel"]


def _as_tensor(value, like: torch.Tensor | None = None, device=None):
    if value is None:
        return None
    if like is None:
        keep = isinstance(value, torch.Tensor) and value.is_floating_point()
        tensor = value if keep else torch.as_tensor(value, dtype=torch.float64)
        dtype = tensor.dtype
        return tensor.to(dtype=dtype, device=device if device is not None else tensor.device)
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def _check_shapes(weights, vectors: dict[str, torch.Tensor | None], width: int):
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (width, dim), got {tuple(weights.shape)}")
    for name, value in vectors.items():
        if value is not None and value.shape != (width,):
            raise ValueError(f"{name} must have shape ({width},), got {tuple(value.shape)}")


class _Layer:
    """Shared by both predictors: the frozen first layer W (N, d) and σ."""

    weights: torch.Tensor

    @property
    def width(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.weights.shape[1]

    def _convert(self, vectors: tuple[str, ...]) -> None:
        self.activation = get_activation(self.activation)
        self.weights = _as_tensor(self.weights, device=self.device)
        for name in (*vectors, "offset"):
            setattr(self, name, _as_tensor(getattr(self, name), self.weights))
        _check_shapes(self.weights, {n: getattr(self, n) for n in vectors}, self.width)


@dataclass(eq=False)
class TwoLayer(_Layer):
    """f(x) = c + βᵀx + Σ_i a_i σ(w_i·x + b_i).

    Attributes:
        activation: σ (name, :class:`Activation` or callable; stored as an Activation).
        weights: W, shape (N, d). head: a, shape (N,). biases: b, shape (N,) or None.
        offset: c, a 0-d tensor. linear: β, shape (d,) or None.
        diagnostics: solver or training information (numbers only).
        device: where the parameters live (default: where ``weights`` already is).
    """

    activation: Activation
    weights: torch.Tensor
    head: torch.Tensor
    biases: torch.Tensor | None = None
    offset: torch.Tensor | float = 0.0
    linear: torch.Tensor | None = None
    diagnostics: dict = field(default_factory=dict)
    device: str | torch.device | None = None

    def __post_init__(self):
        self._convert(("head", "biases"))
        self.linear = _as_tensor(self.linear, self.weights)
        if self.linear is not None and self.linear.shape != (self.dim,):
            raise ValueError(f"linear must have shape ({self.dim},), got {tuple(self.linear.shape)}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """σ(x Wᵀ + b), shape (n, N)."""
        pre = x @ self.weights.T
        return self.activation.function(pre if self.biases is None else pre + self.biases)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) for x of shape (n, d); returns shape (n,)."""
        x = _as_tensor(x, self.weights)
        out = self.features(x) @ self.head + self.offset
        return out if self.linear is None else out + x @ self.linear


@dataclass(eq=False)
class NeuralTangentModel(_Layer):
    """f(x) = c + Σ_i σ′(w_i·x)⟨a_i, x⟩ + Σ_i h_i σ(w_i·x).

    Attributes:
        activation: σ. weights: W (N, d), frozen. directions: A (N, d), the tangent
        coefficients a_i. head: h (N,) or None (head not trained). offset: c.
    """

    activation: Activation
    weights: torch.Tensor
    directions: torch.Tensor
    head: torch.Tensor | None = None
    offset: torch.Tensor | float = 0.0
    diagnostics: dict = field(default_factory=dict)
    device: str | torch.device | None = None

    def __post_init__(self):
        self._convert(("head",))
        self.directions = _as_tensor(self.directions, self.weights)
        if self.directions.shape != self.weights.shape:
            raise ValueError(f"directions must have the shape of weights {tuple(self.weights.shape)}, "
                             f"got {tuple(self.directions.shape)}")

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) for x of shape (n, d); returns shape (n,)."""
        x = _as_tensor(x, self.weights)
        pre = x @ self.weights.T
        gates = self.activation.derivative().function(pre)
        out = (gates * (x @ self.directions.T)).sum(dim=1) + self.offset
        if self.head is not None:
            out = out + self.activation.function(pre) @ self.head
        return out
