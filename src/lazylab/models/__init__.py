"""Models: the predictors and the training regimes that produce them."""

from lazylab.models.predictors import NeuralTangentModel, TwoLayer

__all__ = ["TwoLayer", "NeuralTangentModel"]
