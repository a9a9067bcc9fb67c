"""Models: the training regimes and the exact n = ∞ fits of a fixed first layer.

A regime is a frozen keyword-only dataclass of hyperparameters with ``fit(data_or_task, *, rng)``:
a :class:`lazylab.tasks.Dataset` fits on samples, a task with moments fits at n = ∞ through the
exact engine (:mod:`lazylab.models.population`: ``optimal_head``, ``optimal_tangent``).
``REGIMES`` maps the registry names to the classes. The predictors they return live in
:mod:`lazylab.predictors` and are re-exported here for convenience.
"""

from lazylab.predictors import NeuralTangentModel, TwoLayer
from lazylab.models.population import optimal_head, optimal_tangent
from lazylab.models.kernel import Kernel, KernelModel
from lazylab.models.network import Network
from lazylab.models.neural_tangent import NeuralTangent
from lazylab.models.one_step import OneStep
from lazylab.models.random_features import RandomFeatures
from lazylab.models.semi_random import SemiRandom
from lazylab.models.deep_semi_random import DeepSemiRandom, DeepSemiRandomModel
from lazylab.models.registry import REGIMES

__all__ = ["TwoLayer", "NeuralTangentModel", "KernelModel", "DeepSemiRandomModel",
           "RandomFeatures", "NeuralTangent", "SemiRandom", "DeepSemiRandom", "OneStep", "Kernel",
           "Network", "REGIMES", "optimal_head", "optimal_tangent"]
