"""Exact population risks of fitted predictors, and empirical risks on data sets.

The exact n = ∞ fits (optimal head, optimal tangent) are regimes' business and live in
:mod:`lazylab.models.population`.
"""

from lazylab.risk.empirical import empirical_risk
from lazylab.risk.population import population_risk, supports_population_risk

__all__ = ["population_risk", "supports_population_risk", "empirical_risk"]
