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
at b_i ~ N(0, ``bias_scale``²); the offset c starts at 0 and is trained whenever ``offset``.

Laziness (Chizat, Oyallon & Bach 2019, "On lazy training in differentiable programming",
NeurIPS, §1–2): with α = ``laziness`` the trained model is

    f_α(x) = α (f_θ(x) − f_θ₀(x)),   minimizing  L_α(θ) = (1/α²) · mean (y − f_α(x))²,

so that function-space gradient dynamics do not depend on α and, as α → ∞, the parameters move
O(1/α) and f_α follows its linearization α J_θ₀(θ − θ₀) (the neural-tangent model). α = None is
the plain network f_θ. The returned predictor represents f_α exactly as a :class:`TwoLayer`
with 2N units: the N trained units with head α·a, then the N frozen initial units with head −α·a₀,
and offset α(c − c₀) (c₀ = 0), so ``population_risk`` stays exact.

Training (``fit``): a :class:`~lazylab.tasks.Dataset` is fitted by minibatch SGD/Adam (reshuffled
every epoch); a task is fitted by online SGD on fresh samples when ``training="online"``
(samples seen = steps × batch; Ghorbani et al. 2019 §2.3, eq. for R_NN,N(f*; ℓ, ε)), or by
gradient descent on the exact population risk (:func:`lazylab.risk.population_risk`) when
``training="population"`` (n = ∞; float64 on the CPU, the exact engine's precision).
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
from lazylab.models._network_training import MODES, TrainingMode
from lazylab.predictors import TwoLayer
from lazylab.solvers.training import (DTYPES, OPTIMIZERS, TrainingResult, paper_schedule,
                                      resolve_device)
from lazylab.tasks import Dataset

__all__ = ["Network", "PARAMETERIZATIONS", "SCHEDULES", "TRAINING_MODES", "Scales",
           "Parameters", "NetworkState"]


@dataclass(frozen=True)
class Scales:
    """One row of the module table at (d, N): s_in = ``input``, s_out = ``output``; u_i starts
    at s_w·``u_std``·N(0, I/d), v_i at s_a·``v_std``·N(0, 1); ``gradient`` multiplies the
    gradients of U, v and b (not c)."""

    input: float
    output: float
    u_std: float
    v_std: float
    gradient: float


@dataclass(frozen=True)
class Parameters:
    """Raw parameters θ: U (N, d), v (N,), b (N,) or None, c (scalar) or None."""

    u: torch.Tensor
    v: torch.Tensor
    b: torch.Tensor | None
    c: torch.Tensor | None

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Parameters:
        """The record with ``function`` applied to every present tensor."""
        return Parameters(*(None if t is None else function(t)
                            for t in (self.u, self.v, self.b, self.c)))


@dataclass(frozen=True)
class NetworkState:
    """The raw parameters (trained in place), their scales and the initial parameters (a
    detached copy, set once training starts). ``state["raw"]`` reads a field by name."""

    raw: Parameters
    scales: Scales
    initial: Parameters | None = None

    def __getitem__(self, name: str):
        return getattr(self, name)


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
        steps: optimizer steps ≥ 1. batch_size: ≥ 1 (≤ n for a Dataset).
        schedule: "constant" or "paper" (η/10 over the last 15–7.5 % of steps, η/15 after).
        laziness: α > 0 (Chizat–Oyallon–Bach scaling) or None for the plain network.
        weight_scale, head_scale, bias_scale: s_w, s_a, s_b ≥ 0 (initialization).
        head_init: "gaussian", "ones" (v_i = s_a) or "zeros".
        divergence_threshold: a loss above this multiple of the initial loss is divergence.
        device: "cpu" or "cuda[:k]" (sample-based training). dtype: "float32" or "float64".
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
    steps: int = 1000
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

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        get_activation(self.activation)
        for name, allowed in (("parameterization", PARAMETERIZATIONS), ("train", TRAINED_LAYERS),
                              ("training", TRAINING_MODES), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES), ("head_init", HEAD_INITS),
                              ("dtype", DTYPES), ("biases", (True, False)),
                              ("offset", (True, False))):
            checks.choice(getattr(self, name), name, tuple(allowed))
        for name in ("learning_rate", "divergence_threshold"):
            checks.positive_float(getattr(self, name), name)
        for name in ("steps", "batch_size"):
            checks.positive_int(getattr(self, name), name)
        for name in ("momentum", "weight_scale", "head_scale", "bias_scale"):
            checks.nonnegative_float(getattr(self, name), name)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer='sgd' only, got optimizer="
                             f"{self.optimizer!r} with momentum={self.momentum!r}")
        checks.optional(checks.positive_float, self.laziness, "laziness", alternative=" or None")
        try:
            kind = torch.device(self.device).type
        except (RuntimeError, TypeError):
            kind = None
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:index]', got {self.device!r}")

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
        Diagnostics: ``steps``, ``final_train_loss`` (population risk at the final parameters
        for n = ∞; full training-set loss for a Dataset; mean of the last ≤ 100 batch losses
        online; all on the scale of the returned predictor), ``initial_train_loss``,
        ``population_risk`` (n = ∞ only), ``samples_seen`` (sample-based training),
        ``weight_change`` ‖W − W₀‖_F/‖W₀‖_F, ``head_change`` ‖a − a₀‖/‖a₀‖ (a₀ ≠ 0).
        Raises:
            DivergenceError: the loss became non-finite or exceeded the divergence threshold.
            ValueError: bad input (batch_size > n, population training on a task without
                moments or not in float64 on the CPU, CUDA unavailable).
        """
        checks.generator(rng)
        mode = MODES["minibatch" if isinstance(data_or_task, Dataset) else self.training]
        mode.check(self, data_or_task)
        device, dtype = resolve_device(self.device), DTYPES[self.dtype]
        state = self.initialize(data_or_task.dim, rng=rng, device=device, dtype=dtype)
        state = NetworkState(state.raw, state.scales, state.raw.map(torch.clone))
        groups = self._groups(state)
        options = dict(learning_rate=self.learning_rate, steps=self.steps,
                       optimizer=self.optimizer, momentum=self.momentum,
                       schedule=SCHEDULES[self.schedule](self.steps),
                       divergence_threshold=self.divergence_threshold,
                       progress=None if progress is None else (lambda s, _: progress(s, self.steps)),
                       progress_every=max(1, self.steps // 100))
        result = mode.run(self, state, groups, data_or_task, rng, options)
        if result.diverged:
            raise DivergenceError(
                f"Network training diverged at step {result.diverged_at_step} of {self.steps} "
                f"(optimizer={self.optimizer}, learning_rate={self.learning_rate}): the loss "
                f"became non-finite or exceeded {self.divergence_threshold:g} × the initial loss "
                f"{result.initial_loss:.4g}", step=result.diverged_at_step)
        return self._finish(state, result, mode, data_or_task)

    def _finish(self, state: NetworkState, result: TrainingResult, mode: TrainingMode,
                data_or_task) -> TwoLayer:
        with torch.no_grad():
            model = self._predictor(state)
            model = TwoLayer(model.activation, _detached(model.weights), _detached(model.head),
                             biases=_detached(model.biases), offset=_detached(model.offset))
            diagnostics = {"steps": result.steps,
                           "initial_train_loss":
                               self._loss_scale(inverse=True) * result.initial_loss,
                           **self._changes(state),
                           **mode.report(self, model, result, data_or_task)}
        if not all(torch.isfinite(t).all() for t in (model.weights, model.head)):
            raise DivergenceError("Network training produced non-finite parameters",
                                  step=result.steps)
        model.diagnostics = numeric(diagnostics)
        return model

    def _changes(self, state: NetworkState) -> dict[str, float]:
        w, a, _, _ = self._effective(state.raw, state.scales)
        w0, a0, _, _ = self._effective(state.initial, state.scales)
        out = {"weight_change": float(torch.linalg.norm(w - w0) / torch.linalg.norm(w0))}
        if float(torch.linalg.norm(a0)) > 0:
            out["head_change"] = float(torch.linalg.norm(a - a0) / torch.linalg.norm(a0))
        return out


def _detached(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A float64 CPU copy without the autograd graph."""
    return None if tensor is None else tensor.detach().cpu().double()
