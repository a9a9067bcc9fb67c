"""Data models with exact population moments under Gaussian inputs (docs/CONTRACTS.md).

``TASKS`` maps a task name to its builder ``build(*, rng, **params) -> Task``; the classes can
also be constructed directly from explicit parameters. (The builders are imported under other
names so that ``lazylab.tasks.quadratic`` etc. stay the submodules.)
"""

from lazylab.tasks.base import Dataset, GaussianTask, Task
from lazylab.tasks.digits import digits as _build_digits
from lazylab.tasks.files import FileTask
from lazylab.tasks.files import file as _build_file
from lazylab.tasks.mixture import (MIXTURE_DELTAS, GaussianMixture, mixture_mmse,
                                   mixture_mmse_limit)
from lazylab.tasks.mixture import gaussian_mixture as _build_gaussian_mixture
from lazylab.tasks.multi_index import MULTI_INDEX_PRESETS, MultiIndex
from lazylab.tasks.multi_index import multi_index as _build_multi_index
from lazylab.tasks.quadratic import QUADRATIC_MATRICES, Quadratic
from lazylab.tasks.quadratic import quadratic as _build_quadratic
from lazylab.tasks.single_neuron import SingleNeuron
from lazylab.tasks.single_neuron import single_neuron as _build_single_neuron

__all__ = ["Dataset", "Task", "GaussianTask", "SingleNeuron", "Quadratic", "QUADRATIC_MATRICES",
           "GaussianMixture", "MIXTURE_DELTAS", "mixture_mmse", "mixture_mmse_limit",
           "MultiIndex", "MULTI_INDEX_PRESETS", "FileTask", "TASKS"]

TASKS = {
    "single_neuron": _build_single_neuron,
    "quadratic": _build_quadratic,
    "gaussian_mixture": _build_gaussian_mixture,
    "multi_index": _build_multi_index,
    "digits": _build_digits,
    "file": _build_file,
}
