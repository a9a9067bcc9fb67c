"""Incremental (saddle-to-saddle) learning of a quadratic network from a small initialization.

Model (Ghorbani, Mei, Misiakiewicz, Montanari, NeurIPS 2019, Theorem 3's network):
f(x) = Σ_i (w_i·x)² + c, x ~ N(0, I_d), target y = xᵀBx − Tr B with B = Σ_k λ_k v_k v_kᵀ ⪰ 0, N ≥ rank B, w_i(0) ~ N(0, α² I_d/d), c(0) = 0.
With M = Σ_i w_i w_iᵀ = WᵀW and s = Tr M + c, the population risk is exactly [D]

    R(W, c) = E(f − y)² = 2‖M − B‖_F² + s²            (Var xᵀAx = 2‖A‖_F² for symmetric A),

(the shifted offset c' = c + Tr B gives the form 2‖M − B‖² + (Tr M − Tr B + c')²), and gradient
flow on κ·R (``loss_scale`` κ) reads ∇_M R = 4(M − B) + 2sI, dW/dt = −2κ W ∇_M R, dc/dt = −2κ s.
The formulas assume s(0) ≈ 0, i.e. c(0) = 0 for the centered target (lazylab's ``Quadratic`` and
``Network``). Starting instead from c'(0) = 0 (s(0) = −Tr B) adds an early isotropic transient
worth +4 Tr B of growth exponent to every direction (same argument as the delay below [D]):
subtract 4 Tr B from the numerators (checked once by simulation, not in the tests: with the
setup of the tests, within 1.5 % for the later directions and 2.5–13 % for the first, whose rise
overlaps the transient).

Derivation [D, this module]. Near M ≈ 0 the projection of each w_i on v_k grows like
exp(κ(8λ_k − 4s)t), so m_k = v_kᵀMv_k grows like exp(16κλ_k t − 8κ∫s). For one direction alone
(s ≈ 0) m_k obeys the logistic equation dm/dt = 16κ m(λ_k − m), which reaches λ_k/2 (half of
its final value) at t = log(λ_k/m_k(0) − 1)/(16κλ_k). With E m_k(0) = Nα²/d:

    leading order:  t_k = log(1/α²)/(16κλ_k),
    refined:        t_k = [log(λ_k d/(Nα²) − 1) + 4 Σ_{j: λ_j > λ_k} λ_j] / (16κλ_k).

The sum is the saddle-to-saddle delay: while direction j is learned, Tr M rises by λ_j and the
trained offset follows it with ds/dt = dTr M/dt − 2κs, so ∫s dt = λ_j/(2κ) and every direction not
yet learned loses 8κ∫s = 4λ_j of growth exponent (independent of κ). It assumes well separated
eigenvalues (direction j has settled before direction k rises). The O(1) terms do not depend on
α, so t_k against log(1/α²) has slope exactly 1/(16κλ_k).

Gradient descent with learning rate η (the same η on W and c): the linearized growth factor of
m_k per step is (1 + 8ηκλ_k)², so steps_k = (the numerator above)/(2 log(1 + 8ηκλ_k)) [D]
(→ t_k/η as η → 0).

Checks (tests/theory/test_incremental.py): population GD on R in torch (d = N = 6,
λ = 1, 0.5, 0.25, η = 2e-3, α = 1e-3 … 1e-8, W₀ᵀW₀ = (N/d)I): slopes of t_k against log(1/α²) within
1.5 % of 1/(2 log(1 + 8ηλ_k)) (asserted 2 %), α-differences of t_k proportional to 1/λ_k within
1.2 % (asserted 2 %), refined absolute times within 3.9 % (asserted 5 %); the leading order is
11–25 % early for the last direction (the delay it omits).
"""

from __future__ import annotations

import numpy as np

__all__ = ["incremental_learning_times"]


def _check_inputs(eigenvalues, init_scale, learning_rate, loss_scale):
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"eigenvalues must be a non-empty 1-d array of finite values > 0 "
                         f"(the nonzero eigenvalues of B), got {eigenvalues!r}")
    alpha = np.asarray(init_scale, dtype=np.float64)
    if np.any(~np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError(f"init_scale must be finite and > 0, got {init_scale!r}")
    if learning_rate is not None and not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be None (gradient flow) or > 0, "
                         f"got {learning_rate!r}")
    if not (np.isfinite(loss_scale) and loss_scale > 0):
        raise ValueError(f"loss_scale must be finite and > 0, got {loss_scale!r}")
    return lam, alpha


def incremental_learning_times(eigenvalues, init_scale, learning_rate=None, *, dim=None,
                               width=None, loss_scale: float = 1.0) -> np.ndarray:
    """Time (or GD steps) at which v_kᵀMv_k reaches λ_k/2, linearized dynamics [D].

    Args:
        eigenvalues: λ_k > 0, shape (K,), the nonzero eigenvalues of B (any order).
        init_scale: α > 0, scalar or any shape A; w_i(0) ~ N(0, α² I/d).
        learning_rate: None for gradient flow (returns times); η > 0 for gradient descent
            (returns step counts, fractional).
        dim, width: d and N; both given → the refined formula (initial value Nα²/d and the
            saddle-to-saddle delay 4Σ_{λ_j > λ_k} λ_j), else the leading order log(1/α²).
        loss_scale: κ when the descended loss is κ·R (R = E(f − y)², no ½).
    Returns:
        float64 array of shape A + (K,): t_k (module docstring for the formulas and checks).
    Raises:
        ValueError: if the initialization is not small (Nα²/d ≥ λ_k/2 for some k) or
            only one of ``dim``/``width`` is given.
    """
    lam, alpha = _check_inputs(eigenvalues, init_scale, learning_rate, loss_scale)
    alpha = alpha[..., None]
    if (dim is None) != (width is None):
        raise ValueError(f"give both dim and width (refined formula) or neither, got "
                         f"dim={dim!r}, width={width!r}")
    if dim is None:
        exponent = np.log(1.0 / alpha**2) + 0.0 * lam
    else:
        if int(dim) < 1 or int(width) < 1:
            raise ValueError(f"dim and width must be >= 1, got dim={dim!r}, width={width!r}")
        start = int(width) * alpha**2 / int(dim)
        if np.any(start >= lam / 2):
            raise ValueError(f"init_scale too large: N·α²/d = {float(np.max(start)):.3g} must be "
                             f"< λ_k/2 = {float(lam.min()) / 2:.3g} for the small-init regime")
        delay = 4.0 * np.array([lam[lam > value].sum() for value in lam])
        exponent = np.log(lam / start - 1.0) + delay
    if learning_rate is None:
        return exponent / (16.0 * loss_scale * lam)
    return exponent / (2.0 * np.log1p(8.0 * learning_rate * loss_scale * lam))
