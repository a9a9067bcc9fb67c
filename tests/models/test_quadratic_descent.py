"""The d × d population descent of Theorem 3's model (lazylab.models._quadratic_descent).

Checked against the direct descent on U (N, d) — the same loop with the closed-form risk of
the width-N network — run with the d × d form switched off: risk trajectory, steps, stop
reason, criterion, halvings and final weights agree to 1e-10 relative (round-off of two
different orders of summation, amplified by at most a few hundred steps of a contraction), and
the stated gradient ∇_U R = U S against autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lazylab.models._network_training as training
from lazylab.errors import DivergenceError
from lazylab.models._quadratic_descent import applies, column_space, gram_risk
from lazylab.models.network import Network
from lazylab.risk.quadratic import quadratic_network_risk
from lazylab.tasks import TASKS

DIM = 6
RELATIVE = 1e-10
FLOOR = 1e-15
"""Near the optimum R itself carries a round-off of about ε‖M‖·‖M − B‖ (ε ≈ 1e-16), far below
1e-15 R₀, so risks are compared to 1e-10 relative or 1e-15 R₀ absolute."""
THEOREM3 = dict(activation="quadratic", train="first", head_init="ones", rate_scaling="none")


def _task(kind: str):
    if kind == "quadratic":
        return TASKS["quadratic"](rng=np.random.default_rng(3), dim=DIM, matrix="exp-diagonal")
    return TASKS["gaussian_mixture"](rng=np.random.default_rng(4), dim=DIM,
                                     delta="paper" if kind == "mixture" else "paper-rotated")


def _descend(net: Network, task, *, direct: bool, monkeypatch):
    """(TrainingResult, final raw U, final c) of ``net``'s population run, seed 0."""
    with monkeypatch.context() as patch:
        if direct:
            patch.setattr(training, "applies", lambda *args: False)
        rng = np.random.default_rng(0)
        state = net._start(task, rng)
        result = training.MODES["population"].run(net, state, net._groups(state), task, rng,
                                                  net._options(net.learning_rate, None))
    return result, state.raw.u.detach().clone(), float(state.raw.c.detach())


def _assert_same_run(net: Network, task, monkeypatch):
    fast, u_fast, c_fast = _descend(net, task, direct=False, monkeypatch=monkeypatch)
    slow, u_slow, c_slow = _descend(net, task, direct=True, monkeypatch=monkeypatch)
    for name in ("steps", "stop_reason", "halvings", "criterion_name", "converged",
                 "diverged", "loss_steps", "learning_rate"):
        assert getattr(fast, name) == getattr(slow, name), name
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=RELATIVE,
                               atol=FLOOR * slow.initial_loss)
    for name in ("final_loss", "initial_loss", "recent_loss", "gradient_norm", "criterion"):
        assert getattr(fast, name) == pytest.approx(getattr(slow, name), rel=RELATIVE), name
    scale = float(torch.linalg.matrix_norm(u_slow))
    assert float(torch.linalg.matrix_norm(u_fast - u_slow)) <= RELATIVE * scale
    assert c_fast == pytest.approx(c_slow, rel=RELATIVE, abs=RELATIVE)
    return fast


@pytest.mark.parametrize("kind", ["quadratic", "mixture"])
@pytest.mark.parametrize("width", [9, 20])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_the_d_by_d_descent_is_the_direct_descent(kind, width, momentum, monkeypatch):
    """To tolerance 1e-6 (or the 400-step budget): the same run in every reported number."""
    task = _task(kind)
    net = Network(width=width, weight_scale=math.sqrt(math.sqrt(DIM) / width),
                  learning_rate=0.01 if kind == "quadratic" else 0.05, momentum=momentum,
                  max_steps=400, tol=1e-6, **THEOREM3)
    state = net._start(task, np.random.default_rng(0))
    assert applies(net, state, net._groups(state), task)
    result = _assert_same_run(net, task, monkeypatch)
    assert result.steps > 50  # a real trajectory, not a few steps


@pytest.mark.parametrize("schedule, steps, parameterization",
                         [("paper", 60, "standard"), ("constant", 30, "mean_field")])
def test_fixed_budgets_and_the_paper_schedule_agree(schedule, steps, parameterization,
                                                    monkeypatch):
    """Fixed budgets (the paper schedule's drops included; mean field: head 1/N, gradient
    multiplier N on U), on the non-diagonal mixture."""
    net = Network(width=20, weight_scale=0.5, learning_rate=0.05, momentum=0.9, steps=steps,
                  schedule=schedule, parameterization=parameterization, **THEOREM3)
    result = _assert_same_run(net, _task("mixture-rotated"), monkeypatch)
    assert result.steps == steps and result.stop_reason == "budget"


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_diverging_rate_is_halved_the_same_number_of_times(momentum, monkeypatch):
    """η = 0.3 explodes the quadratic task's risk at once: both runs back off, halve η the same
    number of times (≥ 2) and then descend along the same trajectory. (A rate that lands at
    the edge of stability, e.g. η = 1 → η/16 without momentum, oscillates for tens of steps and
    amplifies round-off to ~3e-10; the same step counts and halvings, beyond the tolerance.)"""
    net = Network(width=9, weight_scale=1.0, learning_rate=0.3, momentum=momentum,
                  max_steps=300, tol=1e-6, **THEOREM3)
    result = _assert_same_run(net, _task("quadratic"), monkeypatch)
    assert result.halvings >= 2 and not result.diverged


def test_exhausted_halvings_raise_in_both_forms(monkeypatch):
    net = Network(width=9, weight_scale=1.0, learning_rate=1.0, max_halvings=1, max_steps=50,
                  **THEOREM3)
    task = _task("quadratic")
    for direct in (False, True):
        with pytest.raises(DivergenceError, match="after halving the learning rate 1 times"):
            _descend(net, task, direct=direct, monkeypatch=monkeypatch)


def test_fit_diagnostics_and_the_learning_monitor_agree(monkeypatch):
    """Through Network.fit, with the learning monitor (track_every = 5): every diagnostic."""
    task = _task("quadratic")
    net = Network(width=20, weight_scale=0.4, learning_rate=0.02, momentum=0.9, max_steps=300,
                  tol=1e-6, track_every=5, **THEOREM3)
    fast = net.fit(task, rng=np.random.default_rng(0))
    with monkeypatch.context() as patch:
        patch.setattr(training, "applies", lambda *args: False)
        slow = net.fit(task, rng=np.random.default_rng(0))
    assert fast.diagnostics.keys() == slow.diagnostics.keys()
    assert any(name.startswith("learned_step_") for name in fast.diagnostics)
    for name, value in slow.diagnostics.items():
        assert fast.diagnostics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    torch.testing.assert_close(fast.weights, slow.weights, rtol=RELATIVE, atol=0)


def _matrix_gradient(task, m: torch.Tensor, offset: float) -> tuple[torch.Tensor, float]:
    """(∂R/∂M, ∂R/∂c) as stated in the module docstring."""
    if hasattr(task, "matrix"):
        gap = float(torch.trace(m)) + offset - float(task.target_mean())
        return 4 * (m - task.matrix) + 2 * gap * torch.eye(m.shape[0], dtype=m.dtype), 2 * gap
    gradient, offset_gradient = torch.zeros_like(m), 0.0
    for label, (probability, c) in zip((1.0, -1.0), task.components):
        residual = label - offset - float(torch.trace(m @ c))
        gradient += probability * (4 * c @ m @ c - 2 * residual * c)
        offset_gradient -= 2 * probability * residual
    return gradient, offset_gradient


@pytest.mark.parametrize("kind", ["quadratic", "mixture", "mixture-rotated"])
def test_gradient_is_a_right_multiple_and_its_norm_lives_in_d_by_d(kind):
    """∇_U R = U S with S = 2α ∂R/∂M (autograd at width N = 20), ∂R/∂c as stated, and
    ‖∇_U R‖ = ‖∇_P R(Q₀P)‖ (autograd at width d) = √Tr(S PᵀP S)."""
    task, rng = _task(kind), np.random.default_rng(5)
    u = torch.tensor(rng.standard_normal((20, DIM)) / 3, requires_grad=True)
    alpha, offset = 1.5, torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    risk = quadratic_network_risk(task, u, torch.full((20,), alpha, dtype=torch.float64), offset)
    risk.backward()
    m = alpha * u.detach().T @ u.detach()
    derivative, offset_derivative = _matrix_gradient(task, m, float(offset.detach()))
    s = 2 * alpha * derivative
    torch.testing.assert_close(u.grad, u.detach() @ s, rtol=1e-12, atol=1e-13)
    assert float(offset.grad) == pytest.approx(offset_derivative, rel=1e-12)
    basis, p = torch.linalg.qr(u.detach(), mode="reduced")
    p.requires_grad_(True)
    quadratic_network_risk(task, p, torch.full((DIM,), alpha, dtype=torch.float64),
                           offset.detach()).backward()
    norm = float(torch.linalg.matrix_norm(u.grad))
    assert float(torch.linalg.matrix_norm(p.grad)) == pytest.approx(norm, rel=1e-12)
    gram = p.detach().T @ p.detach()
    assert math.sqrt(float(torch.trace(s @ gram @ s))) == pytest.approx(norm, rel=1e-12)
    torch.testing.assert_close(basis @ p.grad, u.grad, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", ["quadratic", "mixture", "mixture-rotated"])
@pytest.mark.parametrize("with_offset", [True, False])
def test_gram_risk_is_the_width_d_network_risk_with_its_gradient(kind, with_offset):
    """gram_risk(P, κ, c) against autograd through quadratic_network_risk(√κ·P, 1_d, c): the
    value and both gradients to 1e-12 relative (P non-symmetric, so ∇_P = κP(G + Gᵀ) matters)."""
    task, rng = _task(kind), np.random.default_rng(6)
    kappa = 0.8
    p = torch.tensor(rng.standard_normal((DIM, DIM)) / 3, requires_grad=True)
    offset = torch.tensor(0.2, dtype=torch.float64, requires_grad=with_offset)
    value = gram_risk(task, p, kappa, offset)
    value.backward()
    q = p.detach().clone().requires_grad_(True)
    c = offset.detach().clone().requires_grad_(True)
    reference = quadratic_network_risk(task, math.sqrt(kappa) * q,
                                       torch.ones(DIM, dtype=torch.float64), c)
    reference.backward()
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-14)
    if with_offset:
        assert float(offset.grad) == pytest.approx(float(c.grad), rel=1e-12)
    else:
        assert offset.grad is None


def test_applies_only_where_the_reduction_is_exact():
    """N > d, a constant head, train="first", SGD, σ = u², no biases, no laziness, closed-form
    task; otherwise the direct descent."""
    task = _task("quadratic")

    def check(**changes) -> bool:
        net = Network(**{**THEOREM3, "width": 9, "steps": 5, **changes})
        state = net._start(task, np.random.default_rng(0))
        return applies(net, state, net._groups(state), task)

    assert check() and check(offset=False) and check(parameterization="mean_field")
    assert not check(width=DIM) and not check(width=3)
    assert not check(optimizer="adam") and not check(train="both")
    assert not check(head_init="gaussian") and not check(biases=True)
    assert not check(laziness=2.0) and not check(activation="relu")


def test_column_space_starts_at_the_initial_weights():
    """Q₀P₀ = U₀ and Q₀ᵀQ₀ = I (to round-off), head α = s_out·v."""
    net = Network(width=20, head_scale=0.7, **THEOREM3)
    state = net._start(_task("quadratic"), np.random.default_rng(0))
    space = column_space(state)
    torch.testing.assert_close(space.basis @ space.coordinates.detach(), state.raw.u.detach(),
                               rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(space.basis.T @ space.basis, torch.eye(DIM, dtype=torch.float64),
                               rtol=0, atol=1e-14)
    assert space.head_value == 0.7
