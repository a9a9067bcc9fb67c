"""Model selection: a hyperparameter given as a grid with a rule is chosen before testing.

A regime field in a spec may be a *selection* instead of a value or a sweep axis::

    ridge = { grid = [1e-6, 1e-4, 1e-2], select = "validation" }
    ridge = { grid = [1e-6, 1e-4, 1e-2] }      # rule by n_train (below)
    ridge = "auto"                               # default grid, rule by n_train
    ridge = { select = "validation" }            # default grid, this rule
    learning_rate = { grid = [1e-3, 1e-2, 1e-1], extend = 2 }   # may grow past its ends

Rules (``select``):

* ``"validation"``: every grid value is fitted on the training set (with the same fit stream, so
  the frozen random parts are identical) and the value with the least empirical risk on a
  validation set is kept. The validation set has ``[sweep] validation_size`` samples (default:
  ``n_test``) drawn from the run's own ``validation`` seed stream (:mod:`.runs`).
* ``"population"``: at n = ∞ only; the value with the least exact population risk is kept.

Without ``select`` the rule is ``"population"`` at ``n_train = "population"`` and
``"validation"`` otherwise. A fit whose convergence certificate failed (``converged`` = 0 in
its diagnostics) is chosen only when no certified fit exists: an under-trained fit can score
well on validation data only by accident of its early stop. Ties go to the first grid value. A
value whose fit diverges (or whose risk is not finite) is never chosen. Several selected fields are chosen jointly over the
product of their grids.

Extension (``extend = K``, a grid of positive numbers, ≥ 2 of them): when the choice sits at an
end of its grid, the grid grows past that end by its own ratio there (×grid[−1]/grid[−2] above,
÷grid[1]/grid[0] below), one value at a time, the other selected fields held at their choice;
each new value is fitted and scored as above and kept when it beats the choice (a certified fit
first, then a strictly smaller risk). The extension stops at the first value that does not
(the choice is then bracketed: not at the edge), at a value the regime rejects, or after K
values. An optimum that a fixed grid cannot reach is found instead of reported; a run records
``selection_extended`` (values added).

``"auto"`` (for a field with a default grid, ``ridge``, whose type does not itself accept the
string ``"auto"``: OneStep's own ``ridge = "auto"`` keeps its meaning) is stored in the run
identity as ``{"grid": "default"}`` and uses
:func:`default_ridge_grid` ``(scale)`` with ``scale`` = mean ‖φ(x)‖² over the training inputs
(the trace of the empirical feature second-moment operator, = trace(K)/n for a kernel), measured
on a reference fit at ridge 1, or, for a regime with ``initial_model(data, *, rng)``
(NeuralTangent: the scale depends on W and x alone), on that unfitted model, W drawn as a fit
draws it; at n = ∞ on the validation inputs, or with the population rule on
:data:`SCALE_SAMPLES` inputs from the validation stream.

Ridge paths: when ``ridge`` is selected and the regime has ``fit_path(data, ridges, *, rng)``
(Kernel with an exact fit, RandomFeatures, NeuralTangent on samples), the whole ridge grid is
fitted in one go for each combination of the other selected fields — from one factorization
for the direct solvers (one eigendecomposition instead of one Cholesky per value;
:func:`lazylab.solvers.ridge.ridge_path`), by warm-started conjugate gradient from the largest
ridge down for NeuralTangent's matrix-free solver (:mod:`lazylab.models._tangent_path`) — and
every ridge is scored as above. ``fit_path`` returning None (n = ∞, SGD, streamed fits) means a
refit per value. The choice and the metrics are those of
refitting, up to round-off.

:func:`fit_with_selection` never sees the test set: it is drawn only after it returns.
Metrics recorded per run: ``selected_NAME``, ``NAME_grid_scale`` (1 for a given grid),
``selection_risk`` (criterion at the chosen value), ``selection_at_edge`` (1 when a chosen value
is the first or last of its grid, so the optimum may lie outside), ``selection_diverged``,
``selection_unconverged`` (grid values whose fit reported ``converged`` or ``cg_converged`` = 0),
``selection_extended`` (values added by extension, summed over fields).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lazylab.errors import DivergenceError
from lazylab.experiments.grid_extension import Trials, check_extensible, extend_grid
from lazylab.models.kernel import KernelModel
from lazylab.predictors import NeuralTangentModel

__all__ = ["Selection", "Criterion", "RULES", "DEFAULT_GRIDS", "SCALE_SAMPLES", "PATH_FIELD",
           "default_ridge_grid", "as_selection", "selection_rule", "split_selections",
           "fit_with_selection", "feature_scale", "CERTIFICATES"]

VALIDATION, POPULATION_RULE = "validation", "population"
RULES = (VALIDATION, POPULATION_RULE)
AUTO, DEFAULT = "auto", "default"
SCALE_SAMPLES = 1000
REFERENCE_VALUE = 1.0
PATH_FIELD = "ridge"
"""The field a regime's ``fit_path(data, ridges, *, rng)`` fits along its whole grid at once."""


def default_ridge_grid(scale: float = 1.0, *, low: float = 1e-8, high: float = 1e2,
                       per_decade: int = 1) -> tuple[float, ...]:
    """Log-spaced ridges ``scale · 10^k``, k from log10(low) to log10(high).

    Args:
        scale: the features' scale (mean ‖φ(x)‖², trace(K)/n), > 0.
        low, high: relative ends of the grid (default 1e-8 … 1e2, 11 values).
        per_decade: values per decade.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale={scale!r} must be a positive finite number")
    if not 0 < low < high:
        raise ValueError(f"low={low!r}, high={high!r} must satisfy 0 < low < high")
    decades = math.log10(high) - math.log10(low)
    count = int(round(decades * per_decade)) + 1
    exponents = np.linspace(math.log10(low), math.log10(high), count)
    return tuple(float(scale * 10.0 ** e) for e in exponents)


DEFAULT_GRIDS: dict[str, Callable[[float], tuple[float, ...]]] = {"ridge": default_ridge_grid}
"""Parameters that accept ``"auto"``: name → ``grid(scale)``."""


@dataclass(frozen=True)
class Selection:
    """A selected field as written in a spec: its grid (None: the default grid), rule and how
    many values its grid may grow by past the end the choice sits at (module docstring)."""

    grid: tuple[Any, ...] | None = None
    rule: str | None = None
    extend: int = 0

    def metric(self, name: str) -> str:
        """The metric recording the choice: ``selected_NAME`` for a numeric grid (the value),
        else ``selected_NAME_index`` (its position in the grid)."""
        numeric = self.grid is None or all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.grid)
        return f"selected_{name}" if numeric else f"selected_{name}_index"

    def to_json(self) -> dict[str, Any]:
        """The table form (what enters the run identity); ``grid = "default"`` when none."""
        out: dict[str, Any] = {"grid": DEFAULT if self.grid is None else list(self.grid)}
        if self.rule is not None:
            out["select"] = self.rule
        if self.extend:
            out["extend"] = self.extend
        return out


def as_selection(name: str, value: Any, *, auto: bool = False) -> Selection | None:
    """The :class:`Selection` a spec value stands for, or None for a plain value.

    ``auto``: whether the string ``"auto"`` means the default grid for this field (the spec
    validator decides it from the field's type).

    Raises:
        ValueError: a malformed selection table (unknown key, empty grid, unknown rule, no
            default grid for ``name``).
    """
    if isinstance(value, Selection):
        return value
    if auto and isinstance(value, str) and value == AUTO and name in DEFAULT_GRIDS:
        return Selection()
    if not isinstance(value, dict):
        return None
    unknown = sorted(set(value) - {"grid", "select", "extend"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in a selection; allowed: grid, select, "
                         "extend")
    grid = value.get("grid")
    grid = None if isinstance(grid, str) and grid == DEFAULT else grid
    if grid is not None and (not isinstance(grid, (list, tuple)) or not grid):
        raise ValueError(f"grid={grid!r} must be a non-empty list of values")
    if grid is None and name not in DEFAULT_GRIDS:
        raise ValueError(f"{name} has no default grid; give grid = [...] (default grids: "
                         f"{', '.join(DEFAULT_GRIDS)})")
    rule = value.get("select")
    if rule is not None and rule not in RULES:
        raise ValueError(f"select={rule!r} is unknown; allowed: {', '.join(RULES)}")
    extend = value.get("extend", 0)
    if extend:
        check_extensible(grid, extend)
    return Selection(None if grid is None else tuple(grid), rule, int(extend))


def selection_rule(selection: Selection, population: bool) -> str:
    """The rule in force: the written one, else population at n = ∞ and validation otherwise."""
    if selection.rule is not None:
        return selection.rule
    return POPULATION_RULE if population else VALIDATION


def split_selections(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Selection]]:
    """(plain parameters, selected parameters) of one regime configuration."""
    plain, selected = {}, {}
    for name, value in params.items():
        selection = as_selection(name, value)
        if selection is None:
            plain[name] = value
        else:
            selected[name] = selection
    return plain, selected


def _square_norms(features: Any) -> float:
    return float((features ** 2).sum(1).mean())


def _tangent_scale(predictor: NeuralTangentModel, x: torch.Tensor) -> float:
    """mean ‖φ(x)‖² of the NT features φ_i(x) = σ′(w_i·x) x (and σ(w_i·x) with a head)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    pre = x @ predictor.weights.T
    gates = predictor.activation.derivative().function(pre)
    norms = gates.pow(2).sum(1) * x.pow(2).sum(1)
    if predictor.head is not None:
        norms = norms + predictor.activation.function(pre).pow(2).sum(1)
    return float(norms.mean())


def _kernel_scale(predictor: KernelModel, x: torch.Tensor) -> float:
    """mean k(x, x) = trace(K)/n on at most :data:`SCALE_SAMPLES` inputs."""
    x = torch.as_tensor(x, dtype=torch.float64)[:SCALE_SAMPLES]
    return float(torch.diagonal(predictor.solution.kernel(x, x)).mean())


FEATURE_SCALES: dict[type, Callable[[Any, Any], float]] = {
    NeuralTangentModel: _tangent_scale, KernelModel: _kernel_scale}
"""Predictor type → mean ‖φ(x)‖² on inputs x; others use ``predictor.features(x)``."""


def feature_scale(predictor: Any, x: Any) -> float:
    """Mean squared feature norm of a fitted predictor on inputs ``x`` (n, d); 1.0 if unknown."""
    scale = FEATURE_SCALES.get(type(predictor))
    if scale is not None:
        value = scale(predictor, x)
    elif callable(getattr(predictor, "features", None)):
        value = _square_norms(predictor.features(x))
    else:
        return 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


@dataclass(frozen=True)
class Criterion:
    """How a fitted predictor is scored during selection (smaller is better).

    Attributes:
        score: ``predictor -> float``, the validation or population risk.
        scale_inputs: inputs on which ``"auto"`` grids measure the features' scale.
    """

    score: Callable[[Any], float]
    scale_inputs: Any


def _grids(selected: dict[str, Selection], scales: dict[str, float]) -> dict[str, tuple]:
    return {name: s.grid if s.grid is not None else DEFAULT_GRIDS[name](scales[name])
            for name, s in selected.items()}


def _scales(build: Callable[[dict], Any], reference_model: Callable[[Any], Any],
            plain: dict[str, Any], selected: dict[str, Selection],
            inputs: Any) -> dict[str, float]:
    """``NAME -> scale`` for every field on its default grid, else 1; ``reference_model`` maps
    the regime at the reference values to a predictor with its features (module docstring)."""
    auto = [name for name, s in selected.items() if s.grid is None]
    if not auto:
        return {name: 1.0 for name in selected}
    values = {name: (REFERENCE_VALUE if s.grid is None else s.grid[0])
              for name, s in selected.items()}
    scale = feature_scale(reference_model(build({**plain, **values})), inputs)
    return {name: (scale if name in auto else 1.0) for name in selected}


def _risk(predictor: Any, criterion: Criterion) -> float:
    risk = float(criterion.score(predictor))
    return risk if math.isfinite(risk) else math.inf


def _refit(regime: Any, fit: Callable[[Any], Any], criterion: Criterion) -> tuple[float, Any]:
    try:
        predictor = fit(regime)
    except DivergenceError:
        return math.inf, None
    return _risk(predictor, criterion), predictor


def _candidates(build: Callable[[dict], Any], plain: dict[str, Any], grids: dict[str, tuple],
                fit: Callable[[Any], Any], fit_path: Callable[[Any, list], list | None],
                criterion: Criterion):
    """Yield (grid index, risk, predictor) for every combination of the grids.

    A selected :data:`PATH_FIELD` is fitted by ``fit_path`` (the regime's whole ridge grid from
    one factorization) for each combination of the other fields; where that gives None, and
    for every other field, each value is fitted by ``fit`` on its own.
    """
    names = list(grids)
    axis = names.index(PATH_FIELD) if PATH_FIELD in grids else None
    others = [n for n in names if n != PATH_FIELD] if axis is not None else names
    for rest in itertools.product(*(range(len(grids[n])) for n in others)):
        values = {n: grids[n][i] for n, i in zip(others, rest)}
        if axis is None:
            yield (rest, *_refit(build({**plain, **values}), fit, criterion))
            continue
        ridges = list(grids[PATH_FIELD])
        path = fit_path(build({**plain, **values, PATH_FIELD: ridges[0]}), ridges)
        for k, ridge in enumerate(ridges):
            index = rest[:axis] + (k,) + rest[axis:]
            if path is not None:
                yield index, _risk(path[k], criterion), path[k]
            else:
                yield (index, *_refit(build({**plain, **values, PATH_FIELD: ridge}), fit,
                                      criterion))


def fit_with_selection(build: Callable[[dict], Any], plain: dict[str, Any],
                       selected: dict[str, Selection], train: Any, *,
                       fit_rng: Callable[[], np.random.Generator],
                       criterion: Criterion) -> tuple[Any, dict[str, float]]:
    """Fit every grid combination on ``train`` and keep the one ``criterion`` scores lowest.

    This function receives no test set: whatever it returns is decided before one is drawn.
    A selected ``ridge`` of a regime with ``fit_path`` is fitted along its grid from one
    factorization (module docstring); the choice is the same as by refitting, up to round-off.

    Args:
        build: ``params -> regime`` (the regime class).
        plain: the fixed fields. selected: the selected fields.
        train: the training set, or the task at n = ∞.
        fit_rng: returns a fresh generator of the run's fit stream (identical every call).
        criterion: the validation or population risk.

    Returns:
        (the predictor fitted at the chosen values, the selection metrics).

    Raises:
        DivergenceError: when every grid combination diverges.
    """
    def fit(regime: Any) -> Any:
        return regime.fit(train, rng=fit_rng())

    def reference(regime: Any) -> Any:
        method = getattr(regime, "initial_model", None)
        return fit(regime) if method is None else method(train, rng=fit_rng())

    def fit_path(regime: Any, ridges: list) -> list | None:
        method = getattr(regime, "fit_path", None)
        return None if method is None else method(train, ridges, rng=fit_rng())

    scales = _scales(build, reference, plain, selected, criterion.scale_inputs)
    grids = _grids(selected, scales)
    names = list(grids)
    best, best_key, diverged, unconverged = None, None, 0, 0
    for index, risk, predictor in _candidates(build, plain, grids, fit, fit_path, criterion):
        diverged += predictor is None or risk == math.inf
        unconverged += _unconverged(predictor)
        # a certified fit beats an unconverged one; then the least risk; ties go to the first
        # combination in grid order, whatever order they were fitted in
        key = (_unconverged(predictor), risk, index)
        if risk < math.inf and (best_key is None or key < best_key):
            best, best_key = predictor, key
    if best is None:
        raise DivergenceError(f"every value of the selection grid of {', '.join(names)} diverged")
    trials = Trials(best, best_key, diverged, unconverged)
    for name in names:
        if selected[name].extend:
            grids = extend_grid(name, selected[name].extend, grids, trials,
                                lambda values: _refit(build({**plain, **values}), fit, criterion),
                                _unconverged)
    metrics = _metrics(selected, grids, scales, trials.key[2], trials.key[1], trials.diverged)
    return trials.best, {**metrics, "selection_unconverged": float(trials.unconverged),
                         "selection_extended": float(trials.extended)}


CERTIFICATES = ("converged", "cg_converged")
"""Diagnostics that carry a fit's convergence certificate: trained networks, FALKON and NT's
SGD report ``converged``, conjugate-gradient fits (NT at n = ∞ and on samples) ``cg_converged``."""


def _unconverged(predictor: Any) -> bool:
    """True when the fit reports a convergence certificate that failed (any of
    :data:`CERTIFICATES` = 0); fits without a certificate (closed forms) count as converged."""
    diagnostics = getattr(predictor, "diagnostics", None) or {}
    return any(diagnostics.get(name, 1) == 0 for name in CERTIFICATES)


def _metrics(selected: dict[str, Selection], grids: dict[str, tuple], scales: dict[str, float],
             index: tuple[int, ...], risk: float, diverged: int) -> dict[str, float]:
    """The selection metrics of the choice at grid ``index`` (module docstring)."""
    names = list(grids)
    metrics = {"selection_risk": risk, "selection_diverged": float(diverged),
               "selection_at_edge": float(any(i in (0, len(grids[n]) - 1)
                                              for n, i in zip(names, index)))}
    for n, i in zip(names, index):
        metric = selected[n].metric(n)
        metrics[metric] = float(i if metric.endswith("_index") else grids[n][i])
        metrics[f"{n}_grid_scale"] = scales[n]
    return metrics
