"""ψ fixed point (Ghorbani et al. eqs. 9/14): solver vs closed form, residual, trace interpretation."""

import numpy as np
import pytest

from lazylab.theory.fixed_point import fixed_point_psi, fixed_point_psi_isotropic
from lazylab.theory.hermite import hermite_constants

RHOS = np.array([1e-3, 0.1, 0.5, 0.99, 1.0, 1.01, 2.0, 10.0, 1e3])


@pytest.mark.parametrize("lambda1, lambda_tilde", [(0.5, 0.25 - 1 / (2 * np.pi)), (0.0, 2.0),
                                                    (1.3, 0.01), (2.0, 5.0)])
def test_isotropic_closed_form_equals_bracketing_solver(lambda1, lambda_tilde):
    solver = fixed_point_psi(RHOS, [1.0], lambda1=lambda1, lambda_tilde=lambda_tilde)
    closed = fixed_point_psi_isotropic(RHOS, lambda1=lambda1, lambda_tilde=lambda_tilde)
    np.testing.assert_allclose(solver, closed, rtol=1e-13)


def test_solver_satisfies_equation_9_for_a_general_spectrum():
    rng = np.random.default_rng(3)
    t = rng.exponential(size=200)
    t /= t.mean()                      # Tr Γ = 1 ⇔ mean of the spectrum of dΓ is 1
    p = rng.dirichlet(np.ones(200))
    psi = fixed_point_psi(RHOS, t, p, lambda1=0.7, lambda_tilde=0.3)
    rhs = -RHOS / psi + (0.49 * t[None, :] / (1 + 0.49 * t[None, :] * psi[:, None])) @ p
    np.testing.assert_allclose(rhs, -0.3 * np.ones_like(RHOS), atol=1e-12)
    assert psi.shape == RHOS.shape and np.all(psi > 0)


def test_psi_is_the_normalized_resolvent_trace_at_finite_dimension():
    """ψ = (1/d) Tr(λ̃I + λ₁²WᵀW)⁻¹ (THEORY §1.2 [D]); Silverstein's equation holds up to O(1/d).

    At d = 200 the trace fluctuates by O(1/d²) and its mean is off by O(1/d) relative;
    tolerance 2e-2 = 4/d.
    """
    rng = np.random.default_rng(7)
    d = 200
    consts = hermite_constants("relu", offset=True)
    scales = rng.uniform(0.2, 1.8, size=d)
    scales /= scales.mean()            # spectrum of dΓ
    for rho in (0.5, 2.0):
        n = int(rho * d)
        traces = []
        for _ in range(2):
            w = rng.standard_normal((n, d)) * np.sqrt(scales / d)
            gram = consts.lambda_tilde * np.eye(n) + consts.lambda1**2 * w @ w.T
            traces.append(np.trace(np.linalg.inv(gram)) / d)
        psi = fixed_point_psi(rho, scales, lambda1=consts.lambda1, lambda_tilde=consts.lambda_tilde)
        assert abs(np.mean(traces) / psi - 1) < 4.0 / d


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_width_ratio_raises(bad):
    with pytest.raises(ValueError, match="width_ratio"):
        fixed_point_psi([1.0, bad], [1.0], lambda1=0.5, lambda_tilde=0.1)
    with pytest.raises(ValueError, match="width_ratio"):
        fixed_point_psi_isotropic(bad, lambda1=0.5, lambda_tilde=0.1)


def test_bad_spectrum_and_constants_raise():
    with pytest.raises(ValueError, match="spectrum"):
        fixed_point_psi(1.0, [-1.0, 1.0], lambda1=0.5, lambda_tilde=0.1)
    with pytest.raises(ValueError, match="spectrum_weights"):
        fixed_point_psi(1.0, [1.0, 1.0], [0.2, 0.2], lambda1=0.5, lambda_tilde=0.1)
    with pytest.raises(ValueError, match="lambda_tilde"):
        fixed_point_psi(1.0, [1.0], lambda1=0.5, lambda_tilde=0.0)
