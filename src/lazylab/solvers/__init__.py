"""Generic solvers, independent of the regimes: conjugate gradient, ridge, kernel ridge, trainers."""

from lazylab.solvers.cg import CGResult, conjugate_gradient

__all__ = ["CGResult", "conjugate_gradient"]
