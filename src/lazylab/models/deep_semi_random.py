"""Deep semi-random networks (Xie, Liang & Song 2017, their ``semi_random.py``; THEORY §3.2 [C]).

Notation: σ_s(z) = z^s 1[z > 0], s = ``degree`` ∈ {0, 1}; N = ``width`` units per layer, L =
``depth`` ≥ 2 layers. With z⁰ = h⁰ = x,

    z^l = σ_s(R^l z^{l−1} + c^l)  (random, fixed),   h^l = z^l ⊙ (W^l h^{l−1} + b^l)  (trained),

and the output f(x) = w^{L+1}·h^L + b^{L+1} (trained). Initialization as in the authors' code:
weights N(0, 1/fan-in), biases U[−std/2, std/2] with std = 1/√fan-in, for both paths; the output
layer N(0, 1/N) with zero bias. R¹ is drawn exactly as the switching weights of the depth-1
:class:`lazylab.models.SemiRandom` (one ``rng.standard_normal((N, d))``, scaled 1/√d), so the
first random layer is the same draw from the same generator state.

Training: :func:`lazylab.solvers.training.train` (SGD or Adam, ``weight_decay`` being the
optimizer's decay) on reshuffled minibatches of the samples, or, given a task, on fresh samples each step
(online; steps × batch_size samples). There is no exact n = ∞ fit: a task is fitted by sampling.

Convergence (:mod:`lazylab.solvers.convergence`), as for :class:`lazylab.models.Network`:
``steps`` is a fixed budget (with ``tol``, the budget of a run to tolerance), ``max_steps`` the
budget of a run to tolerance, neither a run to tolerance within the solver's default budget;
``tol`` = None is the solver's sample default (1e-3). On samples the criterion is the
full-batch training loss (its relative change over 3 checks, or L / Var y: interpolation); on a
task, the window of minibatch losses. A diverging run restarts from the same draws at η/2
(:func:`lazylab.solvers.training.retry_halving`), at most ``max_halvings`` times, recorded as
``halvings``; beyond them :class:`DivergenceError` is raised. ``schedule="plateau"`` multiplies
the rate by 1/2 whenever the full-batch loss makes no new low at a check, at most 8 times
(:class:`lazylab.solvers.convergence.PlateauDecay`): constant-rate Adam on minibatches jitters at
a noise floor the criterion never certifies; the certificate itself is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.errors import DivergenceError
from lazylab.models._common import draw_weights, numeric, resolve_input
from lazylab.models._network_training import certificate
from lazylab.solvers.convergence import criterion_window, resolve_budget
from lazylab.solvers.loop import MAX_HALVINGS
from lazylab.solvers.training import (OPTIMIZERS, SCHEDULES, fresh_batches, minibatches,
                                      retry_halving, train)

__all__ = ["DeepSemiRandom", "DeepSemiRandomModel"]

_GATE = {0: get_activation("step"), 1: get_activation("relu")}
"""degree s → the switching unit σ_s."""


@dataclass(eq=False)
class DeepSemiRandomModel:
    """The trained deep semi-random network (module docstring); ``predict(x (n, d)) -> (n,)``.

    Attributes: degree s; random [(R^l (N, fan-in), c^l (N,))] per layer; trainable
    [(W^l (N, fan-in), b^l (N,))] per layer; head w^{L+1} (N,), offset b^{L+1}; diagnostics.
    """

    degree: int
    random: list
    trainable: list
    head: torch.Tensor
    offset: torch.Tensor
    diagnostics: dict = field(default_factory=dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) with the autograd graph, x (n, d) → (n,)."""
        gate = _GATE[self.degree].function
        z = h = x
        for (r, c), (w, b) in zip(self.random, self.trainable):
            z = gate(z @ r.T + c)
            h = z * (h @ w.T + b)
        return h @ self.head + self.offset

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) without gradients, x (n, d) → (n,)."""
        with torch.no_grad():
            return self.forward(torch.as_tensor(x, dtype=self.head.dtype))


def _uniform_bias(rng: np.random.Generator, width: int, fan_in: int) -> torch.Tensor:
    """U[−std/2, std/2]^width with std = 1/√fan-in: one ``rng.uniform`` call."""
    std = 1.0 / np.sqrt(fan_in)
    return torch.from_numpy(rng.uniform(-0.5 * std, 0.5 * std, width))


@dataclass(frozen=True, kw_only=True)
class DeepSemiRandom:
    """A deep semi-random network of degree s ∈ {0, 1} and depth L ≥ 2, trained by SGD/Adam.

    Args:
        width: N ≥ 1 units per layer. degree: s ∈ {0, 1}. depth: L ≥ 2.
        weight_decay: ≥ 0, the optimizer's weight decay on every trained tensor.
        optimizer: "sgd" or "adam". learning_rate: η > 0. batch_size: ≥ 1 (capped at n for
            samples).
        steps: a fixed budget ≥ 1, or None. max_steps: budget ≥ 1 of a run to tolerance, or
            None (not both; neither: to tolerance within the solver's default budget).
        tol: tolerance > 0 of the criterion, or None (the solver's default).
        max_halvings: ≥ 0 restarts at half the learning rate after a divergence.
        schedule: "constant" or "plateau" (halve the rate when the full-batch loss makes no
            new low, at most 8 times; diagnostics ``rate_decays``).
        criterion_rate: η_c > 0 or None: if η < η_c, the criterion checks every W·η_c/η steps
            (:func:`lazylab.solvers.convergence.criterion_window`).
    Random stream (``fit``'s rng): R¹ (one ``standard_normal((N, d))``), c¹, then (R^l, c^l) for
    l ≥ 2, the trainable (W^l, b^l) per layer, the head, then the minibatches or fresh samples.
    """

    width: int = 100
    degree: int = 0
    depth: int = 2
    weight_decay: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    steps: int | None = None
    max_steps: int | None = None
    tol: float | None = None
    max_halvings: int = MAX_HALVINGS
    batch_size: int = 100
    schedule: str = "constant"
    criterion_rate: float | None = None

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        if isinstance(self.degree, bool) or self.degree not in (0, 1):
            raise ValueError("degree must be 0 (linear semi-random) or 1 (squared), got "
                             f"{self.degree!r}")
        checks.integer(self.depth, "depth", minimum=2)
        checks.nonnegative_float(self.weight_decay, "weight_decay")
        checks.choice(self.optimizer, "optimizer", OPTIMIZERS)
        checks.positive_float(self.learning_rate, "learning_rate")
        for name in ("steps", "max_steps"):
            checks.optional(checks.positive_int, getattr(self, name), name)
        for name in ("tol", "criterion_rate"):
            checks.optional(checks.positive_float, getattr(self, name), name,
                            alternative=" or None")
        resolve_budget(self.steps, self.max_steps, self.tol)
        checks.nonnegative_int(self.max_halvings, "max_halvings")
        checks.positive_int(self.batch_size, "batch_size")
        checks.choice(self.schedule, "schedule", SCHEDULES)

    @property
    def budget(self) -> int:
        """The step budget: ``steps``, else ``max_steps``, else the solver's default."""
        return resolve_budget(self.steps, self.max_steps, self.tol)[0]

    def initialize(self, dim: int, *, rng: np.random.Generator) -> DeepSemiRandomModel:
        """The untrained network (trainable tensors require gradients), drawn from ``rng``."""
        random = [(draw_weights(rng, self.width, dim), _uniform_bias(rng, self.width, dim))]
        for _ in range(1, self.depth):
            r = torch.from_numpy(rng.standard_normal((self.width, self.width)))
            random.append((r / np.sqrt(self.width), _uniform_bias(rng, self.width, self.width)))
        trainable = []
        for layer in range(self.depth):
            fan_in = dim if layer == 0 else self.width
            w = torch.from_numpy(rng.standard_normal((self.width, fan_in))) / np.sqrt(fan_in)
            b = _uniform_bias(rng, self.width, fan_in)
            trainable.append((w.requires_grad_(), b.requires_grad_()))
        head = torch.from_numpy(rng.standard_normal(self.width)) / np.sqrt(self.width)
        offset = torch.zeros((), dtype=torch.float64, requires_grad=True)
        return DeepSemiRandomModel(self.degree, random, trainable, head.requires_grad_(), offset)

    def fit(self, data_or_task, *, rng: np.random.Generator,
            progress=None) -> DeepSemiRandomModel:
        """Train on samples (minibatches) or on a task (fresh samples every step), to tolerance.

        ``progress(step, budget)`` is called about 100 times per attempt. Diagnostics:
        ``final_loss`` (last batch loss), ``recent_loss`` (mean of the last ≤ 100 batch losses)
        and the convergence certificate (``converged`` 0/1, ``steps``, ``criterion`` (absent
        while ∞), ``tolerance``, ``stop_reason`` coded as in
        :data:`lazylab.models._network_training.STOP_REASON_CODES`, ``halvings``,
        ``learning_rate`` after the halvings, ``rate_decays`` by the plateau schedule).
        Raises:
            DivergenceError: every attempt diverged (after ``max_halvings`` halvings).
        """
        data, task = resolve_input(data_or_task)
        start = checks.generator(rng).bit_generator.state

        def attempt(rate: float):
            rng.bit_generator.state = start  # a retry redraws the same initialization and data
            return self._train(data, task, rate, rng, progress)

        model, result = retry_halving(attempt, self.learning_rate, self.max_halvings)
        if result.diverged:
            raise DivergenceError(f"DeepSemiRandom (depth {self.depth}) training diverged at "
                                  f"step {result.diverged_at_step} of {self.budget} after "
                                  f"{result.halvings} halvings (learning_rate="
                                  f"{result.learning_rate:g}); lower learning_rate",
                                  step=result.diverged_at_step)
        model.diagnostics = numeric({**certificate(result, result.learning_rate),
                                     "final_loss": result.final_loss,
                                     "recent_loss": result.recent_loss,
                                     "rate_decays": result.decays})
        return model

    def _train(self, data, task, rate: float, rng: np.random.Generator, progress):
        """One attempt at rate ``rate``: (the model, its TrainingResult)."""
        model = self.initialize(data.dim if task is None else task.dim, rng=rng)
        params = [t for pair in model.trainable for t in pair] + [model.head, model.offset]
        batches = (minibatches(data, min(self.batch_size, data.n_samples), rng=rng)
                   if task is None else fresh_batches(task, self.batch_size, rng=rng))

        def loss(x, y):
            return torch.mean((model.forward(x) - y) ** 2)

        budget = self.budget
        report = None if progress is None else (lambda step, _loss: progress(step, budget))
        result = train(params, loss, batches, learning_rate=rate, steps=self.steps,
                       max_steps=self.max_steps, tol=self.tol, optimizer=self.optimizer,
                       weight_decay=self.weight_decay, schedule=self.schedule, progress=report,
                       window=criterion_window(rate, self.criterion_rate),
                       progress_every=max(1, budget // 100))
        for t in params:
            t.requires_grad_(False)
        return model, result
