"""Data sets, the task protocol and the validation helpers shared by every task.

A task is a data model y = f*(x) + noise·ξ (ξ ~ N(0, 1) independent of x) with x drawn from a
mixture of centered Gaussians. Tasks with population moments expose exactly what the exact
engine needs (docs/CONTRACTS.md): E y, E y², E[y x], E[y σ(w·x + b)] and E[y σ′(w·x) x],
vectorized over hidden units (weights (N, d), biases (N,)), float64 and differentiable in the
weights and biases.

Noise enters only the second moment: E y = E f*, E[y g(x)] = E[f* g(x)] for every g, and
E y² = E f*² + noise². Hence ``null_risk`` = Var y and, for regression tasks, Bayes risk = noise².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import Activation, get_activation
from lazylab.gaussian.stein import has_function_derivative

__all__ = ["Dataset", "Task", "GaussianTask", "as_matrix", "is_diagonal", "as_weights",
           "as_biases", "check_dim", "check_noise", "check_samples", "resolve_activation",
           "tangent_activation", "unit_directions", "rng_tensor", "check_rng"]

DTYPE = torch.float64


@dataclass(frozen=True)
class Dataset:
    """Samples x (n, d) and labels y (n,), float64 torch tensors (converted on construction).

    Accepts anything ``torch.as_tensor`` takes (numpy arrays, lists, tensors); raises
    ValueError for wrong shapes and for NaN or infinite values, TypeError for non-numbers.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        x, y = _as_float64(self.x, "x"), _as_float64(self.y, "y")
        if x.ndim != 2:
            raise ValueError(f"x must have shape (n, d), got {tuple(x.shape)}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
        for name, tensor in (("x", x), ("y", y)):  # a finite sum (one read) proves it cheaply
            if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise ValueError(f"{name} has {bad} NaN or infinite entries; a data set must "
                                 "be finite")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])


def _as_float64(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray) and value.dtype == object:
        raise TypeError(f"{name} must hold numbers, got a numpy array of objects")
    try:
        return torch.as_tensor(value, dtype=DTYPE)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a numeric array (numpy, torch or nested lists), got "
                        f"{type(value).__name__} ({error})") from None


@runtime_checkable
class Task(Protocol):
    """What every task offers (docs/CONTRACTS.md); moment methods exist when ``has_moments``."""

    @property
    def dim(self) -> int: ...

    @property
    def has_moments(self) -> bool: ...

    @property
    def bayes_risk(self) -> float | None: ...

    @property
    def null_risk(self) -> float: ...

    def sample(self, n: int, *, rng: np.random.Generator) -> Dataset: ...


class GaussianTask:
    """Shared behaviour of the tasks with x ~ N(0, I_d) and exact moments.

    Subclasses define ``dim``, ``noise``, ``target(x)`` (f* on a batch), ``target_mean``,
    ``signal_second_moment`` (E f*², noise excluded), ``linear_moment``, ``feature_moment``
    and ``tangent_moment``.
    """

    has_moments = True

    @property
    def components(self) -> tuple[tuple[float, torch.Tensor | None], ...]:
        return ((1.0, None),)

    def target_second_moment(self) -> float:
        """E y² = E f*² + noise²."""
        return float(self.signal_second_moment() + self.noise ** 2)

    @property
    def null_risk(self) -> float:
        """Var y, the risk of the best constant predictor (R0 of normalized risks)."""
        return float(self.target_second_moment() - self.target_mean() ** 2)

    @property
    def bayes_risk(self) -> float:
        """noise²: the regression function E[y|x] = f*(x) is known."""
        return float(self.noise ** 2)

    def sample(self, n: int, *, rng: np.random.Generator) -> Dataset:
        """n iid pairs: x ~ N(0, I_d), y = f*(x) + noise·ξ (x, then ξ, from numpy's ``rng``)."""
        n = check_samples(n)
        x, y = self._draw(_numpy_normal(rng), self.target, n)
        return Dataset(x, y)

    def target_function(self, dtype: torch.dtype, device=None):
        """x (n, d) ↦ f*(x) (n,) in ``dtype`` on x's device, for the samplers' hot path
        (subclasses cast their constants once here, to ``device``); the default is
        :meth:`target` in float64, on the CPU when ``device`` is another (the tasks keep their
        constants there): correct for every task, fast for those that override it."""
        if device is not None and torch.device(device).type != "cpu":
            return lambda x: self.target(x.to("cpu", DTYPE)).to(device=x.device, dtype=dtype)
        if dtype == DTYPE:
            return self.target
        return lambda x: self.target(x.to(DTYPE)).to(dtype)

    def batch_sampler(self, *, rng: np.random.Generator, dtype: torch.dtype = DTYPE,
                      device=None):
        """n ↦ (x (n, d), y (n,)) of ``dtype`` for online SGD's per-step draws, or None when a
        subclass overrides :meth:`sample` (its inputs are then not N(0, I_d)).

        float64: x, then ξ (noise > 0), by numpy from ``rng`` — the numbers of :meth:`sample`
        (the same stream), without building and checking a :class:`Dataset` per batch:
        Gaussian draws are finite, so the arguments are checked once, here.
        float32: x ~ N(0, I_d) drawn in float32 by a torch generator seeded once from ``rng``
        (one integer drawn), about 3× cheaper than numpy's float64 draws — its own stream
        (:func:`lazylab.solvers.batches.fresh_batches`). y = f*(x) + noise·ξ with f* from
        :meth:`target_function` (constants cast to ``dtype`` once per sampler).
        ``device`` (float32 only; default the CPU): where the float32 draws are made — on a
        GPU, by a generator of that device (its own stream again), so that no batch crosses
        from the host. float64 draws are numpy's, on the CPU, whatever ``device``.
        """
        rng = check_rng(rng)
        if dtype not in (torch.float32, DTYPE):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        if type(self).sample is not GaussianTask.sample:
            return None
        if dtype == DTYPE:
            normal = _numpy_normal(rng)
        else:
            device = torch.device("cpu" if device is None else device)
            generator = torch.Generator(device).manual_seed(int(rng.integers(2 ** 63)))

            def normal(shape):
                return torch.randn(shape, generator=generator, dtype=torch.float32,
                                   device=device)
        target = self.target_function(dtype, None if dtype == DTYPE else device)
        return lambda n: self._draw(normal, target, n)

    def _draw(self, normal, target, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y): x = normal((n, d)), y = target(x) (+ noise · normal((n,)) when noise > 0)."""
        x = normal((n, self.dim))
        y = target(x)
        if self.noise > 0:
            y = y + self.noise * normal((n,))
        return x, y


def _numpy_normal(rng: np.random.Generator):
    """shape ↦ float64 standard normals from ``rng`` (checked once) as a torch tensor."""
    rng = check_rng(rng)
    return lambda shape: torch.from_numpy(rng.standard_normal(shape))


# ----------------------------------------------------------------------------- validation

def check_dim(dim) -> int:
    """The input dimension d: an integer >= 1."""
    return checks.positive_int(dim, "dim")


def check_noise(noise) -> float:
    """The noise standard deviation: a finite number >= 0."""
    return checks.nonnegative_float(noise, "noise")


def check_samples(n) -> int:
    """A number of samples: an integer >= 0."""
    return checks.nonnegative_int(n, "n")


def as_matrix(value, name: str, shape: tuple[int | None, int | None]) -> torch.Tensor:
    """A finite float64 2-D tensor of the given shape (None = any); ValueError naming ``name``."""
    tensor = torch.as_tensor(value, dtype=DTYPE)
    if tensor.ndim != 2 or any(want is not None and got != want
                               for got, want in zip(tensor.shape, shape)):
        wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite, got non-finite entries")
    return tensor


def is_diagonal(matrix: torch.Tensor) -> bool:
    """Whether every off-diagonal entry of the square ``matrix`` is exactly zero."""
    return bool(torch.count_nonzero(matrix - torch.diag(torch.diagonal(matrix))) == 0)


def as_weights(weights, dim: int) -> torch.Tensor:
    """Unit weights as a float64 (N, d) tensor (a (d,) vector is one unit); keeps autograd."""
    tensor = weights if isinstance(weights, torch.Tensor) else torch.as_tensor(weights)
    tensor = tensor.to(DTYPE)
    if tensor.ndim == 1:
        tensor = tensor[None, :]
    if tensor.ndim != 2 or tensor.shape[1] != dim:
        raise ValueError(f"weights must have shape (N, {dim}) for this task, got "
                         f"{tuple(tensor.shape)}")
    return tensor


def as_biases(biases, width: int) -> torch.Tensor | None:
    """Biases as a float64 (N,) tensor, or None (no biases)."""
    if biases is None:
        return None
    tensor = biases if isinstance(biases, torch.Tensor) else torch.as_tensor(biases)
    tensor = tensor.to(DTYPE)
    if tensor.ndim == 0:
        tensor = tensor.expand(width)
    if tensor.shape != (width,):
        raise ValueError(f"biases must have shape ({width},) to match weights, got "
                         f"{tuple(tensor.shape)}")
    return tensor


def resolve_activation(activation, name: str = "activation") -> Activation:
    try:
        return get_activation(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: {error}") from None


def tangent_activation(activation) -> Activation:
    """σ for a tangent moment E[y σ′(w·x) x]: σ′ must be a function (not step or sign)."""
    sigma = resolve_activation(activation)
    if not has_function_derivative(sigma):
        raise ValueError(f"activation {sigma.name!r} has a Dirac derivative; the tangent moment "
                         "E[y σ′(w·x) x] needs σ′ to be a function (use e.g. relu, tanh, "
                         "a polynomial)")
    return sigma


def unit_directions(weights: torch.Tensor, *, allow_zero: bool = True):
    """(s, ŵ): row norms (N,) and unit rows (N, d); zero rows give ŵ = 0 (or ValueError)."""
    scales = torch.linalg.vector_norm(weights, dim=-1)
    zero = scales == 0
    if torch.any(zero) and not allow_zero:
        raise ValueError(f"weights: rows {torch.nonzero(zero).flatten().tolist()[:5]} are zero; "
                         "the tangent moment needs nonzero rows")
    safe = torch.where(zero, torch.ones_like(scales), scales)
    return scales, weights / safe[:, None]


def check_rng(rng) -> np.random.Generator:
    """``rng`` itself when it is a numpy Generator; TypeError otherwise."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def rng_tensor(rng: np.random.Generator, shape) -> torch.Tensor:
    """Standard normal draws from ``rng`` as a float64 tensor."""
    return torch.from_numpy(check_rng(rng).standard_normal(shape))
