"""Check a structurally valid spec against the registries and expand it into runs.

Rules (each violation is a :class:`~lazylab.experiments.spec.SpecError` naming the field):
* the task and every regime exist in the catalog; every parameter is one the builder or the
  dataclass declares; required ones are given; values have the declared type;
* a list is a grid (a list-typed parameter takes a list of lists); grids are non-empty;
* a regime field may be a selection (a ``{grid, select}`` table, or ``"auto"`` for a field with
  a default grid): every grid value has the declared type; ``select = "population"`` needs
  ``n_train = "population"`` only (:mod:`lazylab.experiments.selection`);
* a ``[sweep]`` key other than seeds/n_train/n_test/metrics is a grid applied to the task and to
  every regime that declares that field; it must be declared by at least one of them;
* parameters named ``activation`` or ``*_activation`` name a known activation;
* every task combination is built and every regime combination constructed once, so their own
  range checks (negative width, unknown matrix, …) fire here, before anything runs;
* ``n_train = "population"`` and the ``population_risk`` metric need a task with moments;
* the plot's x and series are run fields or metrics, y is a recorded metric, theory functions
  exist.
"""

from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from lazylab.activations import get_activation
from lazylab.experiments.catalog import ANY_NAME, Catalog, Parameter, regime_parameters
from lazylab.experiments.catalog import resolve_theory
from lazylab.experiments.catalog import task_parameters
from lazylab.experiments.resources import check_resources
from lazylab.experiments.runs import POPULATION, Run, make_run
from lazylab.experiments.selection import (POPULATION_RULE, REFERENCE_VALUE, Selection,
                                           as_selection, split_selections)
from lazylab.experiments.spec import SpecError, SpecFile

__all__ = ["Sweep", "STANDARD_METRICS", "TASK_METRICS", "RUN_FIELDS", "build_sweep", "column_name"]

STANDARD_METRICS = ("population_risk", "test_risk", "train_risk", "risk_normalized", "wall_time")
TASK_METRICS = ("classification_error_percent",)
"""Metrics a task earns by its kind (``classification``: lazylab.experiments.execute)."""
RUN_FIELDS = ("task", "regime", "n_train", "n_test", "seed")
DIAGNOSTIC_METRICS = ("steps", "steps_to_divergence", "samples_seen", "final_loss",
                      "final_train_loss", "initial_train_loss", "head_norm_max", "coef_norm_max",
                      "directions_norm_max", "weights_row_norm_rms", "ridge_chosen",
                      "validation_risk", "first_step_size_effective", "cg_iterations",
                      "cg_residual", "cg_converged", "kernel_residual", "n_centers", "streamed",
                      "pseudo_inverse", "weight_change", "head_change", "recent_loss",
                      "converged", "criterion", "tolerance", "stop_reason", "halvings",
                      "learning_rate", "rate_decays")
SELECTION_RECORD = ("selection_risk", "selection_diverged", "selection_at_edge",
                    "selection_unconverged", "selection_extended")
"""What model selection records besides ``selected_NAME`` and ``NAME_grid_scale``."""
"""Numeric diagnostics lazylab's regimes report (``predictor.diagnostics``), usable as metrics."""


@dataclass(frozen=True)
class Sweep:
    """A validated spec: the file, its structure, the runs, and the metrics it records.

    ``fields`` are the run-field columns of its results (``task.NAME``/``regime.NAME`` for a
    parameter both the task and a regime declare: those are the ``collisions``).
    """

    path: Path
    spec: SpecFile
    runs: tuple[Run, ...]
    metrics: tuple[str, ...]
    fields: tuple[str, ...]
    collisions: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.spec.name


def column_name(section: str, name: str, collisions: frozenset[str]) -> str:
    """A run field's column: its own name, or ``task.NAME``/``regime.NAME`` when both declare it."""
    return f"{section}.{name}" if name in collisions else name


def _check_value(parameter: Parameter, value: Any) -> Any:
    """Validate one value against the parameter's annotation (strict; lists may be tuples)."""
    if parameter.annotation is Any:
        return value
    adapter = TypeAdapter(parameter.annotation)
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as first:
        if not isinstance(value, list):
            raise ValueError(_type_message(parameter, value, first)) from None
        try:
            adapter.validate_python(tuple(value), strict=True)
        except ValidationError:
            raise ValueError(_type_message(parameter, value, first)) from None
    return value


def _type_message(parameter: Parameter, value: Any, error: ValidationError) -> str:
    message = error.errors()[0]["msg"]
    return f"{value!r} is not allowed: {message[:1].lower()}{message[1:]}"


def _accepts_whole(parameter: Parameter, value: list) -> bool:
    if parameter.annotation is Any:
        return False
    try:
        _check_value(parameter, value)
    except ValueError:
        return False
    return not all(isinstance(v, list) for v in value)


def _accepts(parameter: Parameter, value: Any) -> bool:
    try:
        _check_value(parameter, value)
    except ValueError:
        return False
    return True


def _selection(parameter: Parameter, value: Any, field: str, path: Path,
               selectable: bool) -> Selection | None:
    """The selection a regime field's value stands for (grid values type-checked), or None."""
    try:
        selection = as_selection(parameter.name, value, auto=not _accepts(parameter, value))
        if selection is not None and not selectable:
            raise ValueError("only regime fields can be selected; give a value or a list")
        for item in (selection.grid or ()) if selection is not None else ():
            _check_value(parameter, item)
            _check_activation(parameter.name, item)
    except ValueError as error:
        raise SpecError(path, field, str(error)) from None
    return selection


def _grid(parameter: Parameter, value: Any, field: str, path: Path,
          selectable: bool = False) -> list[Any]:
    """The list of values a spec entry stands for (a single value is a grid of one)."""
    selection = _selection(parameter, value, field, path, selectable)
    if selection is not None:
        return [selection]
    if isinstance(value, list) and not _accepts_whole(parameter, value):
        if not value:
            raise SpecError(path, field, "empty grid; give at least one value")
        values = value
    else:
        values = [value]
    for item in values:
        try:
            _check_value(parameter, item)
            _check_activation(parameter.name, item)
        except ValueError as error:
            raise SpecError(path, field, str(error)) from None
    return values


def _check_activation(name: str, value: Any) -> None:
    if (name == "activation" or name.endswith("_activation")) and isinstance(value, str):
        get_activation(value)


def _expand(declared: dict[str, Parameter], given: dict[str, Any], shared: dict[str, Any],
            section: str, owner: str, path: Path) -> list[dict[str, Any]]:
    """All parameter combinations of one task or regime, grids from ``given`` and ``shared``."""
    declared = dict(declared)
    if ANY_NAME in declared:  # a builder taking **params accepts any further name, untyped
        del declared[ANY_NAME]
        declared.update({n: Parameter(n) for n in given if n not in declared})
    for name in given:
        if name not in declared:
            allowed = ", ".join(["name", *declared]) or "name"
            raise SpecError(path, f"{section}.{name}", f"unknown field for {owner!r}; allowed: {allowed}")
        if name in shared:
            raise SpecError(path, f"sweep.{name}", f"also given in [{section.split('[')[0]}]; "
                            "give each field in one place")
    merged = {**given, **{k: v for k, v in shared.items() if k in declared}}
    for name, parameter in declared.items():
        if parameter.required and name not in merged:
            raise SpecError(path, f"{section}.{name}", f"required by {owner!r} and not given")
    names = sorted(merged)
    grids = [_grid(declared[n], merged[n], f"{'sweep' if n in shared else section}.{n}", path,
                   selectable=section != "task") for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*grids)]


def _lookup(registry: dict[str, Any], name: str, field: str, kind: str, path: Path) -> Any:
    if name not in registry:
        raise SpecError(path, field, f"unknown {kind} {name!r}; allowed: {', '.join(sorted(registry))}")
    return registry[name]


def _build_tasks(builder: Any, combos: list[dict[str, Any]], path: Path,
                 shared: dict[str, Any]) -> list[bool]:
    """Build each task combination once (its own checks fire); return ``has_moments`` each."""
    moments = []
    for combo in combos:
        try:
            task = builder(rng=np.random.default_rng(0), **_tuples(combo))
        except (ValueError, TypeError) as error:
            raise SpecError(path, _blamed_field("task", error, combo, shared), str(error)) from None
        except (RuntimeError, MemoryError) as error:  # e.g. torch cannot allocate d × d
            first = (str(error).strip().splitlines() or [""])[0][:200]
            field = _blamed_field("task", error, combo, shared)
            if field == "task" and "dim" in combo:  # the allocation's size is the dimension's
                field = "sweep.dim" if "dim" in shared else "task.dim"
            raise SpecError(path, field, f"building the task failed ({type(error).__name__}: "
                            f"{first}); use smaller sizes") from None
        moments.append(bool(getattr(task, "has_moments", False)))
    return moments


def _check_regimes(regime: type, combos: list[dict[str, Any]], section: str, path: Path,
                   shared: dict[str, Any], n_train: tuple[Any, ...]) -> None:
    """Construct each combination, and each grid value of a selected field (``auto``: 1.0)."""
    for combo in combos:
        plain, selected = split_selections(combo)
        variants = [plain]
        for name, selection in selected.items():
            if selection.rule == POPULATION_RULE and any(n != POPULATION for n in n_train):
                raise SpecError(path, f"sweep.{name}" if name in shared else f"{section}.{name}",
                                "select = \"population\" needs n_train = \"population\" only "
                                "(the population risk is an oracle at finite n); allowed: "
                                "select = \"validation\"")
            grid = selection.grid or (REFERENCE_VALUE,)
            plain[name] = grid[0]
            variants.extend({name: value} for value in grid[1:])
        for variant in variants:
            try:
                regime(**_tuples({**plain, **variant}))
            except (ValueError, TypeError) as error:
                raise SpecError(path, _blamed_field(section, error, combo, shared),
                                str(error)) from None


def _blamed_field(section: str, error: Exception, combo: dict[str, Any],
                  shared: dict[str, Any]) -> str:
    """The field an error message names (longest parameter mentioned), else the section."""
    text = str(error)
    named = [n for n in combo if n in text]
    if not named:
        return section
    name = max(named, key=len)
    return f"sweep.{name}" if name in shared else f"{section}.{name}"


def _tuples(combo: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in combo.items()}


def build_sweep(spec: SpecFile, path: str | Path, catalog: Catalog, *,
                max_memory_gb: float | str | None = None) -> Sweep:
    """Validate ``spec`` against ``catalog`` and expand it into its runs (deduplicated).

    ``max_memory_gb`` overrides every other memory limit of the size check
    (:func:`~lazylab.experiments.resources.memory_limit`).
    """
    path = Path(path)
    builder = _lookup(dict(catalog.tasks), spec.task.name, "task.name", "task", path)
    task_declared = task_parameters(builder)
    regime_declared = {}
    for index, section in enumerate(spec.regime):
        regime = _lookup(dict(catalog.regimes), section.name, f"regime[{index}].name", "regime", path)
        regime_declared[index] = (regime, regime_parameters(regime))
    shared = dict(spec.sweep.grids)
    for name in shared:
        if name not in task_declared and not any(name in d for _, d in regime_declared.values()):
            allowed = sorted({"seeds", "n_train", "n_test", "validation_size", "metrics", "max_memory_gb",
                              *task_declared,
                              *(n for _, d in regime_declared.values() for n in d)})
            raise SpecError(path, f"sweep.{name}", f"no task or regime field of that name; "
                            f"allowed: {', '.join(allowed)}")
    task_combos = _expand(task_declared, spec.task.params, shared, "task", spec.task.name, path)
    regime_combos = []
    for index, section in enumerate(spec.regime):
        regime, declared = regime_declared[index]
        combos = _expand(declared, section.params, shared, f"regime[{index}]", section.name, path)
        _check_regimes(regime, combos, f"regime[{index}]", path, shared, spec.sweep.n_train)
        regime_combos.extend((section.name, c) for c in combos)
    check_resources(spec, path, task_declared, task_combos, regime_combos,
                    {s.name: regime_declared[i][1] for i, s in enumerate(spec.regime)},
                    max_memory_gb=max_memory_gb)
    moments = _build_tasks(builder, task_combos, path, shared)
    metrics = _metrics(spec, all(moments), path, _selection_metrics(regime_combos),
                       tuple(r for r, _ in regime_declared.values()))
    runs = _runs(spec, task_combos, regime_combos)
    regime_names = list(dict.fromkeys(k for _, p in regime_combos for k in p))
    task_names = list(dict.fromkeys(k for c in task_combos for k in c))
    collisions = frozenset(regime_names) & frozenset(task_names)
    fields = tuple(dict.fromkeys([*RUN_FIELDS, *(column_name("regime", k, collisions)
                                                 for k in regime_names),
                                  *(column_name("task", k, collisions) for k in task_names)]))
    sweep = Sweep(path, spec, runs, metrics, fields, collisions)
    _check_plot(sweep, catalog)
    return sweep


def _selection_metrics(regime_combos: list[tuple[str, dict]]) -> tuple[str, ...]:
    """``selected_NAME`` (or ``selected_NAME_index``) of every selected field, then the edge flag."""
    names = tuple(dict.fromkeys(s.metric(n) for _, c in regime_combos
                                for n, s in split_selections(c)[1].items()))
    return (*names, "selection_at_edge") if names else ()


def _metrics(spec: SpecFile, has_moments: bool, path: Path, selection: tuple[str, ...] = (),
             regimes: tuple[type, ...] = ()) -> tuple[str, ...]:
    """The recorded metrics; a named one must be standard or a diagnostic a regime reports
    (:data:`DIAGNOSTIC_METRICS`, or listed in a regime class's ``DIAGNOSTICS``)."""
    allowed = list(dict.fromkeys([*STANDARD_METRICS, *TASK_METRICS, *DIAGNOSTIC_METRICS,
                                  *selection, *SELECTION_RECORD,
                                  *(n for r in regimes for n in getattr(r, "DIAGNOSTICS", ()))]))
    population = POPULATION in spec.sweep.n_train
    if population and not has_moments:
        raise SpecError(path, "sweep.n_train", f"\"population\" needs a task with population "
                        f"moments and {spec.task.name!r} has none here; allowed: positive integers")
    if spec.sweep.metrics is None:
        finite = any(n != POPULATION for n in spec.sweep.n_train)
        return tuple(m for m in STANDARD_METRICS
                     if (m != "population_risk" or has_moments) and (m != "train_risk" or finite)
                     ) + selection
    for metric in spec.sweep.metrics:
        if metric == "population_risk" and not has_moments:
            raise SpecError(path, "sweep.metrics", f"population_risk needs a task with moments "
                            f"and {spec.task.name!r} has none here; allowed: "
                            + ", ".join(m for m in STANDARD_METRICS if m != "population_risk")
                            + ", or a regime diagnostic")
        selection_record = metric.startswith("selected_") or metric.endswith("_grid_scale")
        checkpoint = re.fullmatch(r"population_risk_at_\d+", metric) is not None
        if metric not in allowed and not selection_record and not checkpoint:
            raise SpecError(path, "sweep.metrics", f"unknown metric {metric!r}; allowed: "
                            f"{', '.join(allowed)}, population_risk_at_<t> (checkpoints)")
    return tuple(dict.fromkeys(spec.sweep.metrics))


def _runs(spec: SpecFile, task_combos: list[dict], regime_combos: list[tuple[str, dict]]):
    runs = {}
    for seed, task, (regime, params), n_train in itertools.product(
            spec.sweep.seeds, task_combos, regime_combos, spec.sweep.n_train):
        validation = None
        if split_selections(params)[1]:
            validation = spec.sweep.validation_size or spec.sweep.n_test
        run = make_run(spec.task.name, task, regime, params,
                       None if n_train == POPULATION else n_train, spec.sweep.n_test, seed,
                       validation)
        runs.setdefault(run.run_id, run)
    return tuple(runs.values())


def _check_plot(sweep: Sweep, catalog: Catalog) -> None:
    plot, path = sweep.spec.plot, sweep.path
    if plot is None:
        return
    for name, allowed in (("x", (*sweep.fields, *sweep.metrics)), ("y", sweep.metrics),
                          ("series", sweep.fields)):
        value = getattr(plot, name)
        if value not in allowed:
            what = "a recorded metric" if name == "y" else "a run field or recorded metric"
            raise SpecError(path, f"plot.{name}", f"{value!r} is not {what}; allowed: "
                            f"{', '.join(allowed)}")
    task_fields = {k for run in sweep.runs for k, _ in run.task_params}
    for reference in plot.theory:
        try:
            _check_theory_signature(resolve_theory(catalog, reference), reference, task_fields)
        except ValueError as error:
            raise SpecError(path, "plot.theory", str(error)) from None


def _check_theory_signature(function: Any, reference: str, task_fields: set[str]) -> None:
    """A theory callable must be callable as f(x_values, **task_params[, task=instance])."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not parameters or parameters[0].kind not in (*positional, inspect.Parameter.VAR_POSITIONAL):
        raise ValueError(f"{reference} must take the x values as its first argument")
    for parameter in parameters[1:]:
        required = parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        if required and parameter.name not in task_fields | {"task"}:
            raise ValueError(f"{reference} needs {parameter.name!r}, which is neither a task "
                             f"parameter of this spec nor 'task'; theory curves are called as "
                             f"f(x_values, **task_params, task=instance)")
