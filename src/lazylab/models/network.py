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
from typing import Any, Callable

import numpy as np
import torch

from lazylab.errors import DivergenceError
from lazylab.models._common import (check_activation, check_choice, check_nonnegative,
                                    check_rng, check_width, draw_biases, draw_weights, numeric,
                                    resolve_input)
from lazylab.predictors import TwoLayer
from lazylab.risk import population_risk
from lazylab.solvers.training import (DTYPES, OPTIMIZERS, fresh_batches, minibatches,
                                      paper_schedule, population_descent, resolve_device, train)
from lazylab.tasks import Dataset

__all__ = ["Network", "PARAMETERIZATIONS", "SCHEDULES"]


def _standard(dim: int, width: int) -> dict[str, float]:
    return {"input": 1.0, "output": 1.0, "u_std": 1.0, "v_std": 1 / math.sqrt(width),
            "gradient": 1.0}


def _ntk(dim: int, width: int) -> dict[str, float]:
    return {"input": 1 / math.sqrt(dim), "output": 1 / math.sqrt(width), "u_std": math.sqrt(dim),
            "v_std": 1.0, "gradient": 1.0}


def _mean_field(dim: int, width: int) -> dict[str, float]:
    return {"input": 1.0, "output": 1.0 / width, "u_std": 1.0, "v_std": 1.0,
            "gradient": float(width)}


PARAMETERIZATIONS: dict[str, Callable[[int, int], dict[str, float]]] = {
    "standard": _standard, "ntk": _ntk, "mean_field": _mean_field}
"""name → (d, N) → scales: input s_in, output s_out, init std factors of u (times s_w/√d) and
v (times s_a), and the gradient multiplier of the per-unit parameters."""

SCHEDULES = {"constant": lambda steps: None, "paper": paper_schedule}
"""Learning-rate schedules by name: constant, or the drops of Ghorbani et al.'s code."""

TRAINED_LAYERS = ("both", "first", "second")
TRAINING_MODES = ("population", "online")
HEAD_INITS = ("gaussian", "ones", "zeros")
_EVAL_ROWS = 8192
_BLOCK_ROWS = 10_000


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
        check_width(self.width)
        check_activation(self.activation)
        check_choice(self.parameterization, "parameterization", tuple(PARAMETERIZATIONS))
        check_choice(self.train, "train", TRAINED_LAYERS)
        check_choice(self.biases, "biases", (True, False))
        check_choice(self.offset, "offset", (True, False))
        check_choice(self.training, "training", TRAINING_MODES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.schedule, "schedule", tuple(SCHEDULES))
        check_choice(self.head_init, "head_init", HEAD_INITS)
        check_choice(self.dtype, "dtype", tuple(DTYPES))
        for name in ("learning_rate", "divergence_threshold"):
            _check_positive(getattr(self, name), name)
        check_width(self.steps, "steps")
        check_width(self.batch_size, "batch_size")
        for name in ("momentum", "weight_scale", "head_scale", "bias_scale"):
            check_nonnegative(getattr(self, name), name)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer='sgd' only, got optimizer="
                             f"{self.optimizer!r} with momentum={self.momentum!r}")
        if self.laziness is not None:
            _check_positive(self.laziness, "laziness", " or None")
        try:
            kind = torch.device(self.device).type
        except (RuntimeError, TypeError):
            kind = None
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:index]', got {self.device!r}")

    # ------------------------------------------------------------------ parameters

    def initialize(self, dim: int, *, rng: np.random.Generator, device="cpu",
                   dtype=torch.float64) -> dict[str, Any]:
        """Raw initial parameters (U, v, b, c) and the scales, on ``device`` in ``dtype``."""
        scales = PARAMETERIZATIONS[self.parameterization](dim, self.width)
        u = self.weight_scale * scales["u_std"] * draw_weights(check_rng(rng), self.width, dim)
        b = draw_biases(rng, self.width, self.bias_scale) if self.biases else None
        if self.head_init == "gaussian":
            v = self.head_scale * scales["v_std"] * torch.from_numpy(rng.standard_normal(self.width))
        else:
            v = torch.full((self.width,), self.head_scale if self.head_init == "ones" else 0.0,
                           dtype=torch.float64)
        c = torch.zeros((), dtype=torch.float64) if self.offset else None
        raw = {"u": u, "v": v, "b": b, "c": c}
        raw = {k: None if t is None else t.to(device=device, dtype=dtype) for k, t in raw.items()}
        return {"raw": raw, "scales": scales}

    def _trained(self) -> tuple[str, ...]:
        layers = {"both": ("u", "v", "b"), "first": ("u", "b"), "second": ("v",)}[self.train]
        return layers + ("c",)

    def _groups(self, raw: dict, scales: dict) -> list[dict]:
        trained = [k for k in self._trained() if raw[k] is not None]
        for key in trained:
            raw[key].requires_grad_(True)
        units = [raw[k] for k in trained if k != "c"]
        groups = [{"params": units, "gradient_scale": scales["gradient"]}] if units else []
        if "c" in trained:
            groups.append({"params": [raw["c"]], "gradient_scale": 1.0})
        return groups

    @staticmethod
    def _effective(raw: dict, scales: dict) -> tuple:
        def scaled(factor, tensor):  # no copy of the (N, d) weights when the factor is 1
            return tensor if factor == 1.0 else factor * tensor

        return (scaled(scales["input"], raw["u"]), scaled(scales["output"], raw["v"]), raw["b"],
                raw["c"])

    def _predictor(self, state: dict) -> TwoLayer:
        """f_θ, or f_α as 2N units (module docstring); keeps the autograd graph."""
        w, a, b, c = self._effective(state["raw"], state["scales"])
        c = torch.zeros((), dtype=w.dtype, device=w.device) if c is None else c
        alpha = self.laziness
        if alpha is None:
            return TwoLayer(self.activation, w, a, biases=b, offset=c)
        w0, a0, b0, c0 = self._effective(state["initial"], state["scales"])
        c0 = torch.zeros_like(c) if c0 is None else c0
        return TwoLayer(self.activation, torch.cat([w, w0]), alpha * torch.cat([a, -a0]),
                        biases=None if b is None else torch.cat([b, b0]), offset=alpha * (c - c0))

    def _loss_fn(self, state: dict):
        scale = 1.0 if self.laziness is None else 1.0 / self.laziness ** 2

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
        check_rng(rng)
        mode = "minibatch" if isinstance(data_or_task, Dataset) else self.training
        if mode == "population":
            data, task = resolve_input(data_or_task)
            if self.dtype != "float64" or torch.device(self.device).type != "cpu":
                raise ValueError("training='population' runs on the exact engine (float64, CPU); "
                                 f"got dtype={self.dtype!r}, device={self.device!r}")
        elif mode == "minibatch" and self.batch_size > data_or_task.n_samples:
            raise ValueError(f"batch_size={self.batch_size} exceeds the number of training "
                             f"samples n={data_or_task.n_samples}")
        elif mode == "online" and not hasattr(data_or_task, "sample"):
            raise TypeError("training='online' needs a task with sample(n, rng=...), got "
                            f"{type(data_or_task).__name__}")
        device, dtype = resolve_device(self.device), DTYPES[self.dtype]
        state = self.initialize(data_or_task.dim, rng=rng, device=device, dtype=dtype)
        state["initial"] = {k: None if t is None else t.clone() for k, t in state["raw"].items()}
        groups = self._groups(state["raw"], state["scales"])
        options = dict(learning_rate=self.learning_rate, steps=self.steps,
                       optimizer=self.optimizer, momentum=self.momentum,
                       schedule=SCHEDULES[self.schedule](self.steps),
                       divergence_threshold=self.divergence_threshold,
                       progress=None if progress is None else (lambda s, _: progress(s, self.steps)),
                       progress_every=max(1, self.steps // 100))
        if mode == "population":
            scale = 1.0 if self.laziness is None else 1.0 / self.laziness ** 2
            result = population_descent(
                groups, lambda: scale * population_risk(self._predictor(state), data_or_task),
                **options)
        else:
            block = min(_BLOCK_ROWS, self.steps * self.batch_size)
            source = (fresh_batches(data_or_task, self.batch_size, rng=rng, device=device,
                                    dtype=dtype, block_size=block) if mode == "online" else
                      minibatches(data_or_task, self.batch_size, rng=rng, device=device,
                                  dtype=dtype))
            result = train(groups, self._loss_fn(state), source, **options)
        if result.diverged:
            raise DivergenceError(
                f"Network training diverged at step {result.diverged_at_step} of {self.steps} "
                f"(optimizer={self.optimizer}, learning_rate={self.learning_rate}): the loss "
                f"became non-finite or exceeded {self.divergence_threshold:g} × the initial loss "
                f"{result.initial_loss:.4g}", step=result.diverged_at_step)
        return self._finish(state, result, mode, data_or_task)

    def _finish(self, state, result, mode: str, data_or_task) -> TwoLayer:
        with torch.no_grad():
            model = self._predictor(state)
            model = TwoLayer(model.activation, *(None if t is None else t.detach().cpu().double()
                                                 for t in (model.weights, model.head)),
                             biases=None if model.biases is None else
                             model.biases.detach().cpu().double(),
                             offset=model.offset.detach().cpu().double())
            unscale = 1.0 if self.laziness is None else self.laziness ** 2
            diagnostics = {"steps": result.steps,
                           "initial_train_loss": unscale * result.initial_loss,
                           **self._changes(state)}
            if mode == "population":
                risk = float(population_risk(model, data_or_task))
                diagnostics.update(population_risk=risk, final_train_loss=risk)
            elif mode == "online":
                diagnostics.update(final_train_loss=unscale * result.recent_loss,
                                   samples_seen=result.steps * self.batch_size)
            else:
                per_epoch = math.ceil(data_or_task.n_samples / self.batch_size)
                epochs, rest = divmod(result.steps, per_epoch)
                diagnostics.update(final_train_loss=_data_loss(model, data_or_task),
                                   samples_seen=epochs * data_or_task.n_samples
                                   + rest * self.batch_size)
        if not all(torch.isfinite(t).all() for t in (model.weights, model.head)):
            raise DivergenceError("Network training produced non-finite parameters",
                                  step=result.steps)
        model.diagnostics = numeric(diagnostics)
        return model

    def _changes(self, state) -> dict[str, float]:
        w, a, _, _ = self._effective(state["raw"], state["scales"])
        w0, a0, _, _ = self._effective(state["initial"], state["scales"])
        out = {"weight_change": float(torch.linalg.norm(w - w0) / torch.linalg.norm(w0))}
        if float(torch.linalg.norm(a0)) > 0:
            out["head_change"] = float(torch.linalg.norm(a - a0) / torch.linalg.norm(a0))
        return out


def _check_positive(value: Any, name: str, alternative: str = "") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0{alternative}, got {value!r}")
    return number


def _data_loss(model: TwoLayer, data: Dataset) -> float:
    """(1/n) Σ (y − f(x))² in blocks (float64)."""
    total = 0.0
    for start in range(0, data.n_samples, _EVAL_ROWS):
        residual = data.y[start:start + _EVAL_ROWS] - model.predict(data.x[start:start + _EVAL_ROWS])
        total += float(torch.sum(residual * residual))
    return total / data.n_samples
