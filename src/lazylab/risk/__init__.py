"""Exact population risks and fits, and empirical risks."""

from lazylab.risk.empirical import empirical_risk
from lazylab.risk.fits import optimal_head, optimal_tangent
from lazylab.risk.population import population_risk, supports_population_risk

__all__ = ["population_risk", "supports_population_risk", "empirical_risk", "optimal_head", "optimal_tangent"]
