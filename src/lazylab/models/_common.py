"""Helpers shared by the training regimes: random first layers, data or task, diagnostics.

Argument validators live in :mod:`lazylab._checks`.

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

from lazylab import _checks as checks
from lazylab.tasks import Dataset

__all__ = ["resolve_input", "draw_weights", "draw_biases", "numeric", "weight_covariance_matrix",
           "DTYPE"]

DTYPE = torch.float64


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
    g = torch.from_numpy(checks.generator(rng).standard_normal((width, dim)))
    if covariance is None:
        return g / math.sqrt(dim)
    return g @ _root(covariance)


def draw_biases(rng: np.random.Generator, width: int, scale: float) -> torch.Tensor:
    """b (width,), b_i ~ N(0, scale²): one ``rng.standard_normal(width)`` call."""
    return scale * torch.from_numpy(checks.generator(rng).standard_normal(width))


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
