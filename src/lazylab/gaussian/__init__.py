"""Dual activations: exact Gaussian expectations of pairs of hidden units.

See :mod:`lazylab.gaussian.dual` for how each pair is computed and how accurate it is.
"""

from lazylab.gaussian.dual import pair_expectation, quadrature_pair
from lazylab.gaussian.moments import dual_matrix, feature_input_moment, feature_mean, unit_scales

__all__ = ["pair_expectation", "quadrature_pair", "dual_matrix", "feature_mean",
           "feature_input_moment", "unit_scales"]
