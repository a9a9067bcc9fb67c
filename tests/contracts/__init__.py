"""Small test configurations for every registry entry the contract tests run over.

A registry entry without a configuration here makes its contract test fail (not skip): adding a
task means adding its small constructor keyword arguments below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lazylab.tasks import TASKS

# Small constructor keyword arguments per task name (a few dimensions: every check stays fast).
SMALL_TASKS = {"single_neuron": {"dim": 6, "bias": 0.3},
               "quadratic": {"dim": 6, "matrix": "random-psd", "centered": False},
               "gaussian_mixture": {"dim": 8},
               "multi_index": {"dim": 6, "preset": "two-index"},
               "digits": {},
               "file": {"path": str(Path(__file__).with_name("small_task.npz"))}}


def small_task(name: str, *, seed: int = 7, **extra):
    """TASKS[name] built from its small configuration; fails loudly when there is none."""
    if name not in SMALL_TASKS:
        pytest.fail(f"task {name!r} is registered in TASKS but has no small test configuration: "
                    "add its constructor keyword arguments to SMALL_TASKS in "
                    "tests/contracts/__init__.py", pytrace=False)
    return TASKS[name](rng=np.random.default_rng(seed), **{**SMALL_TASKS[name], **extra})


MACHINE_MEMORY_GB = "24"
"""The memory the scales are sized for (this project's 2-core, 24 GB machines): the tests that
validate every scale give it to the memory check (``LAZYLAB_MAX_MEMORY_GB``) rather than
whatever is free while the suite runs (a paper-scale job beside it made two scales fail on the
free memory alone)."""
