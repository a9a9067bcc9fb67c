"""Data models with exact population moments under Gaussian inputs (docs/CONTRACTS.md).

``TASKS`` maps a task name to its builder ``build(*, rng, **params) -> Task``; the classes can
also be constructed directly from explicit parameters.
"""

from lazylab.tasks.base import Dataset, GaussianTask, Task
from lazylab.tasks.quadratic import QUADRATIC_MATRICES, Quadratic, quadratic
from lazylab.tasks.single_neuron import SingleNeuron, single_neuron

__all__ = ["Dataset", "Task", "GaussianTask", "SingleNeuron", "Quadratic", "QUADRATIC_MATRICES",
           "TASKS"]

TASKS = {
    "single_neuron": single_neuron,
    "quadratic": quadratic,
}
