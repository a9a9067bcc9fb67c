"""Bring your own data: a task that reads features and labels from a local file.

Formats (chosen by the extension of ``path``; nothing is downloaded):

* ``.npz`` — arrays ``x`` (n, d) and ``y`` (n,), optionally ``x_test`` and ``y_test`` (the
  file's own test split);
* ``.npy`` — the features (n, d); the labels (n,) are the ``.npy`` file named by ``label``
  (default ``y`` → ``y.npy``), resolved next to the features file when relative;
* ``.csv`` — a header line, then numbers; ``label`` names the label column, every other
  column is a feature;
* ``.parquet`` — as CSV (needs pyarrow: ``pip install 'lazylab[parquet]'``).

Split. With the file's own test split, the training part is used in one random order drawn
from the builder's ``rng`` and the test part in the file's order. Without one, a seeded split
(one ``rng.permutation``) puts ⌈test_fraction · m⌉ of the m examples in the test part. The
builder's ``rng`` is a sweep's task stream, so all regimes of a seed see one split.

Sampling, as for :mod:`lazylab.tasks.digits`: the first ``sample(n)`` call of a task instance
draws the first n examples of the training part (the training set of a run); every later
call draws from the test part (its test set), so they never share an example. ``split=`` asks
for a part explicitly. ``sample``'s own ``rng`` is not used. Asking for more examples than a
part holds raises ValueError.

``standardize=True`` centers and scales every feature with the mean and standard deviation of
the training part only (constant features are centered, not scaled), so nothing of the test
part leaks into the inputs. Everything is float64. The task has no population moments
(``has_moments = False``): risks are test risks; ``null_risk`` is Var y over the training part.
"""

from __future__ import annotations

import csv
import importlib
import math
from pathlib import Path

import numpy as np
import torch

from lazylab.tasks.base import DTYPE, Dataset, check_samples

__all__ = ["FileTask", "file", "FILE_FORMATS", "load_arrays"]

SPLITS = ("train", "test")


def _finite(name: str, array: np.ndarray, path: Path) -> np.ndarray:
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {name} must hold numbers, got dtype {array.dtype}") from None
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{path}: {name} has {bad} NaN or infinite values; remove or impute "
                         "them first")
    return array


def _pair(x: np.ndarray, y: np.ndarray, names: tuple[str, str], path: Path):
    x, y = _finite(names[0], x, path), _finite(names[1], y, path)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{path}: {names[0]} must have shape (n, d) with n, d ≥ 1, got "
                         f"{x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{path}: {names[1]} must have shape ({x.shape[0]},) to match "
                         f"{names[0]}, got {y.shape}")
    return x, y


def _load_npz(path: Path, label: str):
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise ValueError(f"{path}: the archive needs arrays x and y; missing {missing}, "
                             f"found {archive.files}")
        arrays = {k: archive[k] for k in ("x", "y", "x_test", "y_test") if k in archive.files}
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path}: give both x_test and y_test, or neither")
    return arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test")


def _load_npy(path: Path, label: str):
    labels = Path(label if label.endswith(".npy") else label + ".npy")
    labels = labels if labels.is_absolute() else path.parent / labels
    if not labels.is_file():
        raise ValueError(f"{path}: the labels file {labels} does not exist; name it with "
                         "label (a .npy file next to the features)")
    return np.load(path, allow_pickle=False), np.load(labels, allow_pickle=False), None, None


def _columns(header: list[str], values: np.ndarray, label: str, path: Path):
    if label not in header:
        raise ValueError(f"{path}: no label column {label!r}; columns: {', '.join(header)}")
    index = header.index(label)
    return np.delete(values, index, axis=1), values[:, index], None, None


def _load_csv(path: Path, label: str):
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise ValueError(f"{path}: empty CSV file; a header line and numeric rows are required")
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: every value must be a number ({error})") from None
    if values.shape[1] != len(header):
        raise ValueError(f"{path}: rows have {values.shape[1]} values and the header "
                         f"{len(header)} names")
    return _columns([h.strip() for h in header], values, label, path)


def _load_parquet(path: Path, label: str):
    try:  # optional dependency, imported only when a Parquet file is read
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ValueError(f"{path}: reading Parquet needs pyarrow; install it with "
                         "pip install 'lazylab[parquet]', or save the data as .npz or .csv"
                         ) from None
    table = parquet.read_table(path)
    header = list(table.column_names)
    try:
        values = np.column_stack([table.column(n).to_numpy(zero_copy_only=False)
                                  .astype(np.float64) for n in header])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: every column must be numeric ({error})") from None
    return _columns(header, values, label, path)


FILE_FORMATS = {".npz": _load_npz, ".npy": _load_npy, ".csv": _load_csv,
                ".parquet": _load_parquet}
"""Extension → loader ``(path, label) -> (x, y, x_test | None, y_test | None)``."""


def load_arrays(path: str | Path, label: str = "y"):
    """Read and check a data file: float64 (x, y, x_test, y_test), the test pair possibly None.

    Raises:
        ValueError: missing file, unknown extension, wrong shapes, NaN/inf or non-numbers.
    """
    path = Path(path)
    if not str(path) or not path.is_file():
        raise ValueError(f"path: data file {str(path)!r} does not exist")
    loader = FILE_FORMATS.get(path.suffix.lower())
    if loader is None:
        raise ValueError(f"path: unknown extension {path.suffix!r} of {path}; allowed: "
                         f"{', '.join(FILE_FORMATS)}")
    try:
        x, y, x_test, y_test = loader(path, label)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error})") from None
    x, y = _pair(x, y, ("x", "y"), path)
    if x_test is not None:
        x_test, y_test = _pair(x_test, y_test, ("x_test", "y_test"), path)
        if x_test.shape[1] != x.shape[1]:
            raise ValueError(f"{path}: x_test has {x_test.shape[1]} features and x "
                             f"{x.shape[1]}")
    return x, y, x_test, y_test


class FileTask:
    """A data set with a training part and a test part, sampled without replacement.

    Args:
        train, test: the two parts (a Dataset each, float64).
        source: where the data came from (for messages).
    """

    has_moments = False
    bayes_risk = None

    def __init__(self, train: Dataset, test: Dataset, source: str = "") -> None:
        if train.dim != test.dim:
            raise ValueError(f"train has {train.dim} features and test {test.dim}")
        self.train, self.test, self.source = train, test, source
        self._cursors = {"train": 0, "test": 0}
        self._calls = 0

    @property
    def dim(self) -> int:
        return self.train.dim

    @property
    def null_risk(self) -> float:
        """Var y over the training part."""
        return float(torch.var(self.train.y, unbiased=False))

    def sample(self, n: int, *, rng: np.random.Generator | None = None,
               split: str | None = None) -> Dataset:
        """The next n examples of ``split`` (default: train on the first call, then test)."""
        n = check_samples(n)
        split = split or ("train" if self._calls == 0 else "test")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self._calls += 1
        part, start = getattr(self, split), self._cursors[split]
        if start + n > part.n_samples:
            raise ValueError(f"n = {n} exceeds the {part.n_samples - start} {split} examples "
                             f"left in {self.source or 'the data'} ({part.n_samples} in all)")
        self._cursors[split] = start + n
        return Dataset(part.x[start:start + n].clone(), part.y[start:start + n].clone())


def _standardized(x: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, spread = x.mean(axis=0), x.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    return (x - mean) / spread, (x_test - mean) / spread


def file(*, rng: np.random.Generator, path: str = "", label: str = "y",
         test_fraction: float = 0.2, standardize: bool = False) -> FileTask:
    """Build a task from a local data file (module docstring: formats, split, sampling).

    Args:
        path: the data file (``.npz``, ``.npy``, ``.csv``, ``.parquet``), relative to the
            working directory or absolute.
        label: the label column (CSV/Parquet) or labels file (``.npy``).
        test_fraction: share of the examples held out when the file has no test split
            (0 < test_fraction < 1); ignored when it has one.
        standardize: center and scale the features with the training part's statistics.
    """
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    x, y, x_test, y_test = load_arrays(path, label)
    if x_test is None:
        if x.shape[0] < 2:
            raise ValueError(f"path: {path} has {x.shape[0]} example; a split needs at least 2")
        order = rng.permutation(x.shape[0])
        held = min(max(1, math.ceil(test_fraction * x.shape[0])), x.shape[0] - 1)
        x, y, x_test, y_test = x[order[held:]], y[order[held:]], x[order[:held]], y[order[:held]]
    else:
        order = rng.permutation(x.shape[0])
        x, y = x[order], y[order]
    if standardize:
        x, x_test = _standardized(x, x_test)
    as_tensor = lambda a: torch.as_tensor(a, dtype=DTYPE)  # noqa: E731
    return FileTask(Dataset(as_tensor(x), as_tensor(y)), Dataset(as_tensor(x_test),
                    as_tensor(y_test)), source=str(path))
