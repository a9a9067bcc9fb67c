"""Semi-random units (Kawaguchi, Xie & Song 2018; Xie, Liang & Song 2017; THEORY.md §3).

Notation: σ_s(z) = z^s 1[z > 0], s = ``degree`` ∈ {0, 1}; r_i ~ N(0, I/d) random and frozen,
w_i trainable. Depth 1 (THEORY §3.2, degree-s form):

    f(x) = c + Σ_i σ_s(r_i·x) ⟨w_i, x⟩,

linear in W: the "gated linear" features of :mod:`lazylab.models.neural_tangent` with gate σ_s.
Its predictor is a :class:`NeuralTangentModel` whose activation has derivative σ_s: relu for
s = 0 (so SemiRandom(degree=0) *is* NeuralTangent(activation="relu") with r as the weights, and
draws r with the same rng call), and σ(u) = relu(u)²/2 for s = 1. Hence the n = ∞ fit is exact
for both degrees: :func:`lazylab.models.optimal_tangent` with that activation (the engine's tangent
operator E[σ_s(u)σ_s(v) z zᵀ] for σ_s = step or relu).

Deeper networks of semi-random units are their own regime,
:class:`lazylab.models.deep_semi_random.DeepSemiRandom` (trained, not exact at n = ∞).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import Activation, get_activation
from lazylab.models._common import draw_weights, resolve_input
from lazylab.models.neural_tangent import fit_tangent, fit_tangent_path
from lazylab.predictors import NeuralTangentModel

__all__ = ["SemiRandom", "HALF_RELU_SQUARED"]


def _half_relu_squared(u: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.relu(u) ** 2


HALF_RELU_SQUARED = Activation("half_relu_squared", _half_relu_squared, derivative_name="relu",
                               kinks=(0.0,))
"""σ(u) = relu(u)²/2, whose derivative relu is the degree-1 switching unit σ_1."""

_ANTIDERIVATIVE = {0: get_activation("relu"), 1: HALF_RELU_SQUARED}
"""degree s → the activation whose derivative is σ_s (the NeuralTangentModel activation)."""


@dataclass(frozen=True, kw_only=True)
class SemiRandom:
    """One layer of N semi-random units of degree s ∈ {0, 1}, fitted by ridge (exact at n = ∞).

    Args:
        width: N ≥ 1. degree: s ∈ {0, 1}. depth: 1 (deeper networks: :class:`DeepSemiRandom`).
        ridge: λ ≥ 0 on ‖W‖_F² (1/n-normalized loss).
        solver, tol, max_iter: as in :class:`lazylab.models.NeuralTangent`.
    Random stream: r by one ``rng.standard_normal((N, d))`` (as NeuralTangent).
    """

    width: int = 100
    degree: int = 0
    depth: int = 1
    ridge: float = 0.0
    solver: str = "auto"
    tol: float = 1e-10
    max_iter: int | None = None

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        if isinstance(self.degree, bool) or self.degree not in (0, 1):
            raise ValueError("degree must be 0 (linear semi-random) or 1 (squared), got "
                             f"{self.degree!r}")
        if checks.positive_int(self.depth, "depth") != 1:
            raise ValueError(f"depth must be 1 for SemiRandom, got depth={self.depth!r}; deeper "
                             "semi-random networks are DeepSemiRandom (lazylab.models."
                             "DeepSemiRandom, registry name 'deep_semi_random')")
        checks.ridge(self.ridge)
        checks.choice(self.solver, "solver", ("auto", "direct", "cg"))
        checks.positive_float(self.tol, "tol")
        checks.optional(checks.positive_int, self.max_iter, "max_iter")

    def fit(self, data_or_task, *, rng: np.random.Generator,
            progress=None) -> NeuralTangentModel:
        """A :class:`NeuralTangentModel` with weights r and directions W (exact at n = ∞).

        ``progress(iteration, None)`` is called after each conjugate-gradient iteration.
        """
        data, task = resolve_input(data_or_task)
        switches = draw_weights(rng, self.width, data.dim if task is None else task.dim)
        return fit_tangent(_ANTIDERIVATIVE[self.degree], switches, data, task, train_head=False,
                           ridge=self.ridge, solver=self.solver, tol=self.tol,
                           max_iter=self.max_iter, progress=progress)

    def initial_model(self, data_or_task, *, rng: np.random.Generator) -> NeuralTangentModel:
        """The model before any fit: r drawn from ``rng`` as :meth:`fit` draws it, W = 0, c = 0;
        model selection reads the features' scale from it instead of fitting a reference ridge
        (as :meth:`lazylab.models.NeuralTangent.initial_model`)."""
        data, task = resolve_input(data_or_task)
        switches = draw_weights(rng, self.width, data.dim if task is None else task.dim)
        return NeuralTangentModel(_ANTIDERIVATIVE[self.degree], switches,
                                  torch.zeros_like(switches))

    def fit_path(self, data_or_task, ridges, *, rng: np.random.Generator
                 ) -> list[NeuralTangentModel] | None:
        """This regime fitted on samples at every λ of ``ridges`` (its own ``ridge`` ignored),
        r drawn once from ``rng`` as :meth:`fit` draws it: NeuralTangent's ridge path
        (:meth:`lazylab.models.NeuralTangent.fit_path`) on the gated features with gate σ_s.
        None (the caller refits per λ) at n = ∞."""
        data, task = resolve_input(data_or_task)
        if task is not None:
            return None
        switches = draw_weights(rng, self.width, data.dim)
        return fit_tangent_path(_ANTIDERIVATIVE[self.degree], switches, data, ridges,
                                train_head=False, solver=self.solver, tol=self.tol,
                                max_iter=self.max_iter)
