"""The fully trained two-layer network: online SGD, minibatch SGD/Adam, population gradient descent.

Notation (DESIGN.md): d = ``dim``, N = ``width``, σ = ``activation``; the network is

    f_θ(x) = c + Σ_i a_i σ(w_i·x + b_i),   a_i = s_out·v_i,   w_i = s_in·u_i,

with trained raw parameters θ = (U, v, b, c). The parameterization fixes the scales, the
initialization of the raw parameters and the gradient multipliers (s_w = ``weight_scale``,
s_a = ``head_scale``; the effective initial w_i ~ N(0, s_w² I/d) in every case):

============  =====  ======  ======================  ===============  =======================
name          s_in   s_out   u_i at init             v_i at init      gradient multiplier
============  =====  ======  ======================  ===============  =======================
standard      1      1       N(0, s_w² I/d)          N(0, s_a²/N)     1
ntk           1/√d   1/√N    N(0, s_w² I)            N(0, s_a²)       1
mean_field    1      1/N     N(0, s_w² I/d)          N(0, s_a²)       N on U, v, b; 1 on c
============  =====  ======  ======================  ===============  =======================

The mean-field multiplier is the one in Ghorbani et al.'s code (THEORY §1.7: ∇W × N, with SGD
that is a learning rate N·η; Adam is invariant to gradient multipliers, so with Adam it has no
effect, as in the original). ``head_init="ones"`` sets v_i = s_a instead (with the standard
parameterization, s_a = 1 and ``train="first"`` this is the model of Theorem 3,
ŷ = Σ_i (w_i·x)² + c with the quadratic activation; THEORY §1.5). Biases (``biases=True``) start
at b_i ~ N(0, ``bias_scale``²); the offset c starts at c₀ (``offset_init``: −E f_θ₀ or 0) and is
trained whenever ``offset``.

Laziness (Chizat, Oyallon & Bach 2019, "On lazy training in differentiable programming",
NeurIPS, §1–2): with α = ``laziness`` the trained model is

    f_α(x) = α (f_θ(x) − f_θ₀(x)),   minimizing  L_α(θ) = (1/α²) · mean (y − f_α(x))²,

so that function-space gradient dynamics do not depend on α and, as α → ∞, the parameters move
O(1/α) and f_α follows its linearization α J_θ₀(θ − θ₀) (the neural-tangent model). α = None is
the plain network f_θ. The returned predictor represents f_α exactly as a :class:`TwoLayer`
with 2N units: the N trained units with head α·a, then the N frozen initial units with head −α·a₀,
and offset α(c − c₀), so ``population_risk`` stays exact.

Training (``fit``): a :class:`~lazylab.tasks.Dataset` is fitted by minibatch SGD/Adam (reshuffled
every epoch); a task is fitted by online SGD on fresh samples when ``training="online"``
(samples seen = steps × batch; Ghorbani et al. 2019 §2.3, eq. for R_NN,N(f*; ℓ, ε)), or by
gradient descent on the exact population risk (:func:`lazylab.risk.population_risk`) when
``training="population"`` (n = ∞; float64 on the CPU, the exact engine's precision; for σ = u²
without biases on the quadratic or mixture task by the O(N d²) closed form
:func:`lazylab.risk.quadratic_network_risk`, and, when only the first layer trains under a
constant head with SGD and N > d, in d × d coordinates at O(d³) per step along the same
trajectory: :mod:`lazylab.models._quadratic_descent`).

Convergence (:mod:`lazylab.solvers.convergence`): ``steps`` is a fixed budget (the historical
meaning; with ``tol`` it becomes the budget of a run to tolerance); ``max_steps`` is the budget
of a run to tolerance; neither (the default) runs to tolerance within the solver's default
budget. ``tol`` = None is the solver's default (1e-6 population, 1e-3 sample-based). The
certificate lands in the predictor's diagnostics as numbers (``converged`` 0/1, ``steps``,
``criterion``, ``tolerance``, ``stop_reason`` 0 tolerance / 1 budget / 2 diverged / 3 exhausted,
``halvings``, ``learning_rate`` after the halvings).

Width scaling of the learning rate (``rate_scaling="width"``, SGD): the raw rate is η/m(N) so
that the step on the function, η·K(x, x) with K the tangent kernel at initialization, does not
grow with N. K sums over units: the head part is g·s_out²·Σ_i σ(w_i·x)² ∝ g s_out² N, the
first-layer part g·s_in²·Σ_i a_i² σ′² ‖x‖² ∝ g s_in² s_out² Σ_i v_i². Hence m = N for
"standard" when the head is trained (Σ_i σ² ∝ N) or the head starts at ones with the first
layer trained (Σ_i a_i² = N s_a²), and m = 1 otherwise: "standard" with a Gaussian head trains
its first layer at Σ_i a_i² ≈ s_a²; "ntk" has s_out² N = 1; "mean_field" has g s_out² N = 1 by its
gradient multiplier. Adam normalizes each coordinate's step and is left unscaled.
``rate_scaling="none"`` (the default, so that the studies' rates keep their meaning) uses η as
given. For σ = u² with the head at ones (Theorem 3's model) the width enters through the
initialization instead: the curvature of the output-mean direction is 8 Tr M + 2 with
M = Wᵀdiag(a)W, Tr M₀ = s_w² N, so s_w² ∝ 1/N (e.g. Tr M₀ = Tr B) keeps one η stable at every
width without slowing the weak eigendirections, which η/N would.

Stability: ``offset_init="centered"`` starts the offset at c₀ = −E f_θ₀(x) (exactly, from the
engine's feature means, for a task with moments; the mean over the inputs for a Dataset; 0 for a
task without moments), so the initial output has mean 0 whatever the width. A divergence is
backed off, never returned as NaN: population descent restores its best parameters and halves
η (``solvers.training.population_descent(backtracking=True)``); sample-based training restarts
from the same draws with η/2. At most ``max_halvings`` halvings (0: none), recorded in the
diagnostics; beyond them :class:`DivergenceError` is raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import get_activation
from lazylab.errors import DivergenceError
from lazylab.models._common import draw_biases, draw_weights, numeric
from lazylab.models._network_checkpoints import check_checkpoints
from lazylab.models._network_diagnostics import parameter_diagnostics
from lazylab.models._network_training import (MODES, NetworkState, Parameters, Scales,
                                              TrainingMode, certificate, output_mean)
from lazylab.predictors import TwoLayer
from lazylab.solvers.convergence import criterion_window, resolve_budget
from lazylab.solvers.training import (DTYPES, MAX_HALVINGS, OPTIMIZERS, TrainingResult,
                                      paper_schedule, resolve_device, retry_halving)
from lazylab.tasks import Dataset

__all__ = ["Network", "PARAMETERIZATIONS", "SCHEDULES", "TRAINING_MODES", "Scales",
           "Parameters", "NetworkState"]

PARAMETERIZATIONS: dict[str, Callable[[int, int], Scales]] = {
    "standard": lambda dim, width: Scales(input=1.0, output=1.0, u_std=1.0,
                                          v_std=1 / math.sqrt(width), gradient=1.0),
    "ntk": lambda dim, width: Scales(input=1 / math.sqrt(dim), output=1 / math.sqrt(width),
                                     u_std=math.sqrt(dim), v_std=1.0, gradient=1.0),
    "mean_field": lambda dim, width: Scales(input=1.0, output=1.0 / width, u_std=1.0, v_std=1.0,
                                            gradient=float(width)),
}
"""name → (d, N) → :class:`Scales` (the module docstring table)."""

SCHEDULES = {"constant": lambda steps: None, "paper": paper_schedule}
"""Learning-rate schedules by name: constant, or the drops of Ghorbani et al.'s code."""

TRAINED_LAYERS: dict[str, tuple[str, ...]] = {
    "both": ("u", "v", "b"), "first": ("u", "b"), "second": ("v",)}
"""``train`` → the per-unit raw parameters trained; the offset c is trained whenever present."""

HEAD_INITS: dict[str, Callable[[np.random.Generator, int, float, float], torch.Tensor]] = {
    "gaussian": lambda rng, width, scale, std: scale * std * torch.from_numpy(
        rng.standard_normal(width)),
    "ones": lambda rng, width, scale, std: torch.full((width,), scale, dtype=torch.float64),
    "zeros": lambda rng, width, scale, std: torch.zeros(width, dtype=torch.float64),
}
"""``head_init`` → (rng, N, s_a, v_std) → v at initialization (only "gaussian" draws)."""

RATE_SCALINGS = ("none", "width")
"""Values of ``rate_scaling``: η/m(N) as the parameterization requires (module docstring), or η."""

OFFSET_INITS = ("centered", "zero")
"""Values of ``offset_init``: c₀ = −E f_θ₀(x) (initial output mean 0), or c₀ = 0."""

TRAINING_MODES = ("population", "online")
"""Values of ``training`` (how a task is fitted); a Dataset is always fitted by minibatches."""


@dataclass(frozen=True, kw_only=True)
class Network:
    """A two-layer network trained by SGD/Adam on samples or by gradient descent at n = ∞.

    Args:
        width: N ≥ 1. activation: σ (registry name).
        parameterization: "standard", "ntk" or "mean_field" (module docstring table).
        train: which layers are trained: "both", "first" (W and b) or "second" (the head a).
        biases: include biases b (trained with the first layer). offset: include a trained c.
        training: with a task: "population" (GD on the exact risk) or "online" (fresh samples).
            A Dataset is always fitted by minibatches.
        optimizer: "sgd" or "adam". learning_rate: η > 0. momentum: SGD momentum ≥ 0.
        steps: a fixed budget ≥ 1, or None. max_steps: budget ≥ 1 of a run to tolerance, or
            None (not both; neither: to tolerance within the solver's default budget).
        tol: tolerance > 0 of the convergence criterion, or None (the solver's default).
        criterion_rate: η_c > 0 or None: if η < η_c, check every W·η_c/η steps (criterion_window).
        rate_scaling: "none" (η as given) or "width" (η/m(N), module docstring).
        offset_init: "centered" (c₀ = −E f_θ₀) or "zero".
        max_halvings: ≥ 0 learning-rate halvings allowed on divergence.
        batch_size: ≥ 1 (≤ n for a Dataset).
        schedule: "constant" or "paper" (η/10 over the last 15–7.5 % of steps, η/15 after).
        laziness: α > 0 (Chizat–Oyallon–Bach scaling) or None for the plain network.
        weight_scale, head_scale, bias_scale: s_w, s_a, s_b ≥ 0 (initialization).
        head_init: "gaussian", "ones" (v_i = s_a) or "zeros".
        divergence_threshold: a loss above this multiple of the initial loss is divergence.
        device: "cpu" or "cuda[:k]" (sample-based training). dtype: "float32" or "float64".
        track_every: ≥ 1 steps between checks of the learning monitor (population training,
            σ = u², quadratic target; ``learned_step_k``, models._network_diagnostics) or None.
        checkpoints: increasing steps t ≤ budget at which online training also reports the exact
            risk, ``population_risk_at_<t>``: one run's learning curve (experiments.learning_curve).
    Random stream (``fit``'s rng): W (one ``standard_normal((N, d))``), then b if ``biases``
    (one ``standard_normal(N)``), then v if gaussian (one ``standard_normal(N)``), then the
    training data (online) or the minibatch permutations.
    """

    width: int = 100
    activation: str = "relu"
    parameterization: str = "standard"
    train: str = "both"
    biases: bool = False
    offset: bool = True
    training: str = "population"
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.0
    steps: int | None = None
    max_steps: int | None = None
    tol: float | None = None
    criterion_rate: float | None = None
    rate_scaling: str = "none"
    offset_init: str = "centered"
    max_halvings: int = MAX_HALVINGS
    batch_size: int = 100
    schedule: str = "constant"
    laziness: float | None = None
    weight_scale: float = 1.0
    head_scale: float = 1.0
    bias_scale: float = 1.0
    head_init: str = "gaussian"
    divergence_threshold: float = 1e6
    device: str = "cpu"
    dtype: str = "float64"
    track_every: int | None = None
    checkpoints: tuple[int, ...] = ()

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        get_activation(self.activation)
        for name, allowed in (("parameterization", PARAMETERIZATIONS), ("train", TRAINED_LAYERS),
                              ("training", TRAINING_MODES), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES), ("head_init", HEAD_INITS),
                              ("dtype", DTYPES), ("biases", (True, False)),
                              ("rate_scaling", RATE_SCALINGS), ("offset_init", OFFSET_INITS),
                              ("offset", (True, False))):
            checks.choice(getattr(self, name), name, tuple(allowed))
        for name in ("learning_rate", "divergence_threshold"):
            checks.positive_float(getattr(self, name), name)
        checks.positive_int(self.batch_size, "batch_size")
        checks.nonnegative_int(self.max_halvings, "max_halvings")
        for name in ("steps", "max_steps", "track_every"):
            checks.optional(checks.positive_int, getattr(self, name), name)
        for name in ("tol", "criterion_rate"):
            checks.optional(checks.positive_float, getattr(self, name), name,
                            alternative=" or None")
        resolve_budget(self.steps, self.max_steps, self.tol)
        for name in ("momentum", "weight_scale", "head_scale", "bias_scale"):
            checks.nonnegative_float(getattr(self, name), name)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer='sgd' only, got optimizer="
                             f"{self.optimizer!r} with momentum={self.momentum!r}")
        checks.optional(checks.positive_float, self.laziness, "laziness", alternative=" or None")
        checks.device(self.device)
        object.__setattr__(self, "checkpoints", check_checkpoints(self))

    # ------------------------------------------------------------------ parameters

    def initialize(self, dim: int, *, rng: np.random.Generator, device="cpu",
                   dtype=torch.float64) -> NetworkState:
        """Raw initial parameters (U, v, b, c) and their scales, on ``device`` in ``dtype``."""
        scales = PARAMETERIZATIONS[self.parameterization](dim, self.width)
        u = self.weight_scale * scales.u_std * draw_weights(checks.generator(rng), self.width, dim)
        b = draw_biases(rng, self.width, self.bias_scale) if self.biases else None
        v = HEAD_INITS[self.head_init](rng, self.width, self.head_scale, scales.v_std)
        c = torch.zeros((), dtype=torch.float64) if self.offset else None
        raw = Parameters(u, v, b, c).map(lambda t: t.to(device=device, dtype=dtype))
        return NetworkState(raw, scales)

    def _groups(self, state: NetworkState) -> list[dict]:
        """Optimizer groups: the trained per-unit tensors (gradient multiplier), then c (1)."""
        units = [getattr(state.raw, name) for name in TRAINED_LAYERS[self.train]]
        units = [t.requires_grad_(True) for t in units if t is not None]
        groups = [{"params": units, "gradient_scale": state.scales.gradient}] if units else []
        if state.raw.c is not None:
            groups.append({"params": [state.raw.c.requires_grad_(True)], "gradient_scale": 1.0})
        return groups

    @staticmethod
    def _effective(raw: Parameters, scales: Scales) -> tuple:
        """(w, a, b, c) = (s_in U, s_out v, b, c); no copy of U when s_in = 1."""
        def scaled(factor, tensor):
            return tensor if factor == 1.0 else factor * tensor

        return scaled(scales.input, raw.u), scaled(scales.output, raw.v), raw.b, raw.c

    def _loss_scale(self, *, inverse: bool = False) -> float:
        """1/α² (the lazy loss L_α; α² if ``inverse``), 1 for the plain network."""
        if self.laziness is None:
            return 1.0
        return self.laziness ** 2 if inverse else 1.0 / self.laziness ** 2

    def _predictor(self, state: NetworkState) -> TwoLayer:
        """f_θ, or f_α as 2N units (module docstring); keeps the autograd graph."""
        w, a, b, c = self._effective(state.raw, state.scales)
        c = torch.zeros((), dtype=w.dtype, device=w.device) if c is None else c
        alpha = self.laziness
        if alpha is None:
            return TwoLayer(self.activation, w, a, biases=b, offset=c)
        w0, a0, b0, c0 = self._effective(state.initial, state.scales)
        c0 = torch.zeros_like(c) if c0 is None else c0
        return TwoLayer(self.activation, torch.cat([w, w0]), alpha * torch.cat([a, -a0]),
                        biases=None if b is None else torch.cat([b, b0]), offset=alpha * (c - c0))

    def _loss_fn(self, state: NetworkState):
        scale = self._loss_scale()

        def loss(x, y):
            residual = y - self._predictor(state).predict(x)
            return scale * torch.mean(residual * residual)

        return loss

    # ------------------------------------------------------------------ fit

    def fit(self, data_or_task, *, rng: np.random.Generator,
            progress: Callable[[int, int | None], None] | None = None) -> TwoLayer:
        """Train and return the fitted :class:`TwoLayer` (float64, CPU).

        Args:
            data_or_task: a Dataset (minibatch training) or a task (``training`` decides).
            rng: numpy Generator for the initialization and the data/permutation stream.
            progress: optional ``progress(step, total)`` called about 100 times per run.
        Diagnostics: the certificate (``converged``, ``steps``, ``criterion``, ``tolerance``,
        ``stop_reason``, ``halvings``, ``learning_rate``; module docstring), ``final_train_loss``
        (population risk at the final parameters
        for n = ∞; full training-set loss for a Dataset; mean of the last ≤ 100 batch losses
        online; all on the scale of the returned predictor), ``initial_train_loss``,
        ``population_risk`` (n = ∞ only), ``samples_seen`` (sample-based training),
        ``weight_change``, ``head_change``, ``kernel_change``, ``kernel_change_population``,
        ``alignment``, ``alignment_initial``, ``learned_step_k`` (models._network_diagnostics).
        Raises:
            DivergenceError: the loss became non-finite or exceeded the divergence threshold
                after ``max_halvings`` halvings of the learning rate.
            ValueError: bad input (batch_size > n, population training on a task without
                moments or not in float64 on the CPU, CUDA unavailable).
        """
        checks.generator(rng)
        mode = MODES["minibatch" if isinstance(data_or_task, Dataset) else self.training]
        mode.check(self, data_or_task)
        start = rng.bit_generator.state

        def attempt(rate: float) -> tuple[NetworkState, TrainingResult]:
            rng.bit_generator.state = start  # a retry redraws the same initialization and data
            state = self._start(data_or_task, rng)
            return state, mode.run(self, state, self._groups(state), data_or_task, rng,
                                   self._options(rate, progress))

        if mode is MODES["population"]:  # population descent backtracks within the run
            state, result = attempt(self.learning_rate)
        else:
            state, result = retry_halving(attempt, self.learning_rate, self.max_halvings)
        if result.diverged:
            raise DivergenceError(
                f"Network training diverged at step {result.diverged_at_step} of {self.budget} "
                f"(optimizer={self.optimizer}, learning_rate="
                f"{self.learning_rate / 2 ** result.halvings}, after {result.halvings} halvings): "
                f"the loss became non-finite or exceeded {self.divergence_threshold:g} × the "
                f"initial loss {result.initial_loss:.4g}", step=result.diverged_at_step)
        return self._finish(state, result, mode, data_or_task)

    @property
    def budget(self) -> int:
        """The step budget: ``steps``, else ``max_steps``, else the solver's default."""
        return resolve_budget(self.steps, self.max_steps, self.tol)[0]

    def _rate_multiplicity(self) -> float:
        """m(N) of the module docstring: the raw SGD rate is η/m."""
        if (self.rate_scaling == "none" or self.optimizer != "sgd"
                or self.parameterization != "standard"):
            return 1.0
        layers = TRAINED_LAYERS[self.train]
        grows = "v" in layers or ("u" in layers and self.head_init == "ones")
        return float(self.width) if grows else 1.0

    def _options(self, rate: float, progress) -> dict:
        """Keyword arguments of the trainers at user-facing rate ``rate``."""
        budget = self.budget
        return dict(learning_rate=rate / self._rate_multiplicity(), steps=self.steps,
                    max_steps=self.max_steps, tol=self.tol, optimizer=self.optimizer,
                    window=criterion_window(rate, self.criterion_rate),
                    momentum=self.momentum, schedule=SCHEDULES[self.schedule](budget),
                    divergence_threshold=self.divergence_threshold,
                    max_halvings=self.max_halvings,
                    progress=None if progress is None else (lambda s, _: progress(s, budget)),
                    progress_every=max(1, budget // 100))

    def _start(self, source, rng: np.random.Generator) -> NetworkState:
        """Initial state (offset centered when asked) with its detached initial copy."""
        device, dtype = resolve_device(self.device), DTYPES[self.dtype]
        state = self.initialize(source.dim, rng=rng, device=device, dtype=dtype)
        if state.raw.c is not None and self.offset_init == "centered":
            w, a, b, _ = self._effective(state.raw, state.scales)
            mean = output_mean(TwoLayer(self.activation, w, a, biases=b), source)
            if mean is not None:
                state.raw.c.fill_(-mean)
        return NetworkState(state.raw, state.scales, state.raw.map(torch.clone))

    def _finish(self, state: NetworkState, result: TrainingResult, mode: TrainingMode,
                data_or_task) -> TwoLayer:
        with torch.no_grad():
            model = self._predictor(state)
            model = TwoLayer(model.activation, _detached(model.weights), _detached(model.head),
                             biases=_detached(model.biases), offset=_detached(model.offset))
            rate = self.learning_rate / 2 ** result.halvings
            ends = [self._effective(p, state.scales) for p in (state.raw, state.initial)]
            diagnostics = {**certificate(result, rate),
                           "initial_train_loss":
                               self._loss_scale(inverse=True) * result.initial_loss,
                           **parameter_diagnostics(
                               get_activation(self.activation), *ends, data_or_task,
                               scales=state.scales, layers=TRAINED_LAYERS[self.train]),
                           **mode.report(self, model, result, data_or_task)}
        if not all(torch.isfinite(t).all() for t in (model.weights, model.head)):
            raise DivergenceError("Network training produced non-finite parameters",
                                  step=result.steps)
        model.diagnostics = numeric(diagnostics)
        return model


def _detached(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A float64 CPU copy without the autograd graph."""
    return None if tensor is None else tensor.detach().cpu().double()
