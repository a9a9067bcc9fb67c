"""Semi-random units (Kawaguchi, Xie & Song 2018; Xie, Liang & Song 2017; THEORY.md §3).

Notation: σ_s(z) = z^s 1[z > 0], s = ``degree`` ∈ {0, 1}; r_i ~ N(0, I/d) random and frozen,
w_i trainable. Depth 1 (THEORY §3.2, degree-s form):

    f(x) = c + Σ_i σ_s(r_i·x) ⟨w_i, x⟩,

linear in W: the "gated linear" features of :mod:`lazylab.models.neural_tangent` with gate σ_s.
Its predictor is a :class:`NeuralTangentModel` whose activation has derivative σ_s: relu for
s = 0 (so SemiRandom(degree=0) *is* NeuralTangent(activation="relu") with r as the weights, and
draws r with the same rng call), and σ(u) = relu(u)²/2 for s = 1. Hence the n = ∞ fit is exact
for both degrees: :func:`lazylab.risk.optimal_tangent` with that activation (the engine's tangent
operator E[σ_s(u)σ_s(v) z zᵀ] for σ_s = step or relu).

Depth L > 1 (THEORY §3.2 [C], the authors' ``semi_random.py``): z⁰ = h⁰ = x,

    z^l = σ_s(R^l z^{l−1} + c^l)  (random, fixed),   h^l = z^l ⊙ (W^l h^{l−1} + b^l)  (trained),

output f(x) = w^{L+1}·h^L + b^{L+1} (trained). Initialization as in the code: weights
N(0, 1/fan-in), biases U[−std/2, std/2] with std = 1/√fan-in, for both paths; the output layer
N(0, 1/N) with zero bias. Trained by :func:`lazylab.solvers.training.train` (SGD or Adam) on
reshuffled minibatches of the samples, or at n = ∞ on fresh samples of the task (online SGD:
steps × batch_size samples; not exact). ``ridge`` is the optimizer's weight decay there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lazylab.activations import Activation, get_activation
from lazylab.errors import DivergenceError
from lazylab.models._common import (check_choice, check_nonnegative, check_ridge, check_width,
                                    draw_weights, numeric, resolve_input)
from lazylab.models.neural_tangent import fit_tangent
from lazylab.solvers.training import fresh_batches, minibatches, train

__all__ = ["SemiRandom", "DeepSemiRandomModel", "HALF_RELU_SQUARED"]

def _half_relu_squared(u: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.relu(u) ** 2


HALF_RELU_SQUARED = Activation("half_relu_squared", _half_relu_squared, derivative_name="relu",
                               kinks=(0.0,))
"""σ(u) = relu(u)²/2, whose derivative relu is the degree-1 switching unit σ_1."""

_ANTIDERIVATIVE = {0: get_activation("relu"), 1: HALF_RELU_SQUARED}
_GATE = {0: get_activation("step"), 1: get_activation("relu")}


@dataclass(eq=False)
class DeepSemiRandomModel:
    """The trained deep semi-random network (module docstring); ``predict(x) -> (n,)``.

    Attributes: degree s; random (R^l, c^l) per layer; trainable (W^l, b^l) per layer;
    head (N,), offset; diagnostics.
    """

    degree: int
    random: list
    trainable: list
    head: torch.Tensor
    offset: torch.Tensor
    diagnostics: dict = field(default_factory=dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = _GATE[self.degree].function
        z = h = x
        for (r, c), (w, b) in zip(self.random, self.trainable):
            z = gate(z @ r.T + c)
            h = z * (h @ w.T + b)
        return h @ self.head + self.offset

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.forward(torch.as_tensor(x, dtype=self.head.dtype))


def _uniform_bias(rng, width, fan_in):
    std = 1.0 / np.sqrt(fan_in)
    return torch.from_numpy(rng.uniform(-0.5 * std, 0.5 * std, width))


@dataclass(frozen=True, kw_only=True)
class SemiRandom:
    """Semi-random units of degree s ∈ {0, 1}, one (ridge, exact at n = ∞) or several layers (SGD).

    Args:
        width: N ≥ 1 units per layer. degree: s ∈ {0, 1}. depth: L ≥ 1.
        ridge: λ ≥ 0 on ‖W‖_F² (depth 1, 1/n-normalized loss), or weight decay (depth > 1).
        solver, tol, max_iter: depth 1, as in :class:`NeuralTangent`.
        optimizer, learning_rate, steps, batch_size: depth > 1 training.
    Random stream: r (layer 1) by one ``rng.standard_normal((N, d))`` (as NeuralTangent); for
    depth > 1 then c¹, (R^l, c^l) for l ≥ 2, the trainable initialization, and the minibatches.
    """

    width: int = 100
    degree: int = 0
    depth: int = 1
    ridge: float = 0.0
    solver: str = "auto"
    tol: float = 1e-10
    max_iter: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    steps: int = 2000
    batch_size: int = 100

    def __post_init__(self):
        check_width(self.width)
        if isinstance(self.degree, bool) or self.degree not in (0, 1):
            raise ValueError("degree must be 0 (linear semi-random) or 1 (squared), got "
                             f"{self.degree!r}")
        check_width(self.depth, "depth")
        check_ridge(self.ridge)
        check_choice(self.solver, "solver", ("auto", "direct", "cg"))
        check_choice(self.optimizer, "optimizer", ("sgd", "adam"))
        if not check_nonnegative(self.learning_rate, "learning_rate") > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        check_width(self.steps, "steps")
        check_width(self.batch_size, "batch_size")
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0, got {self.tol!r}")

    def fit(self, data_or_task, *, rng: np.random.Generator, progress=None):
        """Depth 1: NeuralTangentModel (exact at n = ∞). Depth > 1: DeepSemiRandomModel.

        ``progress(step, total)`` is called after CG iterations (total None) or SGD steps.
        """
        data, task = resolve_input(data_or_task)
        dim = data.dim if task is None else task.dim
        switches = draw_weights(rng, self.width, dim)
        if self.depth == 1:
            model = fit_tangent(_ANTIDERIVATIVE[self.degree], switches, data, task,
                                train_head=False, ridge=self.ridge, solver=self.solver,
                                tol=self.tol, max_iter=self.max_iter, progress=progress)
            return model
        return self._fit_deep(switches, data, task, rng, progress)

    def _initialize(self, switches, dim, rng):
        random = [(switches, _uniform_bias(rng, self.width, dim))]
        for _ in range(1, self.depth):
            r = torch.from_numpy(rng.standard_normal((self.width, self.width)))
            r = r / np.sqrt(self.width)
            random.append((r, _uniform_bias(rng, self.width, self.width)))
        trainable = []
        for layer in range(self.depth):
            fan_in = dim if layer == 0 else self.width
            w = torch.from_numpy(rng.standard_normal((self.width, fan_in))) / np.sqrt(fan_in)
            b = _uniform_bias(rng, self.width, fan_in)
            trainable.append((w.requires_grad_(), b.requires_grad_()))
        head = torch.from_numpy(rng.standard_normal(self.width)) / np.sqrt(self.width)
        head.requires_grad_()
        offset = torch.zeros((), dtype=torch.float64, requires_grad=True)
        return random, trainable, head, offset

    def _fit_deep(self, switches, data, task, rng, progress=None) -> DeepSemiRandomModel:
        dim = switches.shape[1]
        random, trainable, head, offset = self._initialize(switches, dim, rng)
        model = DeepSemiRandomModel(self.degree, random, trainable, head, offset)
        params = [t for pair in trainable for t in pair] + [head, offset]
        if task is None:
            batch_size = min(self.batch_size, data.n_samples)
            batches = minibatches(data, batch_size, rng=rng)
        else:
            batches = fresh_batches(task, self.batch_size, rng=rng)

        def loss(x, y):
            return torch.mean((model.forward(x) - y) ** 2)

        report = None if progress is None else (lambda step, _loss: progress(step, self.steps))
        result = train(params, loss, batches, learning_rate=self.learning_rate, steps=self.steps,
                       optimizer=self.optimizer, weight_decay=self.ridge, progress=report,
                       progress_every=max(1, self.steps // 100))
        for t in params:
            t.requires_grad_(False)
        if result.diverged:
            raise DivergenceError(f"SemiRandom (depth {self.depth}) training diverged at step "
                                  f"{result.diverged_at_step} of {self.steps} (learning_rate="
                                  f"{self.learning_rate}); lower learning_rate",
                                  step=result.diverged_at_step)
        model.diagnostics = numeric({"steps": result.steps, "final_loss": result.final_loss,
                                     "recent_loss": result.recent_loss})
        return model
