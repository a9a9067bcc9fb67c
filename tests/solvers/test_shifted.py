"""Reused Cholesky factors across shifts: each solution agrees with a factor of its own shift.

Tolerances: each reused-factor solution has normwise backward error η ≤ 10⁻¹⁴ (checked here
from a residual recomputed independently), so it is within about η·cond(S + sI) of the exact
solution, as the per-shift Cholesky solve is within about m·ε·cond. The kernel matrices below
have cond(S + sI) ≤ 10⁴ for every shift, so the two agree to ≲ 10⁻¹⁰; checked at 10⁻⁹.
"""

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.solvers import ridge as ridge_module
from lazylab.solvers import ridge_path as path_module
from lazylab.solvers.ridge import solve_symmetric
from lazylab.solvers.ridge_path import symmetric_path
from lazylab.solvers.shifted import BACKWARD_TOLERANCE, ReusedFactorSolver, reuse_budget

SHIFTS = [1e-8, 1e-6, 1e-4, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e4]


def _kernel_problem(m: int = 400, d: int = 40, seed: int = 0):
    """The ReLU NTK matrix of m Gaussian points in d dimensions and a target: its smallest
    eigenvalue is bounded away from 0 (≈ 0.1 here), as for the kernel studies."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((m, d)))
    y = torch.relu(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * torch.from_numpy(rng.standard_normal(m))
    return DualKernel("ntk")(x, x), y


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _direct(matrix, rhs, shift):
    solution, ok = solve_symmetric(matrix + shift * torch.eye(matrix.shape[0],
                                                              dtype=torch.float64), rhs)
    assert ok
    return solution


def _backward_error(matrix, rhs, shift, solution) -> float:
    shifted = matrix + shift * torch.eye(matrix.shape[0], dtype=torch.float64)
    norm = float(shifted.abs().sum(dim=1).max())
    residual = float(torch.linalg.vector_norm(rhs - shifted @ solution))
    return residual / (norm * float(torch.linalg.vector_norm(solution))
                       + float(torch.linalg.vector_norm(rhs)))


def test_each_shift_agrees_with_its_own_factor_and_few_factors_serve_the_grid():
    matrix, rhs = _kernel_problem()
    before = matrix.clone()
    assert float(torch.linalg.eigvalsh(matrix)[0]) > 0.05  # the spectrum the reuse relies on
    solver = ReusedFactorSolver(matrix, rhs)
    routes = []
    for shift in SHIFTS:
        solution, route = solver.solve(shift)
        routes.append(route)
        assert _relative(solution, _direct(matrix, rhs, shift)) < 1e-9, shift
        if route in ("pcg", "cholesky-mixed"):
            assert _backward_error(matrix, rhs, shift, solution) <= BACKWARD_TOLERANCE, shift
    assert routes[0] == "cholesky"  # 1e-8 ≪ tr S / 10⁶: float64
    assert routes[1:4] == ["pcg"] * 3  # shifts far below μ_min: the first factor serves them
    assert sum(route != "pcg" for route in routes) <= 5, routes  # measured 5 of 9
    assert torch.equal(matrix, before)


def test_a_fresh_factor_is_float32_where_the_trace_bound_allows(monkeypatch):
    # solve_shifted's rule: from MIXED_MIN_SIZE on (lowered here) and tr S + s ≤ 10⁶ s.
    monkeypatch.setattr(ridge_module, "MIXED_MIN_SIZE", 100)
    matrix, rhs = _kernel_problem(m=200)
    solver = ReusedFactorSolver(matrix, rhs, budget=1)
    for shift, route in ((1e-6, "cholesky"), (1.0, "cholesky-mixed")):  # tr S ≈ 200
        solution, taken = solver.solve(shift)
        assert taken == route and solver.factor.single == (route == "cholesky-mixed")
        assert _relative(solution, _direct(matrix, rhs, shift)) < 1e-9, shift
        assert _backward_error(matrix, rhs, shift, solution) <= 4 * BACKWARD_TOLERANCE


def test_a_hopeless_shift_is_factored_anew_and_a_budget_of_one_refactors_every_time():
    # A rank-deficient S: μ_min = 0, so a factor at s₀ preconditions the shift s with condition
    # s/s₀; at 10⁶ CG's rate projects past its budget and the shift gets its own factor.
    rng = np.random.default_rng(1)
    left = torch.from_numpy(rng.standard_normal((200, 150)))
    matrix, rhs = left @ left.T / 150, torch.from_numpy(rng.standard_normal(200))
    solver = ReusedFactorSolver(matrix, rhs)
    routes = [solver.solve(shift)[1] for shift in (1e-3, 1e3)]
    assert routes[1] != "pcg"
    matrix, rhs = _kernel_problem(m=200)
    solver = ReusedFactorSolver(matrix, rhs, budget=1)
    for shift in (1e-2, 10.0, 1e4):  # each a factor of 10³ from the last: one iteration is short
        solution, route = solver.solve(shift)
        assert route in ("cholesky", "cholesky-mixed")
        assert _relative(solution, _direct(matrix, rhs, shift)) < 1e-9, shift


def test_a_numerically_singular_shift_falls_back_to_the_pseudo_inverse():
    rng = np.random.default_rng(2)
    left = torch.from_numpy(rng.standard_normal((60, 20)))
    matrix, rhs = left @ left.T, torch.from_numpy(rng.standard_normal(60))  # rank 20
    solver = ReusedFactorSolver(matrix, rhs)
    solution, route = solver.solve(1e-300)
    expected, ok = solve_symmetric(matrix + 1e-300 * torch.eye(60, dtype=torch.float64), rhs)
    assert route == "eigh" and not ok and _relative(solution, expected) < 1e-12
    assert solver.factor is None  # nothing to reuse: the next shift is factored
    assert solver.solve(1.0)[1] == "cholesky"


@pytest.mark.parametrize("shifts, message", [([1.0, 0.5], "increasing"), ([0.0], "positive"),
                                             ([float("nan")], "positive")])
def test_bad_shift_orders_are_refused(shifts, message):
    matrix, rhs = _kernel_problem(m=50)
    solver = ReusedFactorSolver(matrix, rhs)
    with pytest.raises(ValueError, match=message):
        for shift in shifts:
            solver.solve(shift)


def test_one_right_hand_side_and_a_positive_budget_only():
    matrix, rhs = _kernel_problem(m=50)
    with pytest.raises(ValueError, match="one right-hand side"):
        ReusedFactorSolver(matrix, torch.stack([rhs, rhs], 1))
    with pytest.raises(ValueError, match="budget"):
        ReusedFactorSolver(matrix, rhs, budget=0)
    with pytest.raises(ValueError, match="one right-hand side"):
        symmetric_path(matrix, torch.stack([rhs, rhs], 1), [1.0], method="reuse")
    assert reuse_budget(512) == 10 and reuse_budget(8192) == 81


def test_symmetric_path_reuses_from_its_size_on_and_answers_in_the_given_order(monkeypatch):
    matrix, rhs = _kernel_problem(m=300)
    shifts = [1.0, 0.0, 1e-6, 1e-4, 1e-6, 100.0]  # unsorted, a zero and a repeat
    monkeypatch.setattr(path_module, "REUSE_MIN_SIZE", 301)
    assert {route for _, route in symmetric_path(matrix, rhs, shifts)} <= {"cholesky", "eigh"}
    monkeypatch.setattr(path_module, "REUSE_MIN_SIZE", 300)
    solved = symmetric_path(matrix, rhs, shifts)
    assert "pcg" in {route for _, route in solved}
    for shift, (solution, route) in zip(shifts, solved):
        assert _relative(solution, _direct(matrix, rhs, shift)) < 1e-9, shift
    assert solved[1][1] == "cholesky" and torch.equal(solved[2][0], solved[4][0])
    several = torch.stack([rhs, 2 * rhs], 1)  # two columns keep a factor per shift
    assert {route for _, route in symmetric_path(matrix, several, shifts)} == {"cholesky"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reused_factors_on_cuda_agree_with_the_cpu():
    matrix, rhs = _kernel_problem()
    cpu = ReusedFactorSolver(matrix, rhs)
    gpu = ReusedFactorSolver(matrix.cuda(), rhs.cuda())
    for shift in SHIFTS:
        (expected, _), (solution, route) = cpu.solve(shift), gpu.solve(shift)
        assert solution.device.type == "cuda" and route in ("pcg", "cholesky", "cholesky-mixed")
        assert _relative(solution.cpu(), expected) < 1e-9, shift
