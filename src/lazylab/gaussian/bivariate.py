"""Closed forms for expectations over a standard bivariate normal pair (compatibility names).

The bivariate normal CDF Φ₂ lives in :mod:`lazylab.quadrature` and the ReLU/step/erf pair closed
forms in the family records of :mod:`lazylab.activations.families` (below this engine, so that
a family record can hold its own closed forms). This module keeps the old import paths.
"""

from __future__ import annotations

from lazylab.activations.families import erf_erf, relu_relu, relu_step, step_step
from lazylab.quadrature import bivariate_normal_cdf

__all__ = ["bivariate_normal_cdf", "step_step", "relu_step", "relu_relu", "erf_erf"]
