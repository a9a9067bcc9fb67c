"""Generic solvers, independent of the regimes: conjugate gradient, ridge, kernel ridge (exact,
FALKON and FALKON ridge paths), structured solves, trainers.

Every iterative solver stops on a stated tolerance with its step count as a budget and reports
``converged``, its steps, its final criterion, the tolerance and ``stop_reason``.
"""

from lazylab.solvers.cg import CGResult, conjugate_gradient
from lazylab.solvers.convergence import STOP_REASONS
from lazylab.solvers.falkon import falkon_path
from lazylab.solvers.kernel_ridge import KernelRidgeSolution, kernel_matrix, kernel_ridge
from lazylab.solvers.ridge import NormalEquations, RidgeSolution, solve_ridge, streaming_ridge
from lazylab.solvers.training import (TrainingResult, fresh_batches, minibatches, paper_schedule,
                                      population_descent, train)

__all__ = ["CGResult", "conjugate_gradient",
           "KernelRidgeSolution", "kernel_matrix", "kernel_ridge", "falkon_path",
           "NormalEquations", "RidgeSolution", "solve_ridge", "streaming_ridge",
           "TrainingResult", "train", "population_descent", "fresh_batches", "minibatches",
           "paper_schedule", "STOP_REASONS"]
