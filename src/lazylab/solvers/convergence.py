"""Convergence criteria of the iterative trainers: what "converged" means, stated as a number.

Every trainer stops on a stated tolerance with its step count as a budget and reports the final
value of its criterion, the tolerance, and why it stopped (``STOP_REASONS``).

* Population descent (exact, deterministic risk R): criterion
      min( ‖∇R(θ_t)‖ / ‖∇R(θ₀)‖ ,  |R(θ_{t−W}) − R(θ_t)| / max(|R(θ_{t−W})|, |R(θ_t)|) ),
  the relative gradient norm or the relative risk change over the last W steps (∞ before W
  steps). Caveat: on a plateau (e.g. near a saddle) the risk change can be small although the
  fit is far from a minimum; a smaller tolerance or a longer window guards against it.
* Sample-based SGD / Adam: the running loss is averaged over windows of W steps (or a
  validation loss is evaluated every W steps); the criterion is the largest relative change
  between consecutive window values over the last ``CONSECUTIVE_CHECKS`` changes (∞ until
  there are that many). Taking the maximum over 3 changes keeps batch noise from declaring
  convergence by chance: if a single change falls below tol with probability p, three
  independent ones do with probability p³.
* Minibatch training on a fixed data set of n ≤ ``FULL_BATCH_SAMPLES`` samples (the batch source
  carries its data set, :func:`lazylab.solvers.training.minibatches`): the FULL-BATCH training
  loss L_k = L(θ) over all n samples is evaluated every ``max(W, ⌈n/b⌉)`` steps (at most once
  per epoch of b-sample batches, so the check costs at most a third of the training's
  arithmetic: one forward pass over n samples per ≥ one forward-and-backward pass over n); the
  criterion is
      min( max_{j<3} |L_{k−j−1} − L_{k−j}| / max(L_{k−j−1}, L_{k−j}) ,  L_k / Var(y) ),
  ``full_loss_change`` (the full-batch loss stable to tol over 3 checks) or ``interpolation``
  (L_k ≤ tol · Var(y): since L ≥ 0, the objective is within tol · Var(y) of its infimum, a
  certificate that a fit approaching interpolation meets although its relative change never
  falls). The minibatch-loss window above cannot certify such a fit: the batch noise of the
  window means stays above tol, and their relative change is meaningless as L → 0. Above
  ``FULL_BATCH_SAMPLES`` the minibatch window is used (stated by the criterion's name).

Learning-rate decay on a plateau (:class:`PlateauDecay`, the trainers' ``schedule="plateau"``):
a constant-rate stochastic fit stalls at a noise floor (Adam on minibatches jitters by a few per
cent between checks), where the monitored loss (the full-batch loss, else the window mean or the
validation loss) stops reaching new lows and the change criterion is never met. At every check
where that loss is not below its lowest value so far, and no decay happened in the last
``CONSECUTIVE_CHECKS`` checks (so every change the criterion measures was made at the current
rate), the rate is multiplied by ``factor`` < 1, at most ``max_decays`` times. A loss still
falling steadily is never decayed (a slower rate would only shrink its relative changes). The
certificate is unchanged: the same criterion against the same tolerance; the rate never grows.

Rate-independent checks (:func:`criterion_window`, the regimes' ``criterion_rate`` η_c): every
criterion above compares values W steps apart, so a slow rate η moves the loss ≈ η·W·|dL/dt|
per window, and a fit at η ≪ η_c passes "changes by < tol" while it is still descending
(with t = η·steps the time of the gradient flow, or of Adam's flow dθ/dt = −m/√v). Checking
every W·η_c/η steps instead (for η < η_c) judges every rate over the same span of t, W·η_c:
to first order the criterion is then |d log L/dt|·W·η_c < tol whatever η, so a rate grid
compares fits certified by one standard. The budget stays a number of steps, so a slow rate
may run out of it: its fit is reported as not converged, not stopped early.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["STOP_REASONS", "DEFAULT_MAX_STEPS", "DEFAULT_WINDOW", "POPULATION_TOLERANCE",
           "SAMPLE_TOLERANCE", "CONSECUTIVE_CHECKS", "relative_change", "resolve_budget",
           "PopulationCriterion", "WindowedCriterion", "FullBatchCriterion",
           "FULL_BATCH_SAMPLES", "PlateauDecay", "PLATEAU_FACTOR", "PLATEAU_MAX_DECAYS",
           "criterion_window"]

STOP_REASONS = ("tolerance", "budget", "diverged", "exhausted")
"""Why a trainer stopped: criterion ≤ tolerance; step budget used up; the loss diverged (non-
finite or exploding); the batch source ran out (``train`` only)."""

DEFAULT_MAX_STEPS = 100_000
DEFAULT_WINDOW = 100
POPULATION_TOLERANCE = 1e-6
SAMPLE_TOLERANCE = 1e-3
CONSECUTIVE_CHECKS = 3
FULL_BATCH_SAMPLES = 20_000
"""Largest training set whose full-batch loss is the minibatch criterion (above: the window of
minibatch losses). At most once per epoch, its cost is ≤ 1/3 of the training's; the limit bounds
the time of one check (a forward pass over ≤ 20 000 samples, in blocks)."""


PLATEAU_FACTOR = 0.5
PLATEAU_MAX_DECAYS = 8
"""Default plateau decay: halve the rate at most 8 times (down to η/256)."""


def relative_change(old: float, new: float) -> float:
    """|old − new| / max(|old|, |new|) ∈ [0, 2] (0 when both are 0)."""
    scale = max(abs(old), abs(new))
    return 0.0 if scale == 0 else abs(old - new) / scale


def criterion_window(learning_rate: float, criterion_rate: float | None,
                     window: int = DEFAULT_WINDOW) -> int:
    """Steps between the criterion's checks at rate η: ⌈W·η_c/η⌉ if η < η_c, else W.

    ``criterion_rate`` η_c None keeps W whatever η (module docstring, "Rate-independent
    checks"). Raises ValueError for a non-positive rate or window.
    """
    if not learning_rate > 0 or (criterion_rate is not None and not criterion_rate > 0):
        raise ValueError(f"learning_rate and criterion_rate must be > 0, got {learning_rate!r} "
                         f"and {criterion_rate!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if criterion_rate is None or learning_rate >= criterion_rate:
        return window
    return math.ceil(window * criterion_rate / learning_rate - 1e-9)


def resolve_budget(steps: int | None, max_steps: int | None,
                   tol: float | None) -> tuple[int | None, bool]:
    """(budget, stop early?) from the step arguments.

    ``steps`` alone is the historical fixed budget: run exactly that many steps (convergence is
    still judged at the end). ``max_steps``, or ``steps`` together with ``tol``, is a budget for a
    run to tolerance; neither means a run to tolerance within ``DEFAULT_MAX_STEPS``. The budget
    is returned unvalidated (None when not given); both given raises ValueError.
    """
    if steps is not None and max_steps is not None:
        raise ValueError(f"give steps (a fixed budget) or max_steps (a budget for a run to "
                         f"tolerance), not both; got steps={steps!r}, max_steps={max_steps!r}")
    if max_steps is not None:
        return max_steps, True
    if steps is not None:
        return steps, tol is not None
    return DEFAULT_MAX_STEPS, True


class PopulationCriterion:
    """min(relative gradient norm, relative risk change over ``window`` steps)."""

    def __init__(self, window: int):
        self.window = window
        self.initial_gradient: float | None = None
        self.risks: deque[float] = deque(maxlen=window + 1)
        self.name = "relative_gradient"

    def reset_history(self) -> None:
        """Forget the risk history (after a backtrack; the initial gradient is kept)."""
        self.risks.clear()

    def observe(self, risk: float, gradient_norm: float) -> float:
        if self.initial_gradient is None:
            self.initial_gradient = gradient_norm
        if self.initial_gradient > 0:
            gradient = gradient_norm / self.initial_gradient
        else:
            gradient = 0.0 if gradient_norm == 0 else math.inf
        self.risks.append(risk)
        change = (relative_change(self.risks[0], risk) if len(self.risks) == self.window + 1
                  else math.inf)
        self.name = "relative_gradient" if gradient <= change else "risk_change"
        return min(gradient, change)


class WindowedCriterion:
    """Largest relative change between consecutive window values over the last few changes."""

    def __init__(self, window: int, name: str = "loss_change"):
        self.window, self.name = window, name
        self.values: deque[float] = deque(maxlen=CONSECUTIVE_CHECKS + 1)
        self.total, self.count = 0.0, 0
        self.value = math.inf

    def push(self, value: float) -> float:
        """Add one window value (a window mean or a validation loss); return the criterion."""
        self.values.append(value)
        if len(self.values) == self.values.maxlen:
            values = list(self.values)
            self.value = max(relative_change(a, b) for a, b in zip(values, values[1:]))
        return self.value

    def observe(self, loss: float) -> float:
        """Add one step's loss to the running window; return the criterion."""
        self.total += loss
        self.count += 1
        if self.count == self.window:
            self.push(self.total / self.window)
            self.total, self.count = 0.0, 0
        return self.value


class FullBatchCriterion:
    """min(largest relative change of the full-batch loss over the last 3 checks, L / Var y)."""

    def __init__(self, reference: float):
        self.reference = reference
        self.changes = WindowedCriterion(1, "full_loss_change")
        self.value, self.name = math.inf, "full_loss_change"

    def push(self, loss: float) -> float:
        """Add one full-batch loss L ≥ 0; return the criterion (module docstring)."""
        change = self.changes.push(loss)
        if self.reference > 0:
            interpolation = loss / self.reference
        else:
            interpolation = 0.0 if loss == 0 else math.inf
        self.name = "interpolation" if interpolation <= change else "full_loss_change"
        self.value = min(change, interpolation)
        return self.value


class PlateauDecay:
    """Rate multiplier m ∈ (0, 1], multiplied by ``factor`` when the loss stops reaching lows.

    ``observe(loss)`` at every check (module docstring) returns the multiplier after it;
    ``decays`` counts the decays (≤ ``max_decays``). The multiplier never increases.
    """

    def __init__(self, factor: float = PLATEAU_FACTOR, max_decays: int = PLATEAU_MAX_DECAYS,
                 patience: int = CONSECUTIVE_CHECKS):
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
        if isinstance(max_decays, bool) or not isinstance(max_decays, int) or max_decays < 0:
            raise ValueError(f"max_decays must be an integer >= 0, got {max_decays!r}")
        self.factor, self.max_decays, self.patience = factor, max_decays, patience
        self.multiplier, self.decays = 1.0, 0
        self.best, self.since = math.inf, patience

    def observe(self, loss: float) -> float:
        """One check of the monitored loss; the rate multiplier to use from now on."""
        self.since += 1
        if not math.isfinite(loss):
            return self.multiplier
        if loss < self.best:
            self.best = loss
        elif self.since >= self.patience and self.decays < self.max_decays:
            self.multiplier *= self.factor
            self.decays, self.since = self.decays + 1, 0
        return self.multiplier
