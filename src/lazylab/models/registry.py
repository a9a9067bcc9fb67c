"""The regime registry: name → regime class (data, not if/elif; DESIGN.md).

Adding a regime is one file plus one line here.
"""

from __future__ import annotations

from lazylab.models.deep_semi_random import DeepSemiRandom
from lazylab.models.kernel import Kernel
from lazylab.models.network import Network
from lazylab.models.neural_tangent import NeuralTangent
from lazylab.models.one_step import OneStep
from lazylab.models.random_features import RandomFeatures
from lazylab.models.semi_random import SemiRandom

__all__ = ["REGIMES"]

REGIMES: dict[str, type] = {
    "random_features": RandomFeatures,
    "neural_tangent": NeuralTangent,
    "semi_random": SemiRandom,
    "deep_semi_random": DeepSemiRandom,
    "one_step": OneStep,
    "kernel": Kernel,
    "network": Network,
}
