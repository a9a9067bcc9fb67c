"""How many random ReLU features a single ReLU neuron needs: the spherical-harmonic count.

Setting (Yehudai & Shamir, THEORY.md §2.3–2.5): x ~ N(0, I_d), target f*(x) = relu(w*·x) (b* = 0),
bias-free features relu(w_i·x) with w_i ~ N(0, I/d), head u, no offset, exact population risk.

Reduction to the sphere [D, exact]: every function involved is positively homogeneous of degree
1, relu(w·x) = ‖w‖·‖x‖·relu(ŵ·θ) with θ = x/‖x‖ uniform on S^{d−1} and independent of ‖x‖, so
E(f* − Σ u_i f_i)² = E‖x‖²·‖w*‖²·E_θ(g(w̄*·θ) − Σ ũ_i g(ŵ_i·θ))² with g = relu and ũ_i absorbing
the norms: the minimal normalized risk equals that of the unit-norm features g(ŵ_i·θ) on the
sphere, ŵ_i uniform (the direction of N(0, I/d)).

Harmonics [D, Funk–Hecke]: with Q_k the normalized Gegenbauer polynomial of degree k in d
dimensions, t = ŵ·θ of density ∝ (1 − t²)^{(d−3)/2} and a_k = E_t[g(t)Q_k(t)],
g(ŵ·θ) = Σ_k N_k a_k Q_k(ŵ·θ); the target's energy in degree k is e_k = N_k a_k² and the
features' kernel E_ŵ g(ŵ·θ)g(ŵ·θ') = Σ_k N_k a_k² Q_k(θ·θ') has eigenvalue μ_k = a_k² = e_k/N_k on
each of the N_k degree-k harmonics (:func:`lazylab.theory.staircase.harmonic_dimension`). relu(t)
= t/2 + |t|/2 has a_k = 0 for odd k ≥ 3, so only degrees 0, 1, 2, 4, 6, … carry energy.

Deterministic equivalent of random projection [M: the ridgeless limit of the random-features
approximation error; e.g. Bach 2023 (SIAM J. Math. Data Sci., "High-dimensional analysis of
double descent for linear regression with random projections"); checked here against Gaussian
projections, tests/theory/test_single_neuron_harmonics.py, and in the study against exact RF]:
the best combination of r features drawn with kernel eigenvalues μ_k leaves the normalized risk
R(r) ≈ Σ_k κ/(μ_k + κ)·e_k with κ > 0 solving r = Σ_k N_k μ_k/(μ_k + κ). For well-separated
blocks this is the staircase / harmonic count: features fill the degree blocks in increasing
order of degree, and a block of N_k harmonics costs N_k features.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate, special

from lazylab.theory.staircase import harmonic_dimension

__all__ = ["relu_sphere_energies", "relu_hermite_energies", "relu_staircase_degree",
           "harmonic_multiplicities", "random_projection_risk",
           "relu_features_risk", "relu_features_required_width"]


def _check_degree(max_degree) -> int:
    if int(max_degree) != max_degree or max_degree < 1:
        raise ValueError(f"max_degree must be an integer >= 1, got {max_degree!r}")
    return int(max_degree)


def relu_sphere_energies(dim: int, max_degree: int) -> np.ndarray:
    """e_k / E g², k = 0..K, of g(θ) = relu(θ₁) on S^{d−1} (cached; see :func:`_energies`)."""
    return np.array(_energies(int(dim), _check_degree(max_degree)))


def relu_hermite_energies(max_degree: int) -> np.ndarray:
    """The d → ∞ limit of :func:`relu_sphere_energies`: λ_k²/k! / E relu(G)², G ~ N(0, 1).

    λ₀ = 1/√(2π), λ₁ = 1/2, λ_k = (−1)^{k/2+1}(k − 3)!!/√(2π) for even k ≥ 2, 0 for odd k ≥ 3
    [D, Hermite expansion of relu]; E relu(G)² = 1/2.
    """
    k_max = _check_degree(max_degree)
    out = np.zeros(k_max + 1)
    out[0], out[1] = 1.0 / math.pi, 0.5
    for k in range(2, k_max + 1, 2):
        double_factorial = math.prod(range(k - 3, 0, -2)) if k > 3 else 1
        out[k] = 2.0 * double_factorial ** 2 / (2.0 * math.pi * math.factorial(k))
    return out


def relu_staircase_degree(epsilon: float, energies) -> int:
    """Smallest ℓ with Σ_{k>ℓ} e_k ≤ ε: the harmonic degree r features must fill to reach ε,
    so that r grows like d^ℓ (the staircase); ``energies`` from :func:`relu_sphere_energies`
    or :func:`relu_hermite_energies` (the tail beyond them is 1 − Σ e_k)."""
    e = np.asarray(energies, dtype=np.float64)
    tails = 1.0 - np.cumsum(e)
    reached = np.nonzero(tails <= epsilon)[0]
    if reached.size == 0:
        raise ValueError(f"epsilon {epsilon!r} needs degrees beyond the {e.size - 1} given")
    return int(reached[0])


@functools.lru_cache(maxsize=512)
def _energies(dim: int, max_degree: int) -> tuple:
    """e_k / E g², k = 0..K, of g(θ) = relu(θ₁) on the unit sphere S^{d−1} (module docstring).

    a_k = 0 for odd k ≥ 3 (exactly, by parity); otherwise a_k = E_t[relu(t) Q_k(t)] = ∫₀¹ t Q_k(t)(1 − t²)^β dt / B(½, β + 1), β = (d − 3)/2 (adaptive
    quadrature with the algebraic end weight); e_k = N_k a_k²; E g² = 1/(2d).
    Args: dim d ≥ 3; max_degree K ≥ 1. Returns float64 (K + 1,), summing to ≤ 1.
    """
    multiplicity = harmonic_multiplicities(dim, max_degree)
    beta = (dim - 3) / 2.0
    alpha = (dim - 2) / 2.0
    norm = special.beta(0.5, beta + 1.0)
    energies = np.empty(multiplicity.size)
    energies[3::2] = 0.0                      # relu = t/2 + |t|/2: a_k = 0 for odd k ≥ 3
    for k in [0, 1, *range(2, multiplicity.size, 2)]:
        at_one = special.eval_gegenbauer(k, alpha, 1.0)

        def integrand(t, k=k, at_one=at_one):
            return t * special.eval_gegenbauer(k, alpha, t) / at_one * (1.0 + t) ** beta
        value, _ = integrate.quad(integrand, 0.0, 1.0, weight="alg", wvar=(0.0, beta),
                                  limit=200, epsabs=1e-15, epsrel=1e-12)
        energies[k] = multiplicity[k] * (value / norm) ** 2
    return tuple(energies * (2.0 * dim))


def harmonic_multiplicities(dim: int, max_degree: int) -> np.ndarray:
    """N_0..N_K, the numbers of spherical harmonics of each degree in R^d (float64, exact ints)."""
    k_max = _check_degree(max_degree)
    return np.array([float(harmonic_dimension(dim, k)) for k in range(k_max + 1)])


def _checked_spectrum(eigenvalues, multiplicities, energies):
    mu = np.asarray(eigenvalues, dtype=np.float64).ravel()
    mult = np.asarray(multiplicities, dtype=np.float64).ravel()
    e = np.asarray(energies, dtype=np.float64).ravel()
    if not (mu.size == mult.size == e.size) or mu.size == 0:
        raise ValueError(f"eigenvalues, multiplicities and target_energies must have the same "
                         f"non-zero length, got {mu.size}, {mult.size}, {e.size}")
    for name, values in (("eigenvalues", mu), ("multiplicities", mult), ("target_energies", e)):
        if np.any(~np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must be finite and >= 0, got {values!r}")
    return mu, mult, e


def random_projection_risk(width, eigenvalues, multiplicities, target_energies, *,
                           tail_trace: float = 0.0, tail_energy: float = 0.0) -> np.ndarray:
    """Deterministic equivalent Σ_k κ/(μ_k + κ)·e_k (+ tail_energy) of the best r-feature fit.

    κ solves r = Σ_k N_k μ_k/(μ_k + κ) + tail_trace/κ (module docstring); degrees beyond the
    arrays enter through tail_trace = Σ_{k>K} N_k μ_k (valid while their μ_k ≪ κ) and leave
    tail_energy unfitted. Args: width r ≥ 0 (array); eigenvalues μ_k (K + 1,);
    multiplicities N_k; target_energies e_k. Returns the risk per width (same shape as width).
    A width at or beyond the number of features with μ_k > 0 (no tail) returns the energy of
    the degrees with μ_k = 0.
    """
    mu, mult, e = _checked_spectrum(eigenvalues, multiplicities, target_energies)
    widths = np.asarray(width, dtype=np.float64)
    if np.any(~np.isfinite(widths)) or np.any(widths < 0):
        raise ValueError(f"width must be finite and >= 0, got {width!r}")
    unlearnable = float(e[mu == 0].sum()) + float(tail_energy)
    capacity = float(mult[mu > 0].sum())
    out = np.empty(widths.shape)
    for index, r in np.ndenumerate(widths):
        if tail_trace == 0 and r >= capacity:
            out[index] = unlearnable
            continue
        kappa = _solve_kappa(float(r), mu, mult, float(tail_trace))
        live = mu > 0
        out[index] = float((kappa / (mu[live] + kappa)) @ e[live]) + unlearnable
    return out


def _solve_kappa(width: float, mu, mult, tail_trace: float) -> float:
    """κ with Σ N_k μ_k/(μ_k + κ) + T/κ = r (the left side decreases from ∞ or capacity to 0)."""
    if width <= 0:
        return math.inf

    def count(kappa):
        return float(mult @ (mu / (mu + kappa))) + tail_trace / kappa
    low, high = 1e-300, max(float(mu.max()), 1e-300)
    while count(high) > width:
        high *= 2.0
    for _ in range(400):
        mid = math.sqrt(low * high)
        if count(mid) > width:
            low = mid
        else:
            high = mid
        if high <= low * (1 + 1e-12):
            break
    return math.sqrt(low * high)


def relu_features_risk(width, dim: int, *, max_degree: int = 40) -> np.ndarray:
    """Predicted minimal normalized risk E(f* − Σu_i f_i)²/E f*² of r bias-free ReLU features.

    The deterministic equivalent (:func:`random_projection_risk`) with the exact sphere energies
    (:func:`relu_sphere_energies`) up to ``max_degree``, μ_k = e_k/N_k, and the higher degrees
    as tail_trace = tail_energy = 1 − Σ_{k≤K} e_k. Args: width r (array); dim d ≥ 3.
    """
    energies = relu_sphere_energies(dim, max_degree)
    mult = harmonic_multiplicities(dim, max_degree)
    tail = max(1.0 - float(energies.sum()), 0.0)
    return random_projection_risk(width, energies / mult, mult, energies, tail_trace=tail,
                                  tail_energy=0.0)


def relu_features_required_width(epsilon: float, dim: int, *, max_degree: int = 40,
                                 max_width: float = 1e30) -> float:
    """Smallest r with :func:`relu_features_risk` ≤ ε (bisection on log r); inf beyond max_width.

    Args: epsilon ε in (0, 1); dim d ≥ 3; max_degree K of the explicit harmonics.
    """
    if not (np.isfinite(epsilon) and 0 < epsilon < 1):
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    energies = relu_sphere_energies(dim, max_degree)
    mult = harmonic_multiplicities(dim, max_degree)
    tail = max(1.0 - float(energies.sum()), 0.0)

    def risk(r):
        return float(random_projection_risk(r, energies / mult, mult, energies,
                                            tail_trace=tail)[()])
    if risk(max_width) > epsilon:
        return math.inf
    low, high = 0.0, 1.0
    while risk(high) > epsilon:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = math.sqrt(max(low, 1e-3) * high) if low > 0 else high / 2
        if risk(mid) > epsilon:
            low = mid
        else:
            high = mid
        if high - low <= 1e-6 * high:
            break
    return high
