"""The samples a kernel needs to reach a risk threshold, from the staircase deterministic
equivalent (:mod:`lazylab.theory.staircase`), for the infinite-width ReLU kernels.

Profiles on √d·S^{d−1} (K(x, y) = h(t), t = ⟨x, y⟩/d = cos θ; Cho & Saul 2009, as
:mod:`lazylab.models.kernel` with ‖x‖² = d):
* "rf":  h(t) = (sin θ + (π − θ) cos θ)/(2π)            (E_w relu(w·x) relu(w·y), w ~ N(0, I/d));
* "ntk": h(t) = (sin θ + 2(π − θ) cos θ)/(2π)           (adds (⟨x, y⟩/d)(π − θ)/(2π)).

Best risk over the ridge: min_λ kernel_ridge_risk(n, λ) over a log grid (what validated ridge
approaches). Samples needed: the least n with that best risk ≤ threshold, by bisection on log n
(the best risk decreases in n). Gaussian inputs concentrate on √d·S^{d−1}; the sphere's
harmonic energies of a Hermite-degree-k target differ by O(1/d) (measured: NTK on the two-index
target at d = 32, n = 4d², 0.29 on Gaussian samples against 0.276 here).

Homogeneity floor [D]: without biases the ReLU kernels are positively 1-homogeneous in each
argument, so every function of their RKHS is f(x) = r·g(θ) (x = rθ, r = ‖x‖). For Gaussian
x, r ⊥ θ and the best such f has g(θ) = E_r[r f*(rθ)]/E r², leaving

    floor = E f*² − E_θ[(E_r[r f*(rθ)])²]/d          (E r² = d),

a floor no n removes (He₂(u·x)/√2: 1 − (E r)²(2d² + 2d − 1)/(2d²(d + 2)) ≈ 1.5/d).
:func:`best_kernel_ridge_risk` lets the learned share of each degree carry its own floor.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from scipy import special

from lazylab.theory.staircase import (_effective_ridge, harmonic_dimension,
                                      kernel_degree_eigenvalues)

__all__ = ["RELU_KERNEL_PROFILES", "best_kernel_ridge_risk", "kernel_samples_needed",
           "homogeneous_floor", "degree_residuals"]


def _angle(t):
    return np.arccos(np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0))


def _rf_profile(t):
    theta = _angle(t)
    return (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)


def _ntk_profile(t):
    theta = _angle(t)
    return (np.sin(theta) + 2 * (np.pi - theta) * np.cos(theta)) / (2 * np.pi)


RELU_KERNEL_PROFILES = {"rf": _rf_profile, "ntk": _ntk_profile}
"""kind → h(t) of the ReLU kernels of :class:`lazylab.models.Kernel` on √d·S^{d−1}."""

RIDGES = tuple(np.geomspace(1e-10, 1.0, 21).tolist())


@functools.lru_cache(maxsize=64)
def _spectrum(dim: int, kind: str, max_degree: int):
    """(μ_k, N_k, tail mass) of the kernel ``kind`` in dimension d, k ≤ max_degree."""
    profile = RELU_KERNEL_PROFILES[kind]
    mu = kernel_degree_eigenvalues(profile, dim, max_degree).clip(min=0.0)
    mult = np.array([harmonic_dimension(dim, k) for k in range(mu.size)], dtype=np.float64)
    return mu, mult, max(float(profile(np.array([1.0]))[0]) - float(mult @ mu), 0.0)


def degree_residuals(n_train: int, dim: int, kind: str, max_degree: int, ridge: float
                     ) -> np.ndarray:
    """q_k = E₀(1 − L_k)², k = 0..max_degree: the share of degree k's energy left in the
    risk (the deterministic equivalent is linear in the energies: risk = Σ_k q_k e_k; the same
    κ, L_k and E₀ as :func:`lazylab.theory.staircase.kernel_ridge_risk`)."""
    mu, mult, tail = _spectrum(int(dim), kind, int(max_degree) + 3)  # as kernel_ridge_risk
    kappa = _effective_ridge(float(n_train), mu, mult, tail, float(ridge))
    learn = mu / (mu + kappa)
    e0 = n_train / (n_train - float(mult @ learn**2))
    return (e0 * (1 - learn) ** 2)[: int(max_degree) + 1]


def best_kernel_ridge_risk(n_train: int, dim: int, kind: str, target_energies, *,
                           ridges=RIDGES, floors=None) -> float:
    """min over ``ridges`` of Σ_k [q_k e_k + (1 − q_k) φ_k] for a ReLU kernel ``kind``.

    q_k: :func:`degree_residuals`; φ_k: the risk floor of degree k's part even when learned
    (``floors``, default 0, e.g. :func:`homogeneous_floor` of that part): the learned share
    1 − q_k of degree k carries its floor (first-order model). With zero floors this is the
    noise-free :func:`lazylab.theory.staircase.kernel_ridge_risk` at the best ridge.

    Args: n_train ≥ 1; dim d ≥ 3; kind "rf" or "ntk"; target_energies e_k (k = 0, 1, …);
    floors φ_k (same length).
    """
    if kind not in RELU_KERNEL_PROFILES:
        raise ValueError(f"kind must be one of {sorted(RELU_KERNEL_PROFILES)}, got {kind!r}")
    energies = np.asarray(target_energies, dtype=np.float64)
    phi = np.zeros_like(energies) if floors is None else np.asarray(floors, dtype=np.float64)
    if phi.shape != energies.shape:
        raise ValueError(f"floors must have the length of target_energies ({energies.size}), "
                         f"got {phi.size}")
    return min(float(q @ energies + (1 - q) @ phi)
               for q in (degree_residuals(int(n_train), dim, kind, energies.size - 1, r)
                         for r in ridges))


def kernel_samples_needed(dim: int, kind: str, target_energies, threshold: float, *,
                          n_max: float = 1e12, ridges=RIDGES, floors=None) -> float:
    """Least n (to 1 %) with best_kernel_ridge_risk(n) ≤ threshold; inf beyond ``n_max``."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")

    def reached(n: float) -> bool:
        return best_kernel_ridge_risk(int(round(n)), dim, kind, target_energies,
                                      ridges=ridges, floors=floors) <= threshold

    low, high = 1.0, float(dim)
    while not reached(high):
        low, high = high, high * 4
        if high > n_max:
            return math.inf
    while high / low > 1.01:
        mid = math.sqrt(low * high)
        low, high = (low, mid) if reached(mid) else (mid, high)
    return float(round(high))


def homogeneous_floor(target, dim: int, rank: int, *, rng: np.random.Generator,
                      directions: int = 20000, radial_nodes: int = 64) -> float:
    """Risk floor of 1-homogeneous predictors r·g(θ) for f*(x) = target(Ux), x ~ N(0, I_d).

    Args:
        target: g(z) for z (m, rank) float64 → (m,), the target on the rank-dim projection.
        dim: d > rank; rank: r ≥ 1 (U = the first r coordinates, by rotation invariance).
        rng: draws the Monte Carlo directions θ (only Uθ is needed: z/‖(z, χ_{d−r})‖).
        directions: Monte Carlo size; radial_nodes: Gauss–Laguerre nodes in s = r²/2
            (weight s^{d/2−1}e^{−s}, the χ_d law).
    Returns the mean over θ of E_r f*² − (E_r[r f*])²/E_r r² (each term ≥ 0; module docstring).
    """
    if not (int(rank) >= 1 and int(dim) > int(rank)):
        raise ValueError(f"need dim > rank >= 1, got dim={dim!r}, rank={rank!r}")
    head = rng.standard_normal((int(directions), int(rank)))
    rest = rng.chisquare(int(dim) - int(rank), size=int(directions))
    theta = head / np.sqrt((head**2).sum(1) + rest)[:, None]
    nodes, weights = special.roots_genlaguerre(int(radial_nodes), int(dim) / 2 - 1)
    weights = weights / weights.sum()
    radius = np.sqrt(2 * nodes)
    values = np.stack([np.asarray(target(rho * theta), dtype=np.float64) for rho in radius], 1)
    first = values @ (weights * radius)
    second = (values**2) @ weights
    return float(np.mean(second - first**2 / float(weights @ radius**2)))
