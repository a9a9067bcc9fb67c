"""Argument validators shared by every layer and the one n = ∞ marker (a leaf: imports no lazylab).

Each validator takes the value and the parameter's name, returns the value normalized (an int,
a float, a float64 tensor...) and otherwise raises ValueError (TypeError for a wrong kind of
object where a number would be meaningless, e.g. an rng) whose message names the parameter, the
value received and what is allowed, e.g. ``width must be an integer >= 1, got 0``.

Booleans are never numbers here (``True`` is not a width). Numpy scalars are accepted wherever
Python ones are.

n = ∞ ("population"): a sweep, a run and a regime's caller may say "fit at n = ∞" as
``"population"`` (:data:`POPULATION`, the spelling in specs and stores), ``None`` (a run's
``n_train``), or ``math.inf`` (a result record's ``n_train``); :func:`is_population` accepts all
three and nothing else.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
import torch

__all__ = ["POPULATION", "is_population", "integer", "positive_int", "nonnegative_int",
           "finite_float", "positive_float", "nonnegative_float", "ridge", "probability",
           "choice", "boolean", "optional", "generator", "finite_tensor", "positive_values"]

POPULATION = "population"
"""The n = ∞ marker in sweep specs, runs' JSON and result stores."""


def is_population(n_train: Any) -> bool:
    """True for the encodings of n = ∞: ``"population"``, ``None`` and ``math.inf``."""
    if n_train is None:
        return True
    if isinstance(n_train, str):
        return n_train == POPULATION
    if isinstance(n_train, (float, np.floating)):
        return math.isinf(n_train) and n_train > 0
    return False


def integer(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer ≥ ``minimum`` (numpy integers accepted, bool rejected), as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_int(value: Any, name: str) -> int:
    """An integer ≥ 1."""
    return integer(value, name, minimum=1)


def nonnegative_int(value: Any, name: str) -> int:
    """An integer ≥ 0."""
    return integer(value, name, minimum=0)


def _number(value: Any, name: str, allowed: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {allowed}, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def finite_float(value: Any, name: str) -> float:
    """A finite real number, as ``float``."""
    return _number(value, name, "a finite number")


def positive_float(value: Any, name: str, *, alternative: str = "") -> float:
    """A finite number > 0; ``alternative`` (e.g. " or None") is appended to the message."""
    allowed = f"a finite number > 0{alternative}"
    number = _number(value, name, allowed)
    if not number > 0:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def nonnegative_float(value: Any, name: str) -> float:
    """A finite number ≥ 0."""
    number = _number(value, name, "a finite number >= 0")
    if not number >= 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def ridge(value: Any, name: str = "ridge") -> float:
    """A ridge penalty λ: a finite number ≥ 0."""
    return nonnegative_float(value, name)


def probability(value: Any, name: str, *, open_interval: bool = False) -> float:
    """A number in [0, 1], or in (0, 1) when ``open_interval``."""
    allowed = "a number in (0, 1)" if open_interval else "a number in [0, 1]"
    number = _number(value, name, allowed)
    inside = 0 < number < 1 if open_interval else 0 <= number <= 1
    if not inside:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """One of ``allowed`` (membership by ``==``)."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def boolean(value: Any, name: str) -> bool:
    """True or False (numpy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def optional(check: Callable[..., Any], value: Any, name: str, **options: Any) -> Any:
    """None, or ``check(value, name, **options)``."""
    return None if value is None else check(value, name, **options)


def device(value: Any, name: str = "device") -> str:
    """A device name torch parses as the CPU or a CUDA device ("cpu", "cuda", "cuda:1");
    whether CUDA is there is checked where the device is used."""
    try:
        kind = torch.device(value).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be 'cpu' or 'cuda[:index]', got {value!r}")
    return value


def generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A numpy Generator, else TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def finite_tensor(value: Any, name: str, *, ndim: int | None = None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A tensor (converted to ``dtype``) with only finite entries and, if given, ``ndim`` axes."""
    try:
        tensor = torch.as_tensor(value).to(dtype)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got non-finite entries in shape "
                         f"{tuple(tensor.shape)}")
    return tensor


def positive_values(value: Any, name: str) -> np.ndarray:
    """A non-empty float64 array (any shape) of finite numbers > 0."""
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return array
