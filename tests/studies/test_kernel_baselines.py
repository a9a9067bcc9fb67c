"""The shared kernel-baseline ridge grid: relative to the kernel's scale E k(x, x), log-spaced from
the solver's numerical floor to the null end, and its edge labels."""

import math

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.studies._kernel_baselines import (RIDGE_EXPONENTS, edge_side, kernel_ridge_grid,
                                               kernel_ridge_selection, kernel_scale)


@pytest.mark.parametrize("kind", ["rf", "ntk"])
def test_scale_is_the_mean_kernel_diagonal_under_gaussian_inputs(kind):
    """E k(x, x) by Monte Carlo (20 000 draws, d = 7): within 4 s.e. of h(1)."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((20000, 7)))
    kernel = DualKernel(kind, "relu")
    diagonal = torch.diagonal(kernel(x[:300], x[:300])).numpy()
    # k(x, x) = ‖x‖²/d · κ(1) (rtol: arccos at cos θ = 1 loses ~√ε of its argument's precision)
    norms = (x ** 2).sum(1).numpy() / 7
    np.testing.assert_allclose(diagonal, norms[:300] * kernel_scale(kind), rtol=1e-7)
    assert abs(norms.mean() - 1.0) <= 4 * norms.std() / math.sqrt(norms.size)


def test_grid_is_log_spaced_from_the_floor_to_the_null_end():
    grid = np.array(kernel_ridge_grid("ntk"))
    assert np.all(np.diff(grid) > 0)
    np.testing.assert_allclose(np.log10(grid / kernel_scale("ntk")), RIDGE_EXPONENTS, atol=1e-12)
    assert math.isclose(grid[0] / kernel_scale("ntk"), 1e-14) and math.isclose(
        grid[-1] / kernel_scale("ntk"), 1e4)
    assert kernel_ridge_selection("rf") == {"grid": list(kernel_ridge_grid("rf")),
                                            "select": "validation"}


def test_edge_labels():
    grid = kernel_ridge_grid("rf")
    assert edge_side("rf", grid[0]) == "floor" and edge_side("rf", grid[-1]) == "null"
    assert all(edge_side("rf", value) == "" for value in grid[1:-1])
    with pytest.raises(ValueError, match="kind"):
        kernel_scale("relu")
