"""The loop machinery shared by the trainers: results, param groups, SGD/Adam, one loop state.

Internal to :mod:`lazylab.solvers.training` (arguments arrive validated). Notation as there.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from lazylab.errors import DivergenceError

__all__ = ["TrainingResult", "OPTIMIZERS", "Optimizer", "TrainingLoop", "HISTORY_POINTS",
           "RECENT_WINDOW", "BACKTRACK_FACTOR", "BACKTRACK_FLOOR", "MAX_HALVINGS"]

OPTIMIZERS = ("sgd", "adam")
HISTORY_POINTS = 1000
RECENT_WINDOW = 100
BACKTRACK_FACTOR = 10.0
BACKTRACK_FLOOR = 1e-8
"""A rise above BACKTRACK_FACTOR × the lowest risk counts only above BACKTRACK_FLOOR × R(θ₀):
near an exact optimum (risk ~1e-16) Adam's or momentum's round-off noise is not a divergence."""
MAX_HALVINGS = 10


@dataclass(frozen=True)
class TrainingResult:
    """What a training loop did, with its convergence certificate.

    Attributes:
        steps: optimizer steps completed (the step budget bounds it; steps discarded by a
            backtrack count).
        final_loss: loss at the last evaluation (the last finite loss when diverged).
        recent_loss: mean loss over the last min(steps, 100) evaluations (smooths batch noise).
        initial_loss: loss at step 0.
        loss_steps, losses: a subsampled history (at most ~1000 points, last evaluation included).
        diverged: True when training stopped on a non-finite or exploding loss.
        diverged_at_step: the step at which divergence was detected, else None.
        converged: not diverged and ``criterion`` ≤ ``tolerance`` at the end, whatever stopped
            the run (a fixed budget that happens to meet the tolerance is converged too).
        gradient_norm: Euclidean norm of the (multiplied) gradient at the last evaluation that
            computed it (None if none did).
        criterion: final value of the stopping criterion (∞ when too few steps to compute it).
        criterion_name: "relative_gradient" or "risk_change" (population descent: whichever is
            smaller), "loss_change" or "validation_change" (sample-based training),
            "full_loss_change" or "interpolation" (minibatches of a fixed data set: the
            full-batch criterion of :mod:`lazylab.solvers.convergence`).
        tolerance: the tolerance the criterion was judged against.
        stop_reason: "tolerance", "budget", "diverged" or "exhausted" (batches ran out).
        halvings: learning-rate halvings by backtracking. learning_rate: the final base rate.
        decays: learning-rate decays on a plateau (``schedule="plateau"``); the rate at the end
            was ``learning_rate`` × factor^decays.
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
    criterion: float = math.inf
    criterion_name: str = ""
    tolerance: float = 0.0
    stop_reason: str = "budget"
    halvings: int = 0
    learning_rate: float | None = None
    decays: int = 0


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


def _gradient_norm(groups, folded: bool = False) -> float:
    """‖(g_k ∇θ)_k‖; ``folded``: the gradients are raw and g_k is applied here."""
    total = 0.0
    for group in groups:
        scale = group["gradient_scale"] ** 2 if folded else 1.0
        for tensor in group["params"]:
            if tensor.grad is not None:
                norm = torch.linalg.vector_norm(tensor.grad.detach(), dtype=torch.float64)
                total += scale * float(norm) ** 2
    return math.sqrt(total)


def _all_finite(groups) -> bool:
    return all(bool(torch.isfinite(t).all()) for g in groups for t in g["params"])


class Optimizer:
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
        self.plain = kind == "sgd" and not momentum and not weight_decay
        self.aliases = [[(t.detach(), t) for t in g["params"]] for g in groups]
        self.flat = [pair for pairs in self.aliases for pair in pairs]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, tensor in self.flat:
            tensor.grad = None

    def step(self) -> None:
        self.count += 1
        if self.plain:
            # the online hot path: θ ← θ − lr·∇θ on detached aliases of θ (no grad-mode switch;
            # the same kernel, so the same numbers as under torch.no_grad)
            for group, pairs in zip(self.param_groups, self.aliases):
                rate = -group["lr"]
                for alias, tensor in pairs:
                    if tensor.grad is not None:
                        alias.add_(tensor.grad, alpha=rate)
            return
        self._stateful_step()

    @torch.no_grad()
    def _stateful_step(self) -> None:
        for group in self.param_groups:
            for tensor in group["params"]:
                if tensor.grad is None:
                    continue
                grad = tensor.grad
                if self.weight_decay:
                    grad = grad.add(tensor, alpha=self.weight_decay)
                if self.kind == "adam":
                    self._adam(tensor, grad, self.state.setdefault(id(tensor), {}), group["lr"])
                    continue
                if self.momentum:  # plain SGD keeps no state (the common online step)
                    buffer = self.state.setdefault(id(tensor), {}).get("buffer")
                    grad = self.state[id(tensor)]["buffer"] = (
                        grad.clone() if buffer is None else buffer.mul_(self.momentum).add_(grad))
                tensor.add_(grad, alpha=-group["lr"])

    def _adam(self, tensor, grad, state, rate, betas=(0.9, 0.999), eps=1e-8) -> None:
        if not state:
            state["m"], state["v"] = torch.zeros_like(tensor), torch.zeros_like(tensor)
        state["m"].mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        state["v"].mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        first = 1 - betas[0] ** self.count
        root = (state["v"] / (1 - betas[1] ** self.count)).sqrt_().add_(eps)
        tensor.addcdiv_(state["m"], root, value=-rate / first)


class TrainingLoop:
    """State shared by the trainers: param groups, optimizer, loss history, best snapshot.

    Arguments arrive validated (``training._loop_options``); ``schedule`` is a callable.
    """

    def __init__(self, parameters, *, optimizer: str, learning_rate: float, momentum: float,
                 weight_decay: float, schedule, budget: int, divergence_threshold: float | None,
                 progress, progress_every: int, checkpoints=(), on_checkpoint=None):
        self.rate, self.momentum, self.weight_decay = learning_rate, momentum, weight_decay
        self.progress_every, self.threshold = progress_every, divergence_threshold
        self.kind, self.budget, self.schedule, self.progress = optimizer, budget, schedule, progress
        self.groups = _parameter_groups(parameters)
        # plain SGD (momentum included, no weight decay) is linear in the gradient: the group
        # multiplier g_k goes into the group's rate instead of a pass over every gradient
        self.folded = optimizer == "sgd" and not weight_decay
        self.opt = Optimizer(self.groups, optimizer, self.rate, self.momentum, self.weight_decay)
        self.stride = -(-budget // HISTORY_POINTS)
        self.history_steps, self.history = [], []
        self.recent: deque[float] = deque(maxlen=RECENT_WINDOW)
        self.initial = self.last = math.nan
        self.last_step = -1
        self.gradient_norm: float | None = None
        self.best, self.snapshot, self.halvings = math.inf, None, 0
        self.decay, self.decays = 1.0, 0  # plateau decay: multiplier of the rate, its count
        self.multiplier = math.nan  # m(t)·decay of the last update (the group rates' factor)
        self.checkpoints, self.on_checkpoint = deque(sorted(checkpoints)), on_checkpoint

    def forward(self, evaluate) -> torch.Tensor:
        self.opt.zero_grad()
        loss = evaluate()
        if math.isnan(self.initial) and loss is not None:
            self.initial = float(loss.detach())
        return loss

    def diverging(self, value: float) -> bool:
        """Non-finite, or above ``divergence_threshold`` × |initial loss|."""
        return not math.isfinite(value) or (self.threshold is not None and
                                            value > self.threshold * max(abs(self.initial), 1e-300))

    def backward(self, loss: torch.Tensor, *, norm: bool) -> None:
        loss.backward()
        for group in () if self.folded else self.groups:
            if group["gradient_scale"] != 1.0:
                for tensor in group["params"]:
                    if tensor.grad is not None:
                        tensor.grad.mul_(group["gradient_scale"])
        if norm:
            self.gradient_norm = _gradient_norm(self.groups, self.folded)

    def record(self, step: int, value: float) -> None:
        self.last, self.last_step = value, step
        self.recent.append(value)
        if step % self.stride == 0:
            self.history_steps.append(step)
            self.history.append(value)

    def flush(self, pending: list[torch.Tensor], first: int, monitor=None) -> int | None:
        """Read the deferred losses of steps ``first``, ``first`` + 1, … (detached 0-d tensors,
        one transfer), in order: the first diverging step (nothing of it recorded), or None
        after recording each (and feeding ``monitor.observe`` when given)."""
        values = torch.stack(pending).reshape(-1).tolist() if len(pending) > 1 else [
            float(pending[0])]
        for step, value in enumerate(values, first):
            if math.isnan(self.initial):
                self.initial = value
            if self.diverging(value):
                return step
            self.record(step, value)
            if monitor is not None:
                monitor.observe(value)
        return None

    def measure_gradient(self) -> None:
        """``gradient_norm`` from the gradients of the last backward pass."""
        self.gradient_norm = _gradient_norm(self.groups, self.folded)

    def update(self, step: int) -> None:
        """One optimizer step at rate η·m(step) (× g_k when folded); progress(step + 1, last
        loss) when due; ``on_checkpoint(step + 1)`` when step + 1 is the next checkpoint (one
        comparison a step). The group rates are reset only when the multiplier changes."""
        multiplier = float(self.schedule(step)) * self.decay
        if multiplier != self.multiplier:
            self.multiplier = multiplier
            for group in self.groups:
                group["lr"] = self.rate * multiplier * (group["gradient_scale"] if self.folded
                                                        else 1.0)
        self.opt.step()
        done = step + 1
        if self.checkpoints and done == self.checkpoints[0]:
            self.on_checkpoint(self.checkpoints.popleft())
        if self.progress is not None and (done % self.progress_every == 0 or done == self.budget):
            self.progress(done, self.last)

    def keep_best(self, value: float) -> None:
        if value < self.best:
            self.best = value
            self.snapshot = [t.detach().clone() for g in self.groups for t in g["params"]]

    def exploded(self, value: float) -> bool:
        """The risk rose above BACKTRACK_FACTOR × its lowest value, and above the noise floor."""
        floor = BACKTRACK_FLOOR * abs(self.initial) if math.isfinite(self.initial) else 0.0
        return self.best > 0 and value > max(BACKTRACK_FACTOR * self.best, floor)

    def backtrack(self, max_halvings: int, step: int) -> None:
        """Restore the best parameters seen, halve η and restart the optimizer's state."""
        if self.snapshot is not None:
            with torch.no_grad():
                tensors = [t for g in self.groups for t in g["params"]]
                for tensor, saved in zip(tensors, self.snapshot):
                    tensor.copy_(saved)
        if self.snapshot is None or self.halvings >= max_halvings:
            raise DivergenceError(
                f"population descent diverged at step {step} after halving the learning rate "
                f"{self.halvings} times (to {self.rate:.3g}); the parameters of the lowest risk "
                "were restored; lower learning_rate", step=step)
        self.rate, self.halvings = self.rate / 2, self.halvings + 1
        self.opt = Optimizer(self.groups, self.kind, self.rate, self.momentum, self.weight_decay)
        self.multiplier = math.nan  # the new optimizer's group rates are set at the next update

    def result(self, steps: int, reason: str, criterion: float, name: str, tolerance: float,
               diverged_at: int | None = None) -> TrainingResult:
        if diverged_at is None and steps > 0 and not _all_finite(self.groups):
            diverged_at, reason = steps, "diverged"
        last, initial = self.last, self.initial
        if self.history_steps and self.history_steps[-1] != self.last_step and math.isfinite(last):
            self.history_steps.append(self.last_step)
            self.history.append(last)
        if not math.isfinite(last):  # diverged at the very first evaluation
            last = initial if math.isfinite(initial) else math.inf
        return TrainingResult(
            steps=steps, final_loss=last,
            recent_loss=float(np.mean(self.recent)) if self.recent else last,
            initial_loss=initial if math.isfinite(initial) else last,
            loss_steps=tuple(self.history_steps), losses=tuple(self.history),
            diverged=diverged_at is not None, diverged_at_step=diverged_at,
            converged=diverged_at is None and criterion <= tolerance,
            gradient_norm=self.gradient_norm, criterion=criterion, criterion_name=name,
            tolerance=tolerance, stop_reason=reason, halvings=self.halvings,
            learning_rate=self.rate, decays=self.decays)
