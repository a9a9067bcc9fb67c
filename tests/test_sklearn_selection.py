"""Recipe (docs/selection.md): choose the ridge of a lazylab estimator by cross-validation.

GridSearchCV fits every ridge on the training folds and scores it on the held-out fold; the
test set is used once, after the choice. With an integer ``random_state`` every fit draws the
same first layer, so the folds compare ridges on one fixed set of random features.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from lazylab.experiments.selection import default_ridge_grid
from lazylab.sklearn import RandomFeaturesRegressor


def _data(n, rng):
    x = rng.standard_normal((n, 5))
    return x, x[:, 0] * x[:, 1] + np.abs(x[:, 2]) + 0.3 * rng.standard_normal(n)


def _cross_validated_risks(x, y, grid, folds):
    """Mean held-out squared error of every ridge over the folds, computed by hand."""
    risks = []
    for ridge in grid:
        errors = []
        for train, held_out in folds.split(x):
            model = RandomFeaturesRegressor(width=40, ridge=ridge, random_state=0)
            model.fit(x[train], y[train])
            errors.append(np.mean((model.predict(x[held_out]) - y[held_out]) ** 2))
        risks.append(np.mean(errors))
    return np.array(risks)


def test_grid_search_picks_the_ridge_with_the_least_cross_validated_risk():
    rng = np.random.default_rng(7)
    x, y = _data(240, rng)
    grid = list(default_ridge_grid(1.0, low=1e-6, high=1e2))
    folds = KFold(n_splits=4, shuffle=True, random_state=0)
    search = GridSearchCV(RandomFeaturesRegressor(width=40, random_state=0), {"ridge": grid},
                          cv=folds, scoring="neg_mean_squared_error")
    search.fit(x, y)
    risks = _cross_validated_risks(x, y, grid, folds)
    best = int(np.argmin(risks))
    assert search.best_params_["ridge"] == grid[best]
    assert -search.best_score_ == pytest.approx(risks[best], rel=1e-10)
    assert 0 < best < len(grid) - 1  # the optimum is inside the grid, not on its edge
    # the refitted estimator is the plain estimator at the chosen ridge, fitted on all the data
    x_test, y_test = _data(500, np.random.default_rng(8))  # read only after the choice
    plain = RandomFeaturesRegressor(width=40, ridge=grid[best], random_state=0).fit(x, y)
    np.testing.assert_allclose(search.predict(x_test), plain.predict(x_test), rtol=0, atol=1e-12)
    assert np.mean((search.predict(x_test) - y_test) ** 2) < np.var(y_test)
