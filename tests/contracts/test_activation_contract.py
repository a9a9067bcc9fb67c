"""What every activation of ACTIVATIONS must satisfy, parametrized over the registry itself.

Each check is a plain function of an :class:`Activation`, so a test can run it on an entry
registered at run time (see test_a_toy_activation_registered_at_run_time_is_checked).
* Hermite coefficients λ_k(σ; s, b), k ≤ 30, against an independent piecewise Gauss–Legendre
  rule (64 nodes per piece, cut at the kinks) to 1e-13 (moved here from tests/test_activations.py);
* E[σ(u + b₁) τ(v + b₂)] against the nested 2-D rule (order 48), with itself and with relu;
* σ′ against torch autograd away from the kinks;
* the Dirac parts of σ′ (jumping activations) against Stein's identity
  λ_1(σ; s, b) = s·E[f(sG + b)] + Σ_j a_j φ((k_j − b)/s) with σ′ = f + Σ_j a_j δ(· − k_j).
"""

from __future__ import annotations

import math

import pytest
import torch

from lazylab.activations import ACTIVATIONS, Activation, two_sided
from lazylab.gaussian import pair_expectation, quadrature_pair
from lazylab.gaussian.stein import derivative_parts
from lazylab.quadrature import gaussian_nodes, hermite_polynomials, normal_pdf

SCALES = torch.tensor([0.4, 1.0, 2.2, 1.3], dtype=torch.float64)
BIASES = torch.tensor([0.5, 0.0, -1.1, 0.3], dtype=torch.float64)
RHO = torch.tensor([0.35, -0.7, 0.9, 0.0], dtype=torch.float64)
HERMITE_DEGREE = 30
ZERO_SCALE = torch.zeros(1, dtype=torch.float64)

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny tensors


def registered():
    return sorted(ACTIVATIONS)


def reference_hermite(activation: Activation, degree, s, b):
    """E[σ(sG + b) He_k(G)] with nodes cut at the kinks, 64 Gauss–Legendre nodes per piece."""
    kinks = torch.as_tensor(activation.kinks, dtype=torch.float64)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    cuts = (kinks - b[:, None]) / safe[:, None] if activation.kinks else None
    z, w = gaussian_nodes(cuts, order=64, batch_shape=s.shape)
    values = activation.function(s[:, None] * z + b[:, None]) * w
    return torch.einsum("nm,nmk->nk", values, hermite_polynomials(z, degree))


def check_hermite(activation: Activation) -> None:
    # normalized μ_k = λ_k/√k! to degree 30, constant units (s = 0) included
    scales, biases = torch.cat([SCALES, ZERO_SCALE]), torch.cat([BIASES, ZERO_SCALE + 0.9])
    got = activation.hermite_coefficients(HERMITE_DEGREE, scales, biases, normalized=True)
    reference = reference_hermite(activation, HERMITE_DEGREE, scales, biases) / torch.exp(
        0.5 * torch.lgamma(torch.arange(HERMITE_DEGREE + 1, dtype=torch.float64) + 1))
    scale = 1 + reference.abs().amax(dim=-1, keepdim=True)
    assert torch.all((got - reference).abs() <= 1e-13 * scale), activation.name


def check_pairs(activation: Activation) -> None:
    for partner in (activation, ACTIVATIONS["relu"]):
        for biased in (True, False):
            b1, b2 = (BIASES, BIASES.flip(0)) if biased else (None, None)
            got = pair_expectation(activation, partner, SCALES ** 2, SCALES.flip(0) ** 2,
                                   RHO * SCALES * SCALES.flip(0), b1, b2)
            zero = torch.zeros_like(SCALES)
            reference = quadrature_pair(activation, partner, SCALES, SCALES.flip(0), RHO,
                                        zero if b1 is None else b1, zero if b2 is None else b2,
                                        order=48)
            assert torch.allclose(got, reference, rtol=1e-9, atol=1e-9), (activation.name,
                                                                           partner.name, biased)


def check_derivative(activation: Activation) -> None:
    parts = derivative_parts(activation)
    u = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64) + 0.0123   # off the kinks
    assert all(float((u - k).abs().min()) > 1e-3 for k in activation.kinks)
    if parts.function is None:                     # σ′ is Dirac masses only
        assert parts.diracs, activation.name
        with pytest.raises(ValueError, match="Dirac"):
            activation.derivative()
        grad = torch.zeros_like(u)
    else:
        v = u.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(activation.function(v).sum(), v)
        assert torch.allclose(activation.derivative()(u), grad, rtol=1e-10, atol=1e-12)
        assert torch.allclose(parts.function(u), grad, rtol=1e-10, atol=1e-12)
    if parts.function is None:
        assert torch.all(grad == 0)


def check_dirac_parts(activation: Activation) -> None:
    parts = derivative_parts(activation)
    for weight, location in parts.diracs:           # a_j = jump of σ at k_j
        step = torch.tensor([location - 1e-9, location + 1e-9], dtype=torch.float64)
        values = activation.function(step)
        assert float(values[1] - values[0]) == pytest.approx(weight, abs=1e-6)
    lam1 = activation.hermite_coefficients(1, SCALES, BIASES)[..., 1]
    smooth = torch.zeros_like(SCALES) if parts.function is None else \
        parts.function.hermite_coefficients(0, SCALES, BIASES)[..., 0]
    masses = sum((w * normal_pdf((k - BIASES) / SCALES) for w, k in parts.diracs),
                 torch.zeros_like(SCALES))
    assert torch.allclose(lam1, SCALES * smooth + masses, rtol=1e-10, atol=1e-12), activation.name


CHECKS = [check_hermite, check_pairs, check_derivative, check_dirac_parts]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", registered())
def test_activation_contract(name, check):
    check(ACTIVATIONS[name])


def test_a_toy_activation_registered_at_run_time_is_checked(monkeypatch):
    # A leaky ReLU (one line: a·relu(u) + b·relu(−u)) and a smooth custom function, registered
    # at run time, are picked up by the registry parametrization and pass every check.
    leaky = two_sided("toy_leaky", ACTIVATIONS["relu"], 1.0, -0.1, derivative_name="toy_slope")
    slope = two_sided("toy_slope", ACTIVATIONS["step"], 1.0, 0.1)
    smooth = Activation("toy_smooth", lambda u: torch.sin(u) + 0.5 * u)
    for entry in (leaky, slope, smooth):
        monkeypatch.setitem(ACTIVATIONS, entry.name, entry)
    assert {"toy_leaky", "toy_slope", "toy_smooth"} <= set(registered())
    for name in ("toy_leaky", "toy_slope", "toy_smooth"):
        for check in CHECKS:
            check(ACTIVATIONS[name])


def test_a_wrong_toy_entry_fails_the_contract(monkeypatch):
    # The checks can fail: a Dirac weight of the wrong size is caught.
    lying = two_sided("toy_lying", ACTIVATIONS["step"], 1.0, -0.5)
    monkeypatch.setitem(ACTIVATIONS, lying.name, lying)
    broken = Activation("toy_lying_fn", lambda u: 2.0 * (u > 0).to(u.dtype), kinks=(0.0,),
                        components=lying.components)
    with pytest.raises(AssertionError):
        check_dirac_parts(broken)
    with pytest.raises(AssertionError):
        check_hermite(broken)
    assert math.isfinite(float(lying.hermite_coefficients(2)[0]))
