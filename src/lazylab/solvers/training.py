"""First-order trainers: minibatch / online SGD and Adam, and population gradient descent.

Generic and independent of the regimes: a trainer sees parameter tensors, a loss and a source of
batches. Notation: θ the trained tensors, η the learning rate, m(t) the schedule multiplier,
g_k the gradient multiplier of parameter group k.

* :func:`train` — θ ← θ − η m(t) · opt(g_k ∇θ loss(x_t, y_t)) over batches (x_t, y_t).
* :func:`population_descent` — the same loop on an exact, differentiable risk R(θ) (no data).
* :func:`fresh_batches` — online SGD: every step a fresh sample of the task (drawn in blocks),
  so samples seen = steps × batch (Ghorbani et al. 2019, §2.3 and §4; THEORY §1.5, §1.7).
* :func:`minibatches` — a fixed data set, reshuffled every epoch.
* :func:`paper_schedule` — the learning-rate drops of Ghorbani et al.'s code (THEORY §1.7).

Gradient multipliers (param group key ``"gradient_scale"``) reproduce the per-parameter
multipliers of the authors' TensorFlow code (mean-field scaling: ∇W × N): the gradient is
multiplied before the optimizer step. For SGD this equals a per-group learning rate; Adam is
invariant to it (up to its ε), as in the original.

Divergence: a non-finite loss, a loss above ``divergence_threshold`` × the initial loss, or
non-finite parameters after the last step stop training; the result says ``diverged=True`` and
the step, and never carries NaN (``final_loss`` is the last finite loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from lazylab import _checks as checks

__all__ = ["TrainingResult", "train", "population_descent", "fresh_batches", "minibatches",
           "paper_schedule", "constant_schedule", "resolve_device", "resolve_dtype",
           "OPTIMIZERS", "DTYPES"]

OPTIMIZERS = ("sgd", "adam")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
HISTORY_POINTS = 1000
RECENT_WINDOW = 100


@dataclass(frozen=True)
class TrainingResult:
    """What a training loop did.

    Attributes:
        steps: optimizer steps completed.
        final_loss: loss at the last completed step (the last finite loss when diverged).
        recent_loss: mean loss over the last min(steps, 100) steps (smooths batch noise).
        initial_loss: loss at step 0.
        loss_steps, losses: a subsampled history (at most ~1000 points, last step included).
        diverged: True when training stopped on a non-finite or exploding loss.
        diverged_at_step: the step at which divergence was detected, else None.
        converged: True when ``population_descent`` stopped on its gradient tolerance.
        gradient_norm: Euclidean norm of the (multiplied) gradient at the last step (None if
            training stopped before computing it).
    """

    steps: int
    final_loss: float
    recent_loss: float
    initial_loss: float
    loss_steps: tuple[int, ...]
    losses: tuple[float, ...]
    diverged: bool = False
    diverged_at_step: int | None = None
    converged: bool = False
    gradient_norm: float | None = None


# ----------------------------------------------------------------------------- validation

def resolve_dtype(dtype) -> torch.dtype:
    """torch.float32/float64 from a dtype or its name; ValueError otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def resolve_device(device) -> torch.device:
    """A torch device; ``cuda`` when CUDA is unavailable raises ValueError saying so."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this "
                         "machine (torch.cuda.is_available() is False); use device='cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return resolved


# ----------------------------------------------------------------------------- schedules

def constant_schedule(step: int) -> float:
    """m(t) = 1."""
    return 1.0


def paper_schedule(steps: int, *, drops: Sequence[tuple[float, float]] = ((0.15, 0.1),
                                                                          (0.075, 1 / 15))):
    """The learning-rate drops of Ghorbani et al.'s code (THEORY §1.7), as fractions of the run.

    Their NN runs use 2·10⁵ steps with η/10 for the last 30 000 to 15 000 steps and η/15 for the
    last 15 000: fractions 0.15 and 0.075 of the run. ``drops`` is a sequence of
    (fraction of the run left, multiplier); the multiplier of the smallest fraction reached wins.
    Returns a callable step → multiplier.
    """
    steps = checks.positive_int(steps, "steps")
    starts = sorted(((steps - int(round(f * steps)), m) for f, m in drops), key=lambda s: s[0])

    def schedule(step: int) -> float:
        multiplier = 1.0
        for start, value in starts:
            if step >= start:
                multiplier = value
        return multiplier

    return schedule


# ----------------------------------------------------------------------------- batch sources

def fresh_batches(task, batch_size: int, *, rng: np.random.Generator, device="cpu",
                  dtype=torch.float64, block_size: int = 10_000) -> Iterator[tuple]:
    """Online SGD data: an endless stream of fresh (x, y) batches of ``task``, each used once.

    Samples are drawn with ``task.sample`` in blocks of ⌈block_size / batch_size⌉ batches (one
    call per block, float64 on the CPU, as the authors' code drew 30 000 Gaussians at a time),
    then converted to ``dtype`` on ``device``. Samples seen after t steps = t × batch_size.
    """
    batch_size = checks.positive_int(batch_size, "batch_size")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    per_block = max(1, block_size // batch_size)
    while True:
        data = task.sample(per_block * batch_size, rng=rng)
        x = data.x.to(device=device, dtype=dtype)
        y = data.y.to(device=device, dtype=dtype)
        for start in range(0, per_block * batch_size, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]


def minibatches(dataset, batch_size: int, *, rng: np.random.Generator, epochs: int | None = None,
                device="cpu", dtype=torch.float64) -> Iterator[tuple]:
    """Minibatches of a fixed data set, reshuffled every epoch (a permutation from ``rng``).

    Every epoch visits each sample once; the last batch of an epoch is smaller when the batch
    size does not divide n. ``epochs=None`` repeats forever. ``batch_size`` > n raises ValueError.
    """
    batch_size = checks.positive_int(batch_size, "batch_size")
    n = int(dataset.x.shape[0])
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the number of training samples n={n}")
    if epochs is not None:
        epochs = checks.positive_int(epochs, "epochs")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    x = dataset.x.to(device=device, dtype=dtype)
    y = dataset.y.to(device=device, dtype=dtype)
    epoch = 0
    while epochs is None or epoch < epochs:
        order = torch.from_numpy(rng.permutation(n)).to(device)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            yield x[index], y[index]
        epoch += 1


# ----------------------------------------------------------------------------- the loop

def _parameter_groups(parameters) -> list[dict]:
    """Normalize a module, an iterable of tensors or of group dicts to torch param groups."""
    if isinstance(parameters, torch.nn.Module):
        parameters = list(parameters.parameters())
    elif isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters must contain at least one tensor")
    if all(isinstance(p, dict) for p in parameters):
        groups = [dict(g, params=list(g["params"])) for g in parameters]
    elif all(isinstance(p, torch.Tensor) for p in parameters):
        groups = [{"params": parameters}]
    else:
        raise TypeError("parameters must be a torch.nn.Module, tensors, or param-group dicts")
    for group in groups:
        group.setdefault("gradient_scale", 1.0)
        for tensor in group["params"]:
            if not tensor.requires_grad:
                raise ValueError("every trained tensor must have requires_grad=True")
    return groups


class _Optimizer:
    """Plain SGD (momentum, weight decay) and Adam over param groups, without torch.optim.

    The update rules are torch.optim's (SGD: d = g + λθ, buffer ← μ·buffer + d, θ ← θ − η·buffer;
    Adam: β = (0.9, 0.999), ε = 1e-8, bias-corrected moments, L2 weight decay added to g). They
    are written out so that importing the trainers does not pull in torch.optim's compiler
    stack (several seconds per worker process) and the group multipliers are explicit.
    """

    def __init__(self, groups, kind: str, learning_rate: float, momentum: float,
                 weight_decay: float):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
        if kind == "adam" and momentum:
            raise ValueError("momentum applies to optimizer='sgd' only (Adam has its own betas)")
        self.param_groups = groups
        self.kind, self.momentum, self.weight_decay = kind, momentum, weight_decay
        for group in groups:
            group["lr"] = learning_rate
        self.state: dict[int, dict] = {}
        self.count = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for tensor in group["params"]:
                tensor.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.count += 1
        for group in self.param_groups:
            for tensor in group["params"]:
                if tensor.grad is None:
                    continue
                grad = tensor.grad
                if self.weight_decay:
                    grad = grad.add(tensor, alpha=self.weight_decay)
                state = self.state.setdefault(id(tensor), {})
                if self.kind == "sgd":
                    if self.momentum:
                        buffer = state.get("buffer")
                        grad = state["buffer"] = (grad.clone() if buffer is None else
                                                  buffer.mul_(self.momentum).add_(grad))
                    tensor.add_(grad, alpha=-group["lr"])
                else:
                    self._adam(tensor, grad, state, group["lr"])

    def _adam(self, tensor, grad, state, rate, betas=(0.9, 0.999), eps=1e-8) -> None:
        if not state:
            state["m"], state["v"] = torch.zeros_like(tensor), torch.zeros_like(tensor)
        state["m"].mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        state["v"].mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        first = 1 - betas[0] ** self.count
        root = (state["v"] / (1 - betas[1] ** self.count)).sqrt_().add_(eps)
        tensor.addcdiv_(state["m"], root, value=-rate / first)


def _make_optimizer(groups, optimizer: str, learning_rate: float, momentum: float,
                    weight_decay: float) -> _Optimizer:
    return _Optimizer(groups, optimizer, learning_rate, momentum, weight_decay)


def _gradient_norm(groups) -> float:
    total = 0.0
    for group in groups:
        for tensor in group["params"]:
            if tensor.grad is not None:
                total += float(torch.sum(tensor.grad.detach().double() ** 2))
    return math.sqrt(total)


def _all_finite(groups) -> bool:
    return all(bool(torch.isfinite(t).all()) for g in groups for t in g["params"])


def _optimize(parameters, evaluate: Callable[[], torch.Tensor | None], *, optimizer: str,
              learning_rate: float, steps: int, schedule, momentum: float, weight_decay: float,
              divergence_threshold: float | None, progress, progress_every: int,
              tol: float = 0.0) -> TrainingResult:
    """Shared loop: ``evaluate()`` returns the loss at the current θ (None: no more data)."""
    learning_rate = checks.positive_float(learning_rate, "learning_rate")
    steps = checks.positive_int(steps, "steps")
    momentum = checks.nonnegative_float(momentum, "momentum")
    weight_decay = checks.nonnegative_float(weight_decay, "weight_decay")
    progress_every = checks.positive_int(progress_every, "progress_every")
    if divergence_threshold is not None:
        divergence_threshold = checks.positive_float(divergence_threshold, "divergence_threshold")
    schedule = schedule or constant_schedule
    groups = _parameter_groups(parameters)
    opt = _make_optimizer(groups, optimizer, learning_rate, momentum, weight_decay)
    base_rates = [g["lr"] for g in opt.param_groups]
    stride = -(-steps // HISTORY_POINTS)
    history_steps, history, recent = [], [], []
    initial = last = math.nan
    done, diverged_at, converged, grad_norm = 0, None, False, None
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = evaluate()
        if loss is None:
            break
        value = float(loss.detach())
        if step == 0:
            initial = value
        if not math.isfinite(value) or (divergence_threshold is not None and
                                        value > divergence_threshold * max(abs(initial), 1e-300)):
            diverged_at = step
            break
        last = value
        recent.append(value)
        if len(recent) > RECENT_WINDOW:
            recent.pop(0)
        if step % stride == 0:
            history_steps.append(step)
            history.append(value)
        loss.backward()
        for group in opt.param_groups:
            if group["gradient_scale"] != 1.0:
                for tensor in group["params"]:
                    if tensor.grad is not None:
                        tensor.grad.mul_(group["gradient_scale"])
        if tol > 0 or step == steps - 1:
            grad_norm = _gradient_norm(opt.param_groups)
            if tol > 0 and grad_norm <= tol:
                converged, done = True, step + 1
                break
        multiplier = float(schedule(step))
        for group, rate in zip(opt.param_groups, base_rates):
            group["lr"] = rate * multiplier
        opt.step()
        done = step + 1
        if progress is not None and (done % progress_every == 0 or done == steps):
            progress(done, value)
    if diverged_at is None and done > 0 and not _all_finite(opt.param_groups):
        diverged_at = done
    if history_steps and history_steps[-1] != done - 1 and math.isfinite(last):
        history_steps.append(done - 1)
        history.append(last)
    if not math.isfinite(last):  # diverged at the very first evaluation
        last = initial if math.isfinite(initial) else math.inf
    return TrainingResult(steps=done, final_loss=last,
                          recent_loss=float(np.mean(recent)) if recent else last,
                          initial_loss=initial if math.isfinite(initial) else last,
                          loss_steps=tuple(history_steps), losses=tuple(history),
                          diverged=diverged_at is not None, diverged_at_step=diverged_at,
                          converged=converged, gradient_norm=grad_norm)


def train(parameters, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, learning_rate: float,
          steps: int, optimizer: str = "sgd", schedule: Callable[[int], float] | None = None,
          momentum: float = 0.0, weight_decay: float = 0.0,
          divergence_threshold: float | None = 1e6,
          progress: Callable[[int, float], None] | None = None,
          progress_every: int = 1) -> TrainingResult:
    """Minimize ``loss_fn(x, y)`` over ``batches`` with SGD or Adam.

    Step t: θ ← θ − η m(t) · update(g_k ∇θ loss_fn(x_t, y_t)) (update = identity for plain SGD).

    Args:
        parameters: a ``torch.nn.Module``, an iterable of tensors (requires_grad), or torch
            param-group dicts ``{"params": [...], "gradient_scale": g_k}``.
        loss_fn: (x (b, d), y (b,)) → 0-d tensor.
        batches: iterator of (x, y) tensors (e.g. :func:`fresh_batches`, :func:`minibatches`);
            training stops early when it is exhausted.
        learning_rate: η > 0. steps: maximum number of steps.
        optimizer: "sgd" or "adam". schedule: step → multiplier m(t) (default 1).
        momentum, weight_decay: SGD momentum μ (SGD only) and L2 weight decay λ (torch.optim
            semantics).
        divergence_threshold: stop as diverged when loss > threshold × initial loss (None: only
            non-finite losses count).
        progress: optional ``progress(step, loss)``, called every ``progress_every`` steps.
    """
    iterator = iter(batches)

    def evaluate():
        batch = next(iterator, None)
        return None if batch is None else loss_fn(*batch)

    return _optimize(parameters, evaluate, optimizer=optimizer, learning_rate=learning_rate,
                     steps=steps, schedule=schedule, momentum=momentum, weight_decay=weight_decay,
                     divergence_threshold=divergence_threshold, progress=progress,
                     progress_every=progress_every)


def population_descent(parameters, risk_fn: Callable[[], torch.Tensor], *, learning_rate: float,
                       steps: int, optimizer: str = "sgd", tol: float = 0.0,
                       schedule: Callable[[int], float] | None = None, momentum: float = 0.0,
                       divergence_threshold: float | None = 1e6,
                       progress: Callable[[int, float], None] | None = None,
                       progress_every: int = 1) -> TrainingResult:
    """Gradient descent (or Adam) on an exact, differentiable population risk R(θ) (n = ∞).

    θ_{t+1} = θ_t − η m(t) · update(g_k ∇R(θ_t)); ``risk_fn()`` recomputes R at the current
    parameters (e.g. ``lambda: population_risk(model_of(θ), task)``). Stops after ``steps`` or
    when the gradient norm ‖g_k ∇R‖ ≤ ``tol`` (``converged=True``; tol = 0 disables the check).
    Arguments otherwise as in :func:`train`.
    """
    tol = checks.nonnegative_float(tol, "tol")
    return _optimize(parameters, risk_fn, optimizer=optimizer, learning_rate=learning_rate,
                     steps=steps, schedule=schedule, momentum=momentum, weight_decay=0.0,
                     divergence_threshold=divergence_threshold, progress=progress,
                     progress_every=progress_every, tol=tol)
