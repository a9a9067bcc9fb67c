"""lazylab._checks: each validator returns the normalized value or raises naming the parameter,
the value and what is allowed; the n = ∞ encodings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab import _checks as checks


def test_population_marker_and_its_encodings():
    assert checks.POPULATION == "population"
    for encoding in ("population", None, math.inf, np.float64(np.inf)):
        assert checks.is_population(encoding), encoding
    for finite in (100, 0, "Population", -math.inf, math.nan, 1e300, True):
        assert not checks.is_population(finite), finite


@pytest.mark.parametrize("check, good, normalized", [
    (checks.positive_int, np.int64(3), 3),
    (checks.nonnegative_int, 0, 0),
    (checks.finite_float, "-2.5", -2.5),
    (checks.positive_float, np.float32(0.5), 0.5),
    (checks.nonnegative_float, 0, 0.0),
    (checks.ridge, 1e-3, 1e-3),
    (checks.probability, 1, 1.0),
    (checks.boolean, np.True_, True),
])
def test_validators_normalize_good_values(check, good, normalized):
    value = check(good, "p")
    assert value == normalized and type(value) is type(normalized)


@pytest.mark.parametrize("check, bad, allowed", [
    (checks.positive_int, 0, "an integer >= 1"),
    (checks.positive_int, True, "an integer >= 1"),
    (checks.positive_int, 2.0, "an integer >= 1"),
    (checks.nonnegative_int, -1, "an integer >= 0"),
    (checks.finite_float, math.nan, "a finite number"),
    (checks.positive_float, 0.0, "a finite number > 0"),
    (checks.positive_float, math.inf, "a finite number > 0"),
    (checks.positive_float, "x", "a finite number > 0"),
    (checks.nonnegative_float, -1e-300, "a finite number >= 0"),
    (checks.nonnegative_float, False, "a finite number >= 0"),
    (checks.ridge, -1.0, "a finite number >= 0"),
    (checks.probability, 1.5, "a number in [0, 1]"),
    (checks.boolean, 1, "True or False"),
])
def test_validators_name_parameter_value_and_allowed(check, bad, allowed):
    with pytest.raises(ValueError) as error:
        check(bad, "p")
    assert str(error.value) == f"p must be {allowed}, got {bad!r}"


def test_choice_optional_generator_and_arrays():
    assert checks.choice("b", "mode", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"^mode must be one of 'a', 'b', got 'c'$"):
        checks.choice("c", "mode", ("a", "b"))
    with pytest.raises(ValueError, match=r"in \(0, 1\), got 0.0"):
        checks.probability(0.0, "share", open_interval=True)
    assert checks.optional(checks.positive_int, None, "max_iter") is None
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        checks.optional(checks.positive_int, 0, "max_iter")
    with pytest.raises(ValueError, match=r"laziness must be a finite number > 0 or None, got 0"):
        checks.optional(checks.positive_float, 0, "laziness", alternative=" or None")
    rng = np.random.default_rng(0)
    assert checks.generator(rng) is rng
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, got int"):
        checks.generator(0)
    tensor = checks.finite_tensor([[1, 2]], "x", ndim=2)
    assert tensor.dtype == torch.float64 and tensor.shape == (1, 2)
    with pytest.raises(ValueError, match="x must be finite"):
        checks.finite_tensor([1.0, math.inf], "x")
    with pytest.raises(ValueError, match=r"x must have 2 axes, got shape \(2,\)"):
        checks.finite_tensor([1.0, 2.0], "x", ndim=2)
    np.testing.assert_array_equal(checks.positive_values([1, 2], "rho"), [1.0, 2.0])
    with pytest.raises(ValueError, match="rho must be finite and > 0"):
        checks.positive_values([1.0, 0.0], "rho")


def test_checks_is_a_leaf():
    source = open(checks.__file__, encoding="utf-8").read()
    assert "from lazylab" not in source and "import lazylab" not in source
