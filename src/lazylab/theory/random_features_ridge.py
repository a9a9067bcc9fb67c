"""Random-features ridge regression in the proportional limit (Mei & Montanari 2019).

Source: S. Mei, A. Montanari, "The generalization error of random features regression: precise
asymptotics and double descent curve", Comm. Pure Appl. Math. 2022 (arXiv:1908.05355),
Definition 1 (the fixed point ν₁, ν₂), Definition 2 (χ, ℰ₀, ℰ₁, ℰ₂, ℬ, 𝒱) and Theorem 1.
Provenance [M]: recalled, not read; every piece was checked numerically (docs/theory.md and
tests/theory/test_random_features_ridge.py): against exact lazylab RF ridge at d = 100–160,
against the linear-ridge (Marchenko–Pastur) closed form as ψ₁ → ∞ [D], and against the λ → ∞
and ζ = 0 identities below.

Notation. x ~ N(0, I_d) (the paper: uniform on √d·S^{d−1}; same limit), N features σ(w_i·x) with
w_i ~ N(0, I_d/d) (the paper: θ_i/√d, θ_i uniform on √d·S^{d−1}), n samples;
ψ₁ = N/d (``width_ratio``), ψ₂ = n/d (``sample_ratio``). Target y = ⟨β, x⟩ + f_NL(x) + τξ with
‖β‖² = F₁² (``linear_energy``), E f_NL² = F*² (``nonlinear_energy``, no linear or constant part),
τ² = ``noise_variance``. Activation constants: μ₁ = E[Gσ(G)], μ*² = E σ(G)² − μ₀² − μ₁²,
ζ = μ₁/μ*. The paper penalizes (Nλ/d)‖a‖² next to (1/n)Σ(y − f)²; lazylab's ``ridge`` λ_L
penalizes λ_L‖a‖² (``RandomFeatures``), so λ = λ_L/ψ₁ and λ̄ = λ/μ*².

Definition 1: for ξ with Im ξ > 0, (ν₁, ν₂) is the solution with |ν_j| ≤ ψ_j/Im ξ of
    ν₁ = ψ₁ (−ξ − ν₂ − ζ²ν₂/(1 − ζ²ν₁ν₂))⁻¹,   ν₂ = ψ₂ (−ξ − ν₁ − ζ²ν₁/(1 − ζ²ν₁ν₂))⁻¹.
At ξ = i·y, y = (ψ₁ψ₂λ̄)^{1/2}, the solution is ν_j = i·a_j with a_j > 0 solving the real system
    a₁ = ψ₁/(y + a₂ + ζ²a₂/(1 + ζ²a₁a₂)),   a₂ = ψ₂/(y + a₁ + ζ²a₁/(1 + ζ²a₁a₂))      [D]
(substitute; both right sides are positive), and χ = ν₁ν₂ = −a₁a₂.
Solver [D]: for fixed a₁ the map a₂ ↦ a₂(y + a₁ + ζ²a₁/(1 + ζ²a₁a₂)) is strictly increasing from 0
to ∞, so a₂(a₁) is found by bisection; then g(a₁) = a₁(y + a₂ + ζ²a₂/(1 + ζ²a₁a₂)) − ψ₁ is < 0 at
a₁ → 0 and ≥ 0 at a₁ = ψ₁/y, and is bisected (the root is unique by Definition 1).

Definition 2 (with χ as above):
    ℰ₀ = −χ⁵ζ⁶ + 3χ⁴ζ⁴ + (ψ₁ψ₂ − ψ₂ − ψ₁ + 1)χ³ζ⁶ − 2χ³ζ⁴ − 3χ³ζ²
         + (ψ₁ + ψ₂ − 3ψ₁ψ₂ + 1)χ²ζ⁴ + 2χ²ζ² + χ² + 3ψ₁ψ₂χζ² − ψ₁ψ₂,
    ℰ₁ = ψ₂χ³ζ⁴ − ψ₂χ²ζ² + ψ₁ψ₂χζ² − ψ₁ψ₂,
    ℰ₂ = χ⁵ζ⁶ − 3χ⁴ζ⁴ + (ψ₁ − 1)χ³ζ⁶ + 2χ³ζ⁴ + 3χ³ζ² − (ψ₁ + 1)χ²ζ⁴ − 2χ²ζ² − χ²,
    ℬ = ℰ₁/ℰ₀,  𝒱 = ℰ₂/ℰ₀.
Theorem 1: E_x(f*(x) − f̂(x))² → F₁²ℬ + (τ² + F*²)𝒱 + F*².
Identities used as checks [D]: λ → ∞ gives χ → 0, ℬ → 1, 𝒱 → 0 (the null risk F₁² + F*²);
ζ = 0 gives ℬ = 1 + 𝒱 (the linear part is then noise to the features).
"""

from __future__ import annotations

import numpy as np

from lazylab.theory.hermite import hermite_constants

__all__ = ["random_features_ridge_fixed_point", "random_features_ridge_bias_variance",
           "random_features_ridge_risk", "random_features_optimal_ridge_risk"]

_BISECTIONS = 200


def _bisect_increasing(function, low, high):
    """Root of an increasing function on [low, high] (arrays, geometric midpoints when low > 0)."""
    for _ in range(_BISECTIONS):
        mid = np.where(low > 0, np.sqrt(low * high), 0.5 * (low + high))
        positive = function(mid) > 0
        high = np.where(positive, mid, high)
        low = np.where(positive, low, mid)
        if np.all(high - low <= 8 * np.finfo(np.float64).eps * high):
            break
    return 0.5 * (low + high)


def _second_given_first(a1, y, z2, psi2):
    """a₂ solving a₂(y + a₁ + ζ²a₁/(1 + ζ²a₁a₂)) = ψ₂ (strictly increasing in a₂)."""
    high = psi2 / np.maximum(y + a1, 1e-300)
    return _bisect_increasing(lambda a2: a2 * (y + a1 + z2 * a1 / (1 + z2 * a1 * a2)) - psi2,
                              np.zeros_like(a1) + 1e-300, high)


def random_features_ridge_fixed_point(width_ratio, sample_ratio, scaled_ridge, zeta):
    """(a₁, a₂) with ν_j = i·a_j at ξ = i(ψ₁ψ₂λ̄)^{1/2}, Mei–Montanari Definition 1 [M].

    Args (broadcast together): ψ₁ = N/d > 0, ψ₂ = n/d > 0, λ̄ = λ/μ*² > 0 (the paper's λ),
    ζ = μ₁/μ* ≥ 0. Returns two float64 arrays of the broadcast shape.
    """
    psi1, psi2, lam, zeta = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                                  (width_ratio, sample_ratio, scaled_ridge, zeta)))
    y = np.sqrt(psi1 * psi2 * lam)
    z2 = zeta**2

    def excess(a1):
        a2 = _second_given_first(a1, y, z2, psi2)
        return a1 * (y + a2 + z2 * a2 / (1 + z2 * a1 * a2)) - psi1

    a1 = _bisect_increasing(excess, np.full(psi1.shape, 1e-300), psi1 / y)
    return a1, _second_given_first(a1, y, z2, psi2)


def random_features_ridge_bias_variance(width_ratio, sample_ratio, scaled_ridge, zeta):
    """(ℬ, 𝒱) of Mei–Montanari Definition 2 [M] at ψ₁, ψ₂, λ̄ = λ/μ*², ζ (broadcast)."""
    a1, a2 = random_features_ridge_fixed_point(width_ratio, sample_ratio, scaled_ridge, zeta)
    psi1, psi2, zeta = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                             (width_ratio, sample_ratio, zeta)))
    chi, z2 = -a1 * a2, zeta**2
    pp = psi1 * psi2
    e0 = (-chi**5 * z2**3 + 3 * chi**4 * z2**2 + (pp - psi2 - psi1 + 1) * chi**3 * z2**3
          - 2 * chi**3 * z2**2 - 3 * chi**3 * z2 + (psi1 + psi2 - 3 * pp + 1) * chi**2 * z2**2
          + 2 * chi**2 * z2 + chi**2 + 3 * pp * chi * z2 - pp)
    e1 = psi2 * chi**3 * z2**2 - psi2 * chi**2 * z2 + pp * chi * z2 - pp
    e2 = (chi**5 * z2**3 - 3 * chi**4 * z2**2 + (psi1 - 1) * chi**3 * z2**3
          + 2 * chi**3 * z2**2 + 3 * chi**3 * z2 - (psi1 + 1) * chi**2 * z2**2
          - 2 * chi**2 * z2 - chi**2)
    return e1 / e0, e2 / e0


def _activation_ratio(activation) -> tuple[float, float]:
    """(ζ = |μ₁|/μ*, μ*²) of an activation; μ*² = λ̃ of :func:`hermite_constants`."""
    consts = hermite_constants(activation, offset=True)
    return abs(consts.lambda1) / np.sqrt(consts.lambda_tilde), consts.lambda_tilde


def _positive_array(values, name: str, meaning: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array) | (array <= 0)
    if array.size == 0 or np.any(bad):
        shown = float(array[bad].ravel()[0]) if np.any(bad) else values
        raise ValueError(f"{name} must be finite and > 0 ({meaning}), got {shown!r}")
    return array


def _check_energy(value, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def random_features_ridge_risk(width_ratio, sample_ratio, *, ridge, activation="relu",
                               linear_energy: float = 1.0, nonlinear_energy: float = 0.0,
                               noise_variance: float = 0.0,
                               include_noise: bool = False) -> np.ndarray:
    """Asymptotic test risk of RF ridge regression, Mei & Montanari (2019) Theorem 1 [M].

    R = F₁²ℬ(ζ, ψ₁, ψ₂, λ̄) + (τ² + F*²)𝒱(ζ, ψ₁, ψ₂, λ̄) + F*²,  λ̄ = ridge/(ψ₁μ*²)
    (module docstring: Definitions 1–2, the ridge convention and what was checked).

    Args (``width_ratio``, ``sample_ratio``, ``ridge`` broadcast together):
        width_ratio: ψ₁ = N/d > 0.
        sample_ratio: ψ₂ = n/d > 0.
        ridge: λ_L > 0 in lazylab's convention, (1/n)Σ(y − f)² + λ_L‖a‖² (``RandomFeatures``;
            its unpenalized offset only absorbs μ₀ and does not change the limit).
        activation: σ (name, ``Activation`` or callable); needs μ* > 0 (not affine).
        linear_energy: F₁² = ‖β‖²; nonlinear_energy: F*² = E f_NL²; noise_variance: τ².
        include_noise: add τ² (then the value matches ``lazylab.risk.population_risk``).
    Returns:
        float64 array of the broadcast shape: E_x(f*(x) − f̂(x))² (+ τ² if asked), error o_d(1)
        (observed: within a few % of exact RF at d = 100–160 away from the peak ψ₁ = ψ₂).
    """
    psi1 = _positive_array(width_ratio, "width_ratio", "psi1 = N/d")
    psi2 = _positive_array(sample_ratio, "sample_ratio", "psi2 = n/d")
    lam = _positive_array(ridge, "ridge", "lambda_L; for the ridgeless limit use e.g. 1e-8")
    f1 = _check_energy(linear_energy, "linear_energy")
    fs = _check_energy(nonlinear_energy, "nonlinear_energy")
    tau2 = _check_energy(noise_variance, "noise_variance")
    zeta, mu_star2 = _activation_ratio(activation)
    bias, variance = random_features_ridge_bias_variance(psi1, psi2, lam / (psi1 * mu_star2),
                                                         zeta)
    return f1 * bias + (tau2 + fs) * variance + fs + (tau2 if include_noise else 0.0)


def random_features_optimal_ridge_risk(width_ratio, sample_ratio, *, activation="relu",
                                       linear_energy: float = 1.0, nonlinear_energy: float = 0.0,
                                       noise_variance: float = 0.0, include_noise: bool = False,
                                       ridge_range=(1e-8, 1e4)) -> tuple[np.ndarray, np.ndarray]:
    """min over λ_L of :func:`random_features_ridge_risk`, and the minimizing ridge.

    A log grid of 8 points per decade over ``ridge_range`` locates the minimum; golden-section
    search on log λ_L between the grid neighbours refines it (relative tolerance 1e-6 in λ_L).
    A minimizer on the range's edge is returned as is (e.g. λ → 0 is optimal without noise at
    ψ₁ ≫ ψ₂). Returns (risk, ridge), float64 arrays of the broadcast shape of ψ₁, ψ₂.
    """
    low, high = (float(v) for v in ridge_range)
    if not (0 < low < high < np.inf):
        raise ValueError(f"ridge_range must satisfy 0 < low < high < inf, got {ridge_range!r}")
    psi1, psi2 = np.broadcast_arrays(_positive_array(width_ratio, "width_ratio", "psi1 = N/d"),
                                     _positive_array(sample_ratio, "sample_ratio", "psi2 = n/d"))
    kwargs = dict(activation=activation, linear_energy=linear_energy,
                  nonlinear_energy=nonlinear_energy, noise_variance=noise_variance)
    grid = np.geomspace(low, high, int(8 * np.log10(high / low)) + 1)
    risks = random_features_ridge_risk(psi1[..., None], psi2[..., None], ridge=grid, **kwargs)
    best = np.argmin(risks, axis=-1)
    left = np.log(grid[np.maximum(best - 1, 0)])
    right = np.log(grid[np.minimum(best + 1, grid.size - 1)])
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    while np.any(right - left > 1e-6):
        a, b = right - golden * (right - left), left + golden * (right - left)
        ra = random_features_ridge_risk(psi1, psi2, ridge=np.exp(a), **kwargs)
        rb = random_features_ridge_risk(psi1, psi2, ridge=np.exp(b), **kwargs)
        left, right = np.where(ra < rb, left, a), np.where(ra < rb, b, right)
    ridge = np.exp(0.5 * (left + right))
    risk = random_features_ridge_risk(psi1, psi2, ridge=ridge, **kwargs)
    return risk + (float(noise_variance) if include_noise else 0.0), ridge
