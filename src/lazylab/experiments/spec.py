"""Sweep specifications: the TOML file, its structural schema, and one-line errors.

A spec file (see ``examples/``)::

    name = "rf-vs-nt"              # optional; defaults to the file stem
    description = "…"              # optional

    [task]                         # one task: its registry name and builder parameters
    name = "quadratic"
    dim = 20
    matrix = ["identity", "exp-diagonal"]     # any list is a grid

    [[regime]]                     # one table per regime: registry name and its fields
    name = "random_features"
    activation = "relu"

    [sweep]
    width = [10, 20, 40]           # a grid applied to the task and every regime declaring it
    n_train = [100, "population"]  # positive integers and/or "population" (n = ∞)
    n_test = 1000                  # test samples (default 1000)
    validation_size = 1000         # validation samples for selected fields (default: n_test)
    seeds = 5                      # a count (0…4) or a list of non-negative integers
    metrics = ["population_risk", "risk_normalized"]   # optional; default: all that apply
    max_memory_gb = 64             # optional: the memory a run may use (default: available)

    [plot]                         # optional; for `lazylab plot`
    x = "width"                    # a run field or a recorded metric
    y = "risk_normalized"          # a recorded metric
    series = "regime"              # a run field; one line per value (default "regime")
    log_x = true                   # log_y, error_bars (true), title, output (file stem)
    theory = ["ghorbani_quadratic.random_features_risk"]   # lazylab.theory callables
    formats = ["png", "pdf"]

A parameter whose own type is a list takes a list of lists to make a grid. A regime field may
instead be *selected* (``ridge = { grid = [1e-6, 1e-3, 1], select = "validation" }`` or
``ridge = "auto"``): fitted at every grid value and chosen on a validation split or, at n = ∞,
by the exact population risk, before the test set is drawn (:mod:`lazylab.experiments.selection`,
``docs/selection.md``). Metrics: the
standard ones (``population_risk``, ``test_risk``, ``train_risk``, ``risk_normalized``,
``wall_time``) and any diagnostic a regime reports (CG iterations, head norm, steps to
divergence, …). This module checks the structure with pydantic (unknown keys, types, signs);
the semantic checks against the registries live in :mod:`lazylab.experiments.validate`. Every
failure is a :class:`SpecError` that renders as one line ``FILE: FIELD: message``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lazylab._checks import POPULATION

__all__ = ["SpecError", "TaskSection", "RegimeSection", "SweepSection", "PlotSection",
           "SpecFile", "read_spec_file", "parse_spec"]

NTrain = Union[int, Literal["population"]]


class SpecError(ValueError):
    """A malformed spec, store or option: names the file, the field and what is allowed."""

    def __init__(self, file: str | Path, field: str, message: str) -> None:
        self.file, self.field, self.message = str(file), field, message
        super().__init__(f"{self.file}: {field}: {message}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TaskSection(_Frozen):
    """``[task]``: the task name and its builder parameters (values or grids)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RegimeSection(_Frozen):
    """One ``[[regime]]`` table: the regime name and its fields (values or grids)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class SweepSection(_Frozen):
    """``[sweep]``: seeds, sample sizes, metrics, and grids shared by task and regimes.

    ``seeds`` is a list of non-negative integers or a count K meaning ``0 … K-1``;
    ``n_train`` is a positive integer, ``"population"`` (fit at n = ∞), or a list of those.
    ``validation_size`` (default ``n_test``) is the size of the validation split that selected
    fields are chosen on; it enters the identity of those runs only. ``max_memory_gb``
    (positive, ``inf`` to disable) replaces the available memory in the size check of
    :mod:`lazylab.experiments.resources`; it enters no run's identity.
    """

    seeds: tuple[int, ...] = (0,)
    n_train: tuple[NTrain, ...] = (POPULATION,)
    n_test: int = Field(default=1000, gt=0)
    validation_size: int | None = Field(default=None, gt=0)
    metrics: tuple[str, ...] | None = None
    max_memory_gb: float | None = Field(default=None, gt=0)
    grids: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value <= 0:
                raise ValueError(f"a seed count must be positive, got {value}")
            return tuple(range(value))
        if isinstance(value, list):
            if not value:
                raise ValueError("empty grid; give at least one seed")
            if any(isinstance(s, int) and not isinstance(s, bool) and s < 0 for s in value):
                raise ValueError(f"seeds must be non-negative integers, got {value}")
            if len(set(map(repr, value))) != len(value):
                raise ValueError(f"seeds must be distinct, got {value}")
            return tuple(value)
        return value

    @field_validator("n_train", mode="before")
    @classmethod
    def _n_train(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError("empty grid; give a positive integer or \"population\"")
        for item in values:
            positive = isinstance(item, int) and not isinstance(item, bool) and item > 0
            if not positive and item != POPULATION:
                raise ValueError(f"must be a positive integer or \"population\", got {item!r}")
        return tuple(values)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("empty list; name at least one metric")
            return tuple(value)
        return value


class PlotSection(_Frozen):
    """``[plot]``: what to draw from the recorded results."""

    x: str
    y: str
    series: str = "regime"
    log_x: bool = False
    log_y: bool = False
    theory: tuple[str, ...] = ()
    error_bars: bool = True
    output: str | None = None
    formats: tuple[Literal["png", "pdf", "svg"], ...] = ("png", "pdf")
    title: str | None = None

    @field_validator("theory", "formats", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class SpecFile(_Frozen):
    """The whole file after structural validation (not yet checked against registries)."""

    name: str
    description: str = ""
    task: TaskSection
    regime: tuple[RegimeSection, ...] = Field(min_length=1)
    sweep: SweepSection = Field(default_factory=SweepSection)
    plot: PlotSection | None = None


_SWEEP_KEYS = ("seeds", "n_train", "n_test", "validation_size", "metrics", "max_memory_gb")
_TOP_KEYS = ("name", "description", "task", "regime", "sweep", "plot")


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read and parse a TOML spec file, turning every failure into a :class:`SpecError`."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(path, "<file>", f"cannot read the spec file ({error.__class__.__name__}: "
                        f"{getattr(error, 'strerror', None) or error}); a UTF-8 TOML file is "
                        "required") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, "<file>", f"not valid TOML ({error})") from None


def _split_params(table: Any) -> Any:
    """``{name, k: v, …}`` → ``{name, params: {k: v, …}}``; other shapes are left for pydantic."""
    if not isinstance(table, dict):
        return table
    table = dict(table)
    name = table.pop("name", None)
    out: dict[str, Any] = {"params": table}
    if name is not None:
        out["name"] = name
    return out


def _restructure(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """Map the TOML layout onto :class:`SpecFile`'s fields."""
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise SpecError(path, unknown[0], f"unknown section or field; allowed: {', '.join(_TOP_KEYS)}")
    data = dict(raw)
    data.setdefault("name", path.stem)
    if "task" in data:
        data["task"] = _split_params(data["task"])
    regimes = data.get("regime")
    if isinstance(regimes, dict):
        regimes = [regimes]
    if isinstance(regimes, list):
        data["regime"] = tuple(_split_params(r) for r in regimes)
    sweep = data.get("sweep")
    if isinstance(sweep, dict):
        fixed = {k: v for k, v in sweep.items() if k in _SWEEP_KEYS}
        fixed["grids"] = {k: v for k, v in sweep.items() if k not in _SWEEP_KEYS}
        data["sweep"] = fixed
    return data


def _field_name(location: tuple[Any, ...]) -> str:
    """pydantic location → spec field: ('regime', 1, 'params', 'width') → regime[1].width."""
    parts: list[str] = []
    for item in location:
        if item in ("params", "grids") or (isinstance(item, str) and item.startswith(
                ("function-", "literal[", "int", "tuple[", "str"))):
            continue
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "<spec>"


def _allowed_fields(location: tuple[Any, ...]) -> str:
    models = {"task": TaskSection, "sweep": SweepSection, "plot": PlotSection}
    model = models.get(location[0]) if location else SpecFile
    if model is None or len(location) > 2:
        return ""
    names = [n for n in model.model_fields if n not in ("params", "grids")]
    return f"; allowed: {', '.join(names)}"


def parse_spec(raw: dict[str, Any], path: str | Path) -> SpecFile:
    """Validate the structure of a parsed TOML document into a frozen :class:`SpecFile`."""
    path = Path(path)
    try:
        return SpecFile.model_validate(_restructure(raw, path))
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field" + _allowed_fields(location)
        elif first["type"] == "missing":
            message = "required field is missing"
        elif "input" in first and first["type"] != "value_error":
            message = f"{message[:1].lower()}{message[1:]} (got {first['input']!r})"
        raise SpecError(path, _field_name(location), message) from None
