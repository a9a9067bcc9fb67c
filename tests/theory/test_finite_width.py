"""Finite-d RF correction (σ = u² − 1, Γ = I/d) against the exact projection and the engine.

The exact risk for given W is R/‖f*‖² = ‖(I − P)B‖_F²/‖B‖_F² = 1 − bᵀG⁺b/‖B‖_F² with
G_ij = ⟨w_iw_iᵀ, w_jw_jᵀ⟩ = (w_i·w_j)² and b_i = w_iᵀBw_i (normal equations of the projection).
Statistical tolerance: 4.5 standard errors over 200 draws of W (two-sided normal tail 7e-6),
plus 0.004 for the Marchenko–Pastur approximation of e (measured ≤ 0.003 at d = 30, 40).
"""

import math

import numpy as np
import pytest

from lazylab.models import RandomFeatures
from lazylab.risk import population_risk
from lazylab.tasks.quadratic import quadratic
from lazylab.theory import (finite_width_rf_correction, random_features_risk_quadratic_activation,
                            trace_alignment)


def _exact_normalized_risk(weights, matrix):
    gram = (weights @ weights.T) ** 2
    moments = np.einsum("ni,ij,nj->n", weights, matrix, weights)
    captured = moments @ np.linalg.solve(gram, moments)     # G ≻ 0 for generic W, N ≤ D
    return 1.0 - captured / np.sum(matrix * matrix)


@pytest.fixture(scope="module")
def target():
    return quadratic(rng=np.random.default_rng(0), dim=30, matrix="exp-diagonal")


def test_projection_equals_engine(target):
    rng = np.random.default_rng(5)
    model = RandomFeatures(width=60, activation="hermite2", offset=True).fit(target, rng=rng)
    matrix = target.matrix.numpy()
    engine = float(population_risk(model, target)) / (2.0 * np.sum(matrix * matrix))
    weights = model.weights.numpy()
    assert engine == pytest.approx(_exact_normalized_risk(weights, matrix), abs=1e-8)


@pytest.mark.parametrize("multiple", [2, 4, 8])
def test_correction_matches_average_over_weights(target, multiple):
    matrix = target.matrix.numpy()
    dim, width = matrix.shape[0], multiple * matrix.shape[0]
    rng = np.random.default_rng(multiple)
    risks = np.array([_exact_normalized_risk(rng.standard_normal((width, dim)) / math.sqrt(dim),
                                             matrix) for _ in range(200)])
    share = trace_alignment(matrix)
    corollary = float(random_features_risk_quadratic_activation(width / dim, matrix))
    predicted = corollary + float(finite_width_rf_correction(dim, width, share))
    tolerance = 4.5 * risks.std(ddof=1) / math.sqrt(risks.size) + 0.004
    assert abs(risks.mean() - predicted) <= tolerance
    if multiple >= 8:                      # the leading term alone is visibly short
        leading = corollary - (1.0 - share) * width / (dim * (dim + 1) / 2)
        assert abs(risks.mean() - leading) > tolerance


def test_limits():
    # d → ∞ at fixed ρ: the correction vanishes like 1/d (d·|correction| → 2ρ(1 − T) + O(1) = 3.x)
    small = [abs(float(finite_width_rf_correction(d, 3 * d, 0.5))) * d for d in (100, 400, 1600)]
    assert max(small) < 5.0 and small[-1] == pytest.approx(small[-2], rel=0.05)
    # d ≪ N ≪ d²: the leading term −(1 − T)N/(d(d+1)/2)
    value = float(finite_width_rf_correction(2000, 40_000, 0.3))
    assert value == pytest.approx(-0.7 * 40_000 / (2000 * 2001 / 2), rel=0.05)
    # N > d(d+1)/2 − 1: every quadratic is fitted, R = 0
    d = 10
    rho = 60 / d
    assert float(finite_width_rf_correction(d, 60, 0.4)) == pytest.approx(-(1 - rho * 0.4 / (1 + rho)))
    # issue 11's numbers at d = 450, T = 1/2
    assert np.allclose(finite_width_rf_correction(450, [2093, 3072, 4500], 0.5),
                       [-0.0118, -0.0168, -0.0240], atol=5e-4)


def test_validation():
    with pytest.raises(ValueError, match="share"):
        finite_width_rf_correction(10, 20, 1.5)
    with pytest.raises(ValueError, match="dim"):
        finite_width_rf_correction(1, 20, 0.5)
    with pytest.raises(ValueError, match="width"):
        finite_width_rf_correction(10, 0, 0.5)
