"""Dual activations E[σ(u + b₁)τ(v + b₂)]: every path against independent references."""

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.gaussian import dual_matrix, feature_input_moment, feature_mean, pair_expectation
from lazylab.gaussian.dual import quadrature_pair

S1 = torch.tensor([1.0, 0.7, 1.4, 1.1, 0.9, 1.3], dtype=torch.float64)
S2 = torch.tensor([1.0, 1.2, 0.5, 1.1, 0.8, 1.0], dtype=torch.float64)
RHO = torch.tensor([0.3, -0.6, 0.95, 0.999, -0.2, 0.0], dtype=torch.float64)
B1 = torch.tensor([0.0, 0.3, -0.7, 0.2, 1.0, -0.4], dtype=torch.float64)
B2 = torch.tensor([0.0, -0.4, 0.5, 0.2, -1.0, 0.6], dtype=torch.float64)

PAIRS = [("relu", "relu"), ("relu", "step"), ("step", "relu"), ("step", "step"),
         ("quadratic", "relu"), ("cubic", "tanh"), ("tanh", "tanh"), ("erf", "sigmoid"),
         ("softplus", "relu"), ("tanh", "step")]


def engine(sigma, tau, biased=True):
    return pair_expectation(sigma, tau, S1**2, S2**2, RHO * S1 * S2,
                            B1 if biased else None, B2 if biased else None)


@pytest.mark.parametrize("sigma,tau", PAIRS)
def test_every_path_matches_nested_quadrature(sigma, tau):
    # closed forms, exact Mehler series and tail-bounded series against the 2-D rule
    reference = quadrature_pair(get_activation(sigma), get_activation(tau), S1, S2, RHO, B1, B2)
    assert torch.allclose(engine(sigma, tau), reference, rtol=0, atol=1e-9)


def test_nested_quadrature_reproduces_the_erf_closed_form():
    # Williams (1997): the fallback rule itself is accurate to round-off on a smooth pair.
    exact = engine("erf", "erf", biased=False)
    zero = torch.zeros_like(B1)
    got = quadrature_pair(get_activation("erf"), get_activation("erf"), S1, S2, RHO, zero, zero)
    assert torch.allclose(got, exact, atol=1e-13)


def test_unbiased_fast_paths_equal_biased_forms_at_zero_bias():
    zero = torch.zeros_like(B1)
    for sigma, tau in [("relu", "relu"), ("relu", "step"), ("step", "step")]:
        biased = pair_expectation(sigma, tau, S1**2, S2**2, RHO * S1 * S2, zero, zero)
        assert torch.allclose(engine(sigma, tau, biased=False), biased, atol=1e-13)


def test_polynomial_pairs_equal_isserlis():
    # E[(u + b₁)²(v + b₂)²] by Isserlis: (s₁² + b₁²)(s₂² + b₂²) + 2c² + 4 b₁ b₂ c
    c = RHO * S1 * S2
    exact = (S1**2 + B1**2) * (S2**2 + B2**2) + 2 * c**2 + 4 * B1 * B2 * c
    assert torch.allclose(engine("quadratic", "quadratic"), exact, atol=1e-12)


def test_composites_expand_through_sign_flips():
    # |t| = relu(t) + relu(−t); sign(t) = step(t) − step(−t)
    abs_relu = engine("abs", "relu")
    flipped = pair_expectation("relu", "relu", S1**2, S2**2, -RHO * S1 * S2, -B1, B2)
    assert torch.allclose(abs_relu, engine("relu", "relu") + flipped, atol=1e-14)
    reference = quadrature_pair(get_activation("sign"), get_activation("tanh"), S1, S2, RHO, B1, B2)
    assert torch.allclose(engine("sign", "tanh"), reference, atol=1e-9)


def test_degenerate_and_collinear_units():
    one = torch.ones(3, dtype=torch.float64)
    # a zero-variance unit is a constant: E = σ(b₁) E[τ(v + b₂)]
    got = pair_expectation("relu", "relu", 0 * one, one, 0 * one, 0.5 * one, 0 * one)
    assert torch.allclose(got, 0.5 * one / math.sqrt(2 * math.pi), atol=1e-15)
    # a unit with itself: E[relu(G + b)²] = (1 + b²)Φ(b) + bφ(b)
    b = torch.tensor([-1.0, 0.0, 0.7], dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    exact = (1 + b * b) * normal.cdf(b) + b * torch.exp(normal.log_prob(b))
    assert torch.allclose(pair_expectation("relu", "relu", one, one, one, b, b), exact, atol=1e-14)


def test_dual_matrix_against_monte_carlo():
    rng = np.random.default_rng(7)
    d, n = 5, 400_000
    w = torch.as_tensor(rng.standard_normal((4, d)) / math.sqrt(d))
    b = torch.as_tensor(rng.standard_normal(4) * 0.5)
    root = torch.as_tensor(np.linalg.cholesky(np.eye(d) + 0.3 * np.ones((d, d))))
    cov = root @ root.T
    x = torch.as_tensor(rng.standard_normal((n, d))) @ root.T
    for name in ("relu", "tanh"):
        phi = get_activation(name)(x @ w.T + b)
        products = phi[:, :, None] * phi[:, None, :]
        mean, se = products.mean(0), products.std(0) / math.sqrt(n)
        # 5 standard errors per entry: two-sided failure probability ≈ 6e-7 each.
        assert torch.all((dual_matrix(name, w, b, covariance=cov) - mean).abs() < 5 * se)
        moment = phi[:, :, None] * x[:, None, :]
        assert torch.all((feature_input_moment(name, w, b, cov) - moment.mean(0)).abs()
                         < 5 * moment.std(0) / math.sqrt(n))
        assert torch.all((feature_mean(name, w, b, cov) - phi.mean(0)).abs()
                         < 5 * phi.std(0) / math.sqrt(n))


def test_dual_matrix_properties():
    rng = np.random.default_rng(3)
    w = torch.as_tensor(rng.standard_normal((30, 8)) / math.sqrt(8))
    b = torch.as_tensor(rng.standard_normal(30))
    gram = dual_matrix("relu", w, b)
    assert torch.allclose(gram, gram.T, atol=1e-14)
    assert float(torch.linalg.eigvalsh(gram).min()) > -1e-12
    rotation = torch.as_tensor(np.linalg.qr(rng.standard_normal((8, 8)))[0])
    assert torch.allclose(dual_matrix("relu", w @ rotation, b), gram, atol=1e-13)
    order = torch.as_tensor(rng.permutation(30))
    assert torch.allclose(dual_matrix("relu", w[order], b[order]), gram[order][:, order], atol=1e-14)


def test_pair_expectation_is_differentiable():
    args = [t.clone().requires_grad_(True) for t in (S1[:5]**2, S2[:5]**2, (RHO * S1 * S2)[:5],
                                                      B1[:5], B2[:5])]
    for sigma, tau in [("relu", "relu"), ("step", "relu"), ("quadratic", "tanh")]:
        assert torch.autograd.gradcheck(lambda *a: pair_expectation(sigma, tau, *a), args)


def _relu_pair_risk(weights: torch.Tensor, head: torch.Tensor, target: torch.Tensor):
    """E[(Σ aᵢ relu(wᵢ·x) − relu(w*·x))²], x ~ N(0, I), through the engine."""
    both = torch.cat([weights, target[None]])
    coef = torch.cat([head, -torch.ones(1, dtype=torch.float64)])
    return coef @ dual_matrix("relu", both, None) @ coef


def test_unbiased_relu_gradients_are_exact_at_collinear_pairs():
    # Unit 1 = 2 · unit 0, unit 2 = −unit 0 (ρ = 1 and −1 off the diagonal, ρ = 1 on it): the
    # closed form's ρ-derivative s₁s₂(π − θ)/(2π) is finite there, and the engine's gradient
    # must equal central differences of the exact risk (step 1e-6: error ~1e-10 on a smooth
    # function; at ρ = ±1 the risk is smooth in W because the pair value is C¹ in ρ).
    rng = np.random.default_rng(4)
    base = torch.as_tensor(rng.standard_normal((2, 5)) / math.sqrt(5))
    weights = torch.stack([base[0], 2 * base[0], -base[0], base[1]]).requires_grad_(True)
    head = torch.tensor([0.7, -0.3, 0.5, 1.1], dtype=torch.float64)
    target = torch.as_tensor(rng.standard_normal(5) / math.sqrt(5))
    risk = _relu_pair_risk(weights, head, target)
    (grad,) = torch.autograd.grad(risk, weights)
    assert torch.isfinite(grad).all()
    numeric = torch.zeros_like(grad)
    with torch.no_grad():
        for index in np.ndindex(*weights.shape):
            plus, minus = weights.detach().clone(), weights.detach().clone()
            plus[index] += 1e-6
            minus[index] -= 1e-6
            numeric[index] = (_relu_pair_risk(plus, head, target)
                              - _relu_pair_risk(minus, head, target)) / 2e-6
    torch.testing.assert_close(grad, numeric, rtol=1e-7, atol=1e-8)


def test_the_relu_core_backward_is_the_finite_derivative():
    from lazylab.activations.families import _ArcCosineCore
    rho = torch.tensor([-1.0, -0.5, 0.0, 0.7, 1.0], dtype=torch.float64, requires_grad=True)
    core = _ArcCosineCore.apply(rho)
    plain = rho.detach()
    expected = torch.sqrt(1 - plain**2) + (torch.pi - torch.acos(plain)) * plain
    torch.testing.assert_close(core.detach(), expected, rtol=0, atol=1e-15)
    (grad,) = torch.autograd.grad(core.sum(), rho)
    torch.testing.assert_close(grad, torch.pi - torch.acos(plain), rtol=0, atol=1e-15)
    assert grad[0] == 0.0 and grad[-1] == torch.pi
    inner = torch.tensor([-0.9, -0.2, 0.4, 0.95], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_ArcCosineCore.apply, (inner,))
    twice = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    (first,) = torch.autograd.grad(_ArcCosineCore.apply(twice).sum(), twice, create_graph=True)
    with pytest.raises(RuntimeError):
        first.sum().backward()  # once differentiable: no silent zero second derivative


def test_zero_biases_are_no_biases_unless_they_take_gradients():
    # A zero bias that takes no gradient is computed as no bias (the unbiased closed form); one
    # that takes a gradient keeps the biased form, whose ∂/∂b₁ at b = 0 is E[1{u>0} v₊] =
    # s₂(1 + ρ)/(2√(2π)) (Gaussian integration by parts).
    var1 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    var2 = torch.tensor([0.5, 1.5], dtype=torch.float64)
    rho = torch.tensor([0.3, -0.7], dtype=torch.float64)
    cov = rho * torch.sqrt(var1 * var2)
    unbiased = pair_expectation("relu", "relu", var1, var2, cov)
    zeros = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(pair_expectation("relu", "relu", var1, var2, cov, zeros, 0.0),
                               unbiased, rtol=0, atol=0)
    bias = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    value = pair_expectation("relu", "relu", var1, var2, cov, bias, zeros)
    torch.testing.assert_close(value.detach(), unbiased, rtol=1e-12, atol=1e-14)
    (grad,) = torch.autograd.grad(value.sum(), bias)
    expected = torch.sqrt(var2) * (1 + rho) / (2 * math.sqrt(2 * math.pi))
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
