"""The reference of the TOML spec format, generated from the code (``docs/specs.md``).

Read at call time from where each thing is defined: the sections from the pydantic models of
:mod:`.spec`; tasks (``lazylab.tasks.TASKS``: keyword parameters, annotations, defaults,
docstrings); regimes (``lazylab.models.REGIMES``: dataclass fields); activations
(``lazylab.activations.ACTIVATIONS``); metrics (:mod:`.validate`, :mod:`.selection`); theory curves
(the modules of ``lazylab.theory``, by the signature rule of :mod:`.validate`). The prose (one-line
meanings of spec fields and metrics, examples) is :mod:`.reference_notes`.

    python -m lazylab.experiments.reference docs/specs.md     # or: … reference > docs/specs.md
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from lazylab import activations, models, tasks, theory
from lazylab.experiments import selection, spec, validate
from lazylab.experiments.catalog import ANY_NAME, Parameter, regime_parameters, task_parameters
from lazylab.experiments.reference_notes import (COMMON_NOTES, EXAMPLES, FIELD_FORMS,
                                                 FIELD_NOTES, METRIC_NOTES, SELECTION_SYNTAX)

__all__ = ["spec_reference", "registry_listing", "LISTING_KINDS", "theory_curves", "type_name",
           "toml_value", "argument_notes", "main"]

SECTIONS = (("", spec.SpecFile), ("task", spec.TaskSection), ("regime", spec.RegimeSection),
            ("sweep", spec.SweepSection), ("plot", spec.PlotSection))
FREE_FORM = ("params", "grids")  # the models' catch-alls for task/regime/shared-grid keys


def type_name(annotation: Any) -> str:
    """A type as a spec writer reads it: integer, float, "a" | "b", list of …, table, any."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return "any"
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in arguments)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in arguments if a is not type(None)]
        return " | ".join(names)
    if origin in (tuple, list):
        inner = [a for a in arguments if a is not Ellipsis] or [Any]
        item = type_name(inner[0])
        item = "tables" if item == "table" else item
        return f"list of ({item})" if " | " in item else f"list of {item}"
    if origin is dict or annotation is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {int: "integer", float: "float", str: "string", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def toml_value(value: Any) -> str:
    """A default as it is written in TOML (``unset`` for None)."""
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "all defaults"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"  # no repr: it may hold a memory address


def _default(parameter: Parameter) -> str:
    return "required" if parameter.required else toml_value(parameter.default)


def summary(obj: Any) -> str:
    """The first paragraph of a docstring, on one line."""
    paragraph = (inspect.getdoc(obj) or "").split("\n\n")[0]
    return plain(" ".join(line.strip() for line in paragraph.splitlines()))


def plain(text: str) -> str:
    """Docstring markup as markdown: ``x`` and :role:`x` become `x`."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text.replace("``", "`"))


def argument_notes(obj: Any, names: set[str]) -> dict[str, str]:
    """Descriptions of ``names`` from the ``Args:``/``Attributes:`` block of a docstring.

    Handles several arguments on one line (``width: N ≥ 1. activation: σ.``) and shared entries
    (``weight_scale, head_scale: …``); a name not described is absent.
    """
    lines = (inspect.getdoc(obj) or "").splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.strip() in ("Args:", "Arguments:", "Attributes:")), None)
    if start is None:
        return {}
    block = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line.strip())
    text = " ".join(block)
    matches = [m for m in re.finditer(r"(?:^|(?<=\s))((?:\w+, )*\w+): ", text)
               if all(n in names for n in m.group(1).split(", "))]
    notes = {}
    for match, after in zip(matches, [*matches[1:], None]):
        note = text[match.end(): after.start() if after else len(text)].strip()
        notes.update(dict.fromkeys(match.group(1).split(", "), plain(note)))
    return notes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _parameter_rows(parameters: dict[str, Parameter], owner: Any) -> list[tuple[str, ...]]:
    notes = argument_notes(owner, set(parameters))
    rows = [(f"`{p.name}`", type_name(p.annotation), _default(p),
             notes.get(p.name) or COMMON_NOTES.get(p.name, ""))
            for p in parameters.values() if p.name != ANY_NAME]
    if ANY_NAME in parameters:
        rows.append(("any other key", "any", "", "passed to the builder as it is"))
    return rows


def _section_rows(section: str, model: Any) -> list[tuple[str, ...]]:
    rows = []
    for name, field in model.model_fields.items():
        if name in FREE_FORM:
            continue
        key = f"{section}.{name}" if section else name
        default = "required" if field.is_required() else toml_value(
            field.get_default(call_default_factory=True))
        written, default = FIELD_FORMS.get(key, (type_name(field.annotation), default))
        rows.append((f"`{name}`", written, default, FIELD_NOTES.get(key, "")))
    return rows


def _sections() -> list[str]:
    out = ["## Sections", ""]
    for section, model in SECTIONS:
        title = {"": "Top level", "regime": "[[regime]]"}.get(section, f"[{section}]")
        out += [f"### {title}", "", summary(model), ""]
        out += _table(("field", "type", "default", "meaning"), _section_rows(section, model))
        if section == "sweep":
            out += ["", "Any other key of `[sweep]` is a value or grid given to the task and to "
                    "every regime that declares a field of that name."]
        if section == "plot":
            fields = ", ".join(f"`{f}`" for f in validate.RUN_FIELDS)
            out += ["", f"Run fields: {fields}, and every task or regime parameter the spec "
                    "gives (`task.NAME`/`regime.NAME` when both declare `NAME`)."]
        out.append("")
    return out


def _selection_section() -> list[str]:
    grids = ", ".join(f"`{name}` ({toml_value(list(make(1.0)))} times the features' scale)"
                      for name, make in selection.DEFAULT_GRIDS.items())
    return ["## Values, grids and model selection", "",
            "A value of the declared type is one value; a list is a grid, one run per value "
            "(a parameter whose type is a list takes a list of lists). A regime field may "
            "instead be *selected* (see docs/selection.md):", "",
            *_table(("written", "meaning"), [(f"`{w}`", m) for w, m in SELECTION_SYNTAX]), "",
            f"Rules (`select`): {', '.join(json.dumps(r) for r in selection.RULES)}. "
            f"Fields with a default grid: {grids}.", ""]


def _registry_sections(title: str, registry: dict[str, Any],
                       parameters: Callable[[Any], dict[str, Parameter]]) -> list[str]:
    out = [f"## {title}", ""]
    for name, entry in registry.items():
        out += [f"### `{name}`", "", summary(entry), ""]
        rows = _parameter_rows(parameters(entry), entry)
        out += _table(("parameter", "type", "default", "meaning"), rows) if rows else ["No "
                                                                                     "parameters."]
        out.append("")
    return out


def _composite(components: Any) -> str:
    """c₁·a(±u) + c₂·b(±u) as text: abs → relu(u) + relu(−u)."""
    terms = []
    for index, c in enumerate(components):
        sign = "−" if c.coefficient < 0 else ("+" if index else "")
        size = "" if abs(c.coefficient) == 1 else f"{abs(c.coefficient):g}·"
        terms.append(f"{sign} {size}{c.base}({'−' if c.flip else ''}u)".strip())
    return " ".join(terms)


def _activation_row(name: str, activation: Any) -> tuple[str, str, str, str]:
    family = getattr(activation.family, "name", activation.family)
    if activation.coefficients is not None:
        form = f"polynomial of degree {len(activation.coefficients) - 1}"
    elif activation.components is not None:
        form = _composite(activation.components)
    else:
        form = f"{family} family" if family else "quadrature"
    try:
        derivative = activation.derivative()
    except ValueError:  # σ jumps: σ′ has a Dirac part and is not a function
        derivative = None
    if derivative is None:
        text = "none (σ jumps)"
    elif activation.derivative_name is not None:
        text = activation.derivative_name
    elif activation.coefficients is not None or activation.derivative_function is not None:
        text = "closed form"
    else:
        text = "autograd"
    kinks = ", ".join(f"{k:g}" for k in activation.kinks) or "none"
    return name, form, text, kinks


def _activation_rows() -> list[tuple[str, str, str, str]]:
    rows = [_activation_row(n, a) for n, a in activations.ACTIVATIONS.items()]
    return rows + [("monomialK", "polynomial of degree K (u^K, any K ≥ 0)", "closed form", "none")]


def _metric_rows() -> list[tuple[str, str, str]]:
    rows = [(m, "standard", METRIC_NOTES.get(m, "")) for m in validate.STANDARD_METRICS]
    rows += [(m, "classification tasks", METRIC_NOTES.get(m, "")) for m in validate.TASK_METRICS]
    numeric, other = selection.Selection((1.0,)), selection.Selection(("a",))
    names = [numeric.metric("NAME"), other.metric("NAME"), "NAME_grid_scale", "selection_risk",
             "selection_at_edge", "selection_diverged", "selection_unconverged"]
    rows += [(m, "selected fields", METRIC_NOTES.get(m, "")) for m in names]
    rows.append(("population_risk_at_<t>", "diagnostic (network online, neural_tangent sgd)",
                 "the exact risk after t steps of the same run, one per checkpoint "
                 "(`lazylab.experiments.learning_curve` reads them as a curve)"))
    return rows + _diagnostic_rows()


def _diagnostic_rows() -> list[tuple[str, str, str]]:
    """Named diagnostics: ``validate.DIAGNOSTIC_METRICS`` and each regime's ``DIAGNOSTICS``
    (where the code declares them), with the regimes declaring each."""
    declared: dict[str, list[str]] = {m: [] for m in getattr(validate, "DIAGNOSTIC_METRICS", ())}
    for name, regime in models.REGIMES.items():
        for metric in getattr(regime, "DIAGNOSTICS", ()):
            declared.setdefault(metric, []).append(name)
    return [(m, "diagnostic" + (f" ({', '.join(r)})" if r else ""),
             METRIC_NOTES.get(m, "reported by the regimes that compute it"))
            for m, r in declared.items()]


def theory_curves() -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(reference, x argument, other required arguments, tasks supplying them) of every public
    function of ``lazylab.theory``'s modules that takes the x values as its first argument."""
    curves = []
    for info in pkgutil.iter_modules(theory.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{theory.__name__}.{info.name}")
        for name, function in vars(module).items():
            if (name.startswith("_") or not inspect.isfunction(function)
                    or function.__module__ != module.__name__):
                continue
            parameters = list(inspect.signature(function).parameters.values())
            positional = (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD)
            if not parameters or parameters[0].kind not in positional:
                continue
            needs = tuple(p.name for p in parameters[1:] if p.default is inspect.Parameter.empty
                          and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "task")
            supplied = tuple(t for t, b in tasks.TASKS.items()
                             if set(needs) <= set(task_parameters(b)) or ANY_NAME in
                             task_parameters(b))
            curves.append((f"{info.name}.{name}", parameters[0].name, needs, supplied))
    return curves


def _supplied(needs: tuple[str, ...], supplied: tuple[str, ...]) -> str:
    return "any task" if not needs else (", ".join(supplied) or "none")


def _theory_section() -> list[str]:
    rows = [(f"`{ref}`", f"`{x}`", ", ".join(needs) or "—", _supplied(needs, supplied))
            for ref, x, needs, supplied in theory_curves()]
    return ["## Theory curves", "",
            "`[plot] theory = [\"module.function\", …]` draws `function(x_values, "
            "**task_params)` over the plot's x values, for a function of a module of "
            "`lazylab.theory` (or of a dotted module path). Validation accepts a function whose "
            "first argument takes the x values and whose other required arguments are task "
            "parameters of the spec or `task` (the task instance); the check is by name, so the "
            "parameter must also mean what the function expects (a task's `delta` preset name is "
            "not the matrix Δ). The functions that take the x values first:", "",
            *_table(("curve", "x", "also needs", "tasks naming them"), rows), ""]


def spec_reference() -> str:
    """The whole reference of the spec format as a markdown document (``docs/specs.md``)."""
    out = ["# The spec format", "",
           "<!-- Generated from the code by `python -m lazylab.experiments.reference "
           "docs/specs.md`; do not edit by hand. -->", "",
           "A spec is a TOML file: a `[task]`, one or more `[[regime]]` tables, a `[sweep]` and "
           "an optional `[plot]`. `lazylab run SPEC` validates it against the registries below "
           "and runs every combination; `lazylab plot SPEC` draws it. Every error names the "
           "file, the field and what is allowed.", ""]
    out += _sections() + _selection_section()
    out += _registry_sections("Tasks", tasks.TASKS, task_parameters)
    out += _registry_sections("Regimes", models.REGIMES, regime_parameters)
    out += ["## Activations", "", "Any field named `activation` or `*_activation` takes one of "
            "these names.", "", *_table(("name", "closed form", "σ′", "kinks"), _activation_rows()),
            "", "## Metrics", "", "Names for `[sweep] metrics` and `[plot] x`/`y`; `NAME` is a "
            "selected field. Any other numeric diagnostic a regime reports is recorded too.", "",
            *_table(("metric", "recorded for", "meaning"), _metric_rows()), ""]
    out += _theory_section() + ["## Examples", "", "Each example is a complete spec; the test "
                                "suite validates every one."]
    for title, text in EXAMPLES:
        out += ["", f"### {title}", "", "```toml", text.rstrip("\n"), "```"]
    return "\n".join(out) + "\n"


def _parameter_text(parameters: dict[str, Parameter]) -> str:
    return " ".join(f"{p.name}={_default(p)}" for p in parameters.values() if p.name != ANY_NAME)


_LISTINGS: dict[str, Callable[[], list[tuple[str, str, str]]]] = {
    "tasks": lambda: [(n, summary(b), _parameter_text(task_parameters(b)))
                      for n, b in tasks.TASKS.items()],
    "regimes": lambda: [(n, summary(r), _parameter_text(regime_parameters(r)))
                        for n, r in models.REGIMES.items()],
    "activations": lambda: [(n, f"{form}; σ′: {d}; kinks: {k}", "")
                            for n, form, d, k in _activation_rows()],
    "metrics": lambda: [(n, f"({when}) {note}", "") for n, when, note in _metric_rows()],
    "theory": lambda: [(ref, f"x = {x}" + (f"; also needs {', '.join(needs)}" if needs else "")
                        + f"; tasks: {_supplied(needs, supplied)}", "")
                       for ref, x, needs, supplied in theory_curves()],
}
"""kind → rows (name, summary, details) for the terminal."""


LISTING_KINDS = tuple(_LISTINGS)


def registry_listing(kind: str) -> str:
    """A compact plain-text table of one registry (``lazylab list KIND``).

    Raises:
        ValueError: ``kind`` is not one of :data:`LISTING_KINDS`.
    """
    if kind not in LISTING_KINDS:
        raise ValueError(f"kind={kind!r} is unknown; allowed: {', '.join(LISTING_KINDS)}")
    rows = _LISTINGS[kind]()
    width = max((len(name) for name, _, _ in rows), default=0)
    lines = []
    for name, text, details in rows:
        lines.append(f"{name:<{width}}  {text}".rstrip())
        if details:
            lines.append(f"{'':<{width}}    {details}")
    return "\n".join(lines) + "\n"


def main(arguments: list[str]) -> int:
    """Write the reference to the path given, or to standard output (UTF-8)."""
    text = spec_reference()
    if arguments:
        Path(arguments[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
