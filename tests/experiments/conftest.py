"""Fixtures for the experiment tests: spec files for the test lab (``minilab``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

BASE_SPEC = """
[task]
name = "linear"
dim = 4
noise = 0.2

[[regime]]
name = "ridge_features"
activation = "relu"
ridge = 1e-3

[[regime]]
name = "gradient_descent"
learning_rate = [0.1, 3.0]

[sweep]
width = [2, 4, 8]
n_train = [30, "population"]
n_test = 100
seeds = [0, 1]

[plot]
x = "width"
y = "risk_normalized"
log_x = true
"""


@pytest.fixture
def write_spec(tmp_path: Path):
    """``write_spec(text, name="spec.toml") -> Path`` writes a spec into a fresh directory."""

    def write(text: str = BASE_SPEC, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
