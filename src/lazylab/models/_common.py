"""Helpers shared by the training regimes: validation, random first layers, data or task.

Notation (DESIGN.md): d = ``dim``, N = ``width``, W (N × d) ``weights`` with rows w_i ~ N(0, Γ),
Γ = ``weight_covariance`` (default I/d), b (N) ``biases``. A regime's ``fit(data_or_task, *, rng)``
receives either a :class:`lazylab.tasks.Dataset` (fit on samples) or a task (fit at n = ∞ through
the exact engine); :func:`resolve_input` tells which, with the errors every regime shares.

Random streams: every regime draws its first layer with :func:`draw_weights` (one
``rng.standard_normal((N, d))`` call) and then, if any, its biases with :func:`draw_biases` (one
``rng.standard_normal(N)`` call). Regimes that share an initialization therefore see the same
numbers from the same generator state; this is what makes SemiRandom(degree=0) ≡
NeuralTangent(relu) and OneStep(first_step_size=0) ≡ RandomFeatures testable draw for draw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lazylab.activations import Activation, get_activation
from lazylab.tasks import Dataset

__all__ = ["check_width", "check_ridge", "check_choice", "check_activation", "check_rng",
           "check_nonnegative", "resolve_input", "draw_weights", "draw_biases", "torch_generator",
           "numeric", "weight_covariance_matrix", "DTYPE"]

DTYPE = torch.float64


def check_width(width: Any, name: str = "width") -> int:
    """A positive integer (numpy integers accepted), else ValueError naming ``name``."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {width!r}")
    return int(width)


def check_nonnegative(value: Any, name: str) -> float:
    """A finite float ≥ 0, else ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_ridge(ridge: Any, name: str = "ridge") -> float:
    """ridge λ ≥ 0 (finite)."""
    return check_nonnegative(ridge, name)


def check_choice(value: Any, name: str, allowed) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def check_activation(activation: Any) -> Activation:
    """The activation record; an unknown name raises the activations module's own error."""
    return get_activation(activation)


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def resolve_input(data_or_task: Any) -> tuple[Dataset | None, Any]:
    """(dataset, None) for samples, (None, task) for a population (n = ∞) fit.

    Raises:
        ValueError: a task without population moments (e.g. a real data set) was passed, so
            the n = ∞ fit is impossible; or an empty data set.
        TypeError: neither a Dataset nor a task.
    """
    if isinstance(data_or_task, Dataset):
        if data_or_task.n_samples == 0:
            raise ValueError("data must contain at least one sample, got n = 0")
        return data_or_task, None
    if hasattr(data_or_task, "sample") and hasattr(data_or_task, "dim"):
        if not getattr(data_or_task, "has_moments", False):
            raise ValueError(f"population fit (n = ∞) requested on task "
                             f"{type(data_or_task).__name__}, which has no population moments; "
                             "pass samples (task.sample(n, rng=...)) instead")
        return None, data_or_task
    raise TypeError("data_or_task must be a lazylab.tasks.Dataset or a task, got "
                    f"{type(data_or_task).__name__}")


def weight_covariance_matrix(weight_covariance: Any, dim: int,
                             task: Any = None) -> torch.Tensor | None:
    """Γ as a (d, d) tensor, or None for the isotropic Γ = I/d.

    "optimal" is Γ* = B/Tr B (Ghorbani et al. 2019, §1.1; THEORY.md §1.2) and needs a task with
    a matrix B (a quadratic target); a matrix is used as given (symmetric PSD, shape (d, d)).
    """
    if isinstance(weight_covariance, str):
        if weight_covariance == "isotropic":
            return None
        matrix = getattr(task, "matrix", None)
        if matrix is None:
            raise ValueError("weight_covariance='optimal' (Γ* = B/Tr B) needs a task with a "
                             "quadratic-form matrix B (e.g. the quadratic task) passed to fit; got "
                             f"{'samples' if task is None else type(task).__name__}")
        matrix = torch.as_tensor(matrix, dtype=DTYPE)
        trace = float(torch.trace(matrix))
        if not trace > 0:
            raise ValueError(f"weight_covariance='optimal' needs Tr B > 0, got Tr B = {trace:.4g}")
        gamma = matrix / trace
    else:
        gamma = torch.as_tensor(np.asarray(weight_covariance, dtype=float), dtype=DTYPE)
    if gamma.shape != (dim, dim):
        raise ValueError(f"weight_covariance must have shape ({dim}, {dim}), got "
                         f"{tuple(gamma.shape)}")
    return 0.5 * (gamma + gamma.T)


def _root(gamma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(gamma)
    if float(values.min()) < -1e-10 * max(1.0, float(values.abs().max())):
        raise ValueError(f"weight_covariance must be positive semi-definite; smallest eigenvalue "
                         f"{float(values.min()):.4g}")
    return (vectors * values.clamp_min(0.0).sqrt()) @ vectors.T


def draw_weights(rng: np.random.Generator, width: int, dim: int,
                 covariance: torch.Tensor | None = None) -> torch.Tensor:
    """W (width, dim), rows w_i ~ N(0, Γ): one ``rng.standard_normal((width, dim))`` call.

    Γ = I/d when ``covariance`` is None, else W = G Γ^{1/2} (symmetric root).
    """
    g = torch.from_numpy(check_rng(rng).standard_normal((width, dim)))
    if covariance is None:
        return g / math.sqrt(dim)
    return g @ _root(covariance)


def draw_biases(rng: np.random.Generator, width: int, scale: float) -> torch.Tensor:
    """b (width,), b_i ~ N(0, scale²): one ``rng.standard_normal(width)`` call."""
    return scale * torch.from_numpy(check_rng(rng).standard_normal(width))


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU torch.Generator seeded from ``rng`` (one 63-bit draw)."""
    generator = torch.Generator()
    generator.manual_seed(int(check_rng(rng).integers(0, 2 ** 63 - 1)))
    return generator


def numeric(diagnostics: dict) -> dict[str, float]:
    """Keep only the finite numeric diagnostics, as floats (docs/CONTRACTS.md)."""
    out = {}
    for key, value in diagnostics.items():
        try:
            number = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out
