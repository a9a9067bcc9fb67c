"""The registries a sweep draws on, and what their signatures say about valid parameters.

A :class:`Catalog` bundles the task builders (``lazylab.tasks.TASKS``), the regimes
(``lazylab.models.REGIMES``), the risk functions (``lazylab.risk``) and the theory package
(``lazylab.theory``). :func:`default_catalog` bundles lazylab's own; tests pass their own catalog
built on the same contract (``docs/CONTRACTS.md``).

Parameter introspection:
* a task builder declares its parameters as keyword-only arguments with annotations and
  defaults (``rng`` excluded);
* a regime is a frozen keyword-only dataclass; its fields and type hints are its parameters.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from lazylab.models import REGIMES
from lazylab.risk import empirical_risk, population_risk, supports_population_risk
from lazylab.tasks import TASKS

__all__ = ["Catalog", "Parameter", "default_catalog", "task_parameters", "regime_parameters",
           "resolve_theory", "ANY_NAME"]

_MISSING = inspect.Parameter.empty
ANY_NAME = "**"  # key present when a builder takes **params: any further name is accepted


@dataclass(frozen=True)
class Parameter:
    """One parameter of a task builder or regime: name, annotation (or Any), default."""

    name: str
    annotation: Any = Any
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class Catalog:
    """Everything a run needs to look up by name.

    Attributes:
        tasks: name → builder ``build(*, rng, **params) -> Task``.
        regimes: name → frozen keyword-only dataclass with ``fit(data_or_task, *, rng)``.
        empirical_risk: ``(predictor, data) -> float``.
        population_risk: ``(predictor, task) -> scalar`` (None as a result: no exact risk for
            this predictor), or None when unavailable altogether.
        theory_package: dotted name of the package holding theory curves.
    """

    tasks: Mapping[str, Callable[..., Any]]
    regimes: Mapping[str, type]
    empirical_risk: Callable[[Any, Any], Any]
    population_risk: Callable[[Any, Any], Any] | None = None
    theory_package: str = "lazylab.theory"


def default_catalog() -> Catalog:
    """The catalog of lazylab's own registries: ``TASKS``, ``REGIMES`` and ``lazylab.risk``."""

    def exact_risk(predictor, task):
        return population_risk(predictor, task) if supports_population_risk(predictor) else None

    return Catalog(tasks=TASKS, regimes=REGIMES, empirical_risk=empirical_risk,
                   population_risk=exact_risk)


def task_parameters(builder: Callable[..., Any]) -> dict[str, Parameter]:
    """Keyword-only parameters of a task builder (``rng`` excluded), by name."""
    signature = inspect.signature(builder)
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # unresolvable forward references: fall back to no type checking
        hints = {}
    parameters = {}
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            parameters[ANY_NAME] = Parameter(ANY_NAME)
        elif name != "rng" and parameter.kind in named:
            parameters[name] = Parameter(name, hints.get(name, Any), parameter.default)
    return parameters


def regime_parameters(regime: type) -> dict[str, Parameter]:
    """Init fields of a regime dataclass with their type hints and defaults, by name."""
    if not dataclasses.is_dataclass(regime):
        raise TypeError(f"regime {regime!r} is not a dataclass")
    try:
        hints = typing.get_type_hints(regime)
    except Exception:
        hints = {}
    parameters = {}
    for field in dataclasses.fields(regime):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = _MISSING
        parameters[field.name] = Parameter(field.name, hints.get(field.name, Any), default)
    return parameters


def resolve_theory(catalog: Catalog, reference: str) -> Callable[..., Any]:
    """Look up a theory curve ``"module.function"`` in the catalog's theory package.

    ``module`` is looked up inside ``catalog.theory_package`` (``lazylab.theory``) first and,
    when it is itself a dotted path, as an absolute module (``lazylab.studies.ghorbani.curve``).

    Protocol: ``function(x_values: numpy.ndarray, **params) -> numpy.ndarray`` of the shape of
    ``x_values``, where ``params`` are the task parameters of the sweep (only those the
    signature names are passed, unless it takes ``**kwargs``) and, when the signature names
    ``task``, the task instance itself (built from the first seed's task stream, the instance
    every run of that seed saw), e.g. to read a target matrix.

    Raises:
        ValueError: naming the reference when the module or the function does not exist.
    """
    module_name, _, function_name = reference.rpartition(".")
    if not module_name or not function_name:
        raise ValueError(f"theory reference {reference!r} must look like 'module.function'")
    candidates = [f"{catalog.theory_package}.{module_name}"]
    if "." in module_name:
        candidates.append(module_name)
    module, failure = None, None
    for name in candidates:
        try:
            module = importlib.import_module(name)
            break
        except ImportError as error:
            failure = failure or error
    if module is None:
        raise ValueError(f"no theory module {candidates[0]!r} ({failure}); available: "
                         f"{', '.join(_theory_modules(catalog.theory_package)) or 'none'}")
    function = getattr(module, function_name, None)
    if not callable(function):
        public = sorted(n for n in dir(module) if not n.startswith("_")
                        and callable(getattr(module, n)))
        raise ValueError(f"{module.__name__} has no function {function_name!r}; "
                         f"available: {', '.join(public) or 'none'}")
    return function


def _theory_modules(package: str) -> list[str]:
    """Public modules of the theory package (for error messages)."""
    try:
        location = importlib.import_module(package).__path__
    except (ImportError, AttributeError):
        return []
    return sorted(m.name for m in pkgutil.iter_modules(location) if not m.name.startswith("_"))
