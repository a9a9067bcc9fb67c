"""The digits task reads scikit-learn's embedded table itself: the same images and labels."""

import numpy as np
from sklearn.datasets import load_digits

from lazylab.tasks.digits import _standardized


def test_table_equals_scikit_learn_load_digits():
    bunch = load_digits()
    x, digit = _standardized()
    np.testing.assert_array_equal(digit, bunch.target)
    spread = bunch.data.std(axis=0)
    expected = (bunch.data - bunch.data.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    np.testing.assert_array_equal(x, expected)
    assert x.shape == (1797, 64)
