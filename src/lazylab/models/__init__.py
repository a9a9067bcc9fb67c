"""Models: the predictors and the training regimes that produce them.

A regime is a frozen keyword-only dataclass of hyperparameters with ``fit(data_or_task, *, rng)``:
a :class:`lazylab.tasks.Dataset` fits on samples, a task with moments fits at n = ∞ through the
exact engine. ``REGIMES`` maps the registry names to the classes.
"""

from lazylab.models.predictors import NeuralTangentModel, TwoLayer
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
           "Network", "REGIMES"]
