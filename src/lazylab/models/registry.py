"""The regime registry: name → regime class (data, not if/elif; DESIGN.md).

Adding a regime is one file plus one line here. "network" (``lazylab.models.network.Network``)
is resolved lazily, so this module imports even while that file is absent.
"""

from __future__ import annotations

import importlib

from lazylab.models.kernel import Kernel
from lazylab.models.neural_tangent import NeuralTangent
from lazylab.models.one_step import OneStep
from lazylab.models.random_features import RandomFeatures
from lazylab.models.semi_random import SemiRandom

__all__ = ["REGIMES"]

REGIMES: dict[str, type] = {
    "random_features": RandomFeatures,
    "neural_tangent": NeuralTangent,
    "semi_random": SemiRandom,
    "one_step": OneStep,
    "kernel": Kernel,
}

try:
    REGIMES["network"] = importlib.import_module("lazylab.models.network").Network
except ModuleNotFoundError as error:  # network.py not written yet: leave the entry out
    if error.name != "lazylab.models.network":
        raise
