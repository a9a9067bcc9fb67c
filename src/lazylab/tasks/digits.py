"""scikit-learn's embedded 8×8 digits (1,797 images, no download) as a ±1 regression task.

Inputs: the 64 pixel intensities, standardized per pixel over the whole data set (mean 0,
variance 1; the four constant pixels become 0), so ‖x‖² ≈ d as for x ~ N(0, I_d) and first
layers drawn with w ~ N(0, I/d) see pre-activations of order one. The standardization is
unsupervised and uses no label.

Labels (a scalar ±1, regressed with the squared loss):
* "parity": +1 for an odd digit, −1 for an even one (5 classes against 5: a non-linear split);
* "high": +1 for the digits 5–9, −1 for 0–4.

Sampling from a finite data set, without replacement. The builder's ``rng`` (the sweep's task
stream, shared by every run of a seed) fixes one random order of the 1,797 images; successive
``sample(n)`` calls on one task instance return consecutive, disjoint blocks of that order, so
the training set (first call) and the test set (second call) of a run never share an image, and
every regime of a seed sees the same training images for the same n. ``sample``'s own ``rng`` is
not used. Asking for more images than remain raises ValueError. The task has no population
moments (``has_moments = False``): risks are test risks; ``null_risk`` is Var y over the whole
data set (the risk of the best constant predictor).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from lazylab.tasks.base import DTYPE, Dataset, check_samples

__all__ = ["Digits", "digits", "DIGIT_LABELS"]

DIGIT_LABELS = {
    "parity": lambda digit: np.where(digit % 2 == 1, 1.0, -1.0),
    "high": lambda digit: np.where(digit >= 5, 1.0, -1.0),
}


def digits_file() -> Path:
    """scikit-learn's embedded table ``datasets/data/digits.csv.gz``, found without importing it.

    Importing scikit-learn (scipy.stats and all) costs about as much as importing torch; reading
    its 1,797 × 65 table directly keeps ``import lazylab.tasks`` light. Each row: 64 pixel
    intensities 0–16, then the digit.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits task needs scikit-learn's embedded data; install "
                          "scikit-learn (a lazylab dependency)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn's digits table is not at {path}")
    return path


@lru_cache(maxsize=1)
def _standardized() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(digits_file(), delimiter=",")
    x, digit = table[:, :-1].astype(np.float64), table[:, -1].astype(np.int64)
    spread = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return x, digit


class Digits:
    """The digits data set in one fixed random order, sampled without replacement.

    Args:
        order: a permutation of the 1,797 image indices.
        label: a key of :data:`DIGIT_LABELS`.
    """

    has_moments = False
    bayes_risk = None
    classification = "sign"
    """±1 labels: runs also report the test classification error sign f(x) ≠ y (%)."""

    def __init__(self, order: np.ndarray, label: str = "parity") -> None:
        if label not in DIGIT_LABELS:
            raise ValueError(f"label must be one of {', '.join(DIGIT_LABELS)}, got {label!r}")
        x, digit = _standardized()
        order = np.asarray(order)
        if sorted(order.tolist()) != list(range(x.shape[0])):
            raise ValueError(f"order must be a permutation of the {x.shape[0]} images")
        self.label = label
        self._x = torch.as_tensor(x[order], dtype=DTYPE)
        self._y = torch.as_tensor(DIGIT_LABELS[label](digit[order]), dtype=DTYPE)
        self._cursor = 0

    @property
    def dim(self) -> int:
        return int(self._x.shape[1])

    @property
    def size(self) -> int:
        """Number of images in the data set."""
        return int(self._x.shape[0])

    @property
    def remaining(self) -> int:
        return self.size - self._cursor

    @property
    def null_risk(self) -> float:
        """Var y over the whole data set."""
        return float(torch.var(self._y, unbiased=False))

    def inputs(self) -> torch.Tensor:
        """All standardized images in this task's order, (1797, 64) float64."""
        return self._x.clone()

    def sample(self, n: int, *, rng: np.random.Generator | None = None) -> Dataset:
        """The next n images of the fixed order (disjoint from every earlier call)."""
        n = check_samples(n)
        if n > self.remaining:
            raise ValueError(f"n = {n} exceeds the {self.remaining} digits images not yet drawn "
                             f"from this task ({self.size} in all; training and test sets are "
                             "disjoint blocks of one order)")
        block = slice(self._cursor, self._cursor + n)
        self._cursor += n
        return Dataset(self._x[block].clone(), self._y[block].clone())


def digits(*, rng: np.random.Generator, label: Literal["parity", "high"] = "parity") -> Digits:
    """Build the digits task; the order of the images is one ``rng.permutation``."""
    x, _ = _standardized()
    return Digits(rng.permutation(x.shape[0]), label=label)
