"""Per-pair rules of :mod:`lazylab.gaussian.dual` that need series or quadrature nodes.

For (u, v) centred Gaussian with scales s₁, s₂ and correlation ρ (notation of
:mod:`lazylab.gaussian.dual`): the Mehler sum E[σ(u + b₁) τ(v + b₂)] = Σ_k μ_k(σ) μ_k(τ) ρ^k
(μ_k = λ_k/√k!; exact for polynomials, truncated at :data:`SERIES_DEGREE` otherwise, with the
Cauchy–Schwarz/Parseval bound deciding when the 2-D piecewise Gauss–Legendre rule takes over),
the exact 1-D rules for constant units and collinear pairs, and the checks of the per-unit
arguments and of the correlation.
"""

from __future__ import annotations

import torch

from lazylab.activations import Activation
from lazylab.activations.families import frozen
from lazylab.quadrature import gaussian_nodes

__all__ = ["quadrature_pair", "SERIES_DEGREE"]

SERIES_DEGREE = 40
_SERIES_TOLERANCE = 1e-12
_ROUND_OFF = 1e-12   # relative slack allowed in |cov| <= sqrt(var1*var2)


def _mehler(sigma, tau, s1, s2, rho, b1, b2, degree):
    """Σ_{k ≤ degree} μ_k(σ) μ_k(τ) ρ^k with μ_k = λ_k/√k!, by Horner in ρ."""
    mu1 = sigma.hermite_coefficients(degree, s1, b1, normalized=True)
    mu2 = tau.hermite_coefficients(degree, s2, b2, normalized=True)
    total = mu1[..., degree] * mu2[..., degree]
    for k in range(degree - 1, -1, -1):
        total = total * rho + mu1[..., k] * mu2[..., k]
    return total


def _second_moment(activation, s, b):
    z, w = gaussian_nodes(_kinks(activation, s, b), order=32, batch_shape=s.shape,
                          dtype=s.dtype, device=s.device)
    return torch.sum(w * activation.function(s[..., None] * z + b[..., None]) ** 2, dim=-1)


def _kinks(activation, s, b):
    if not activation.kinks:
        return None
    knots = torch.as_tensor(activation.kinks, dtype=s.dtype, device=s.device)
    return (knots - b[..., None]) / s[..., None]


def _series_or_quadrature(sigma, tau, s1, s2, rho, b1, b2):
    degree = SERIES_DEGREE
    total = _mehler(sigma, tau, s1, s2, rho, b1, b2, degree)
    mu1 = sigma.hermite_coefficients(degree, s1, b1, normalized=True)
    mu2 = tau.hermite_coefficients(degree, s2, b2, normalized=True)
    m1, m2 = _second_moment(sigma, s1, b1), _second_moment(tau, s2, b2)
    tail1 = (m1 - (mu1 ** 2).sum(-1)).clamp_min(0.0)
    tail2 = (m2 - (mu2 ** 2).sum(-1)).clamp_min(0.0)
    bound = torch.sqrt(tail1 * tail2) * rho.abs() ** (degree + 1)
    loose = bound > _SERIES_TOLERANCE * (1 + torch.sqrt(m1 * m2))
    loose = loose.expand(rho.shape)
    if torch.any(loose):
        total = total.clone()
        s1, s2, b1, b2 = (t.expand(rho.shape)[loose] for t in (s1, s2, b1, b2))
        total[loose] = quadrature_pair(sigma, tau, s1, s2, rho[loose], b1, b2)
    return total


def quadrature_pair(sigma: Activation, tau: Activation, s1, s2, rho, b1, b2, *, order: int = 24):
    """E[σ(s₁X + b₁) τ(s₂(ρX + qZ) + b₂)], X, Z iid N(0, 1), by nested piecewise Gauss–Legendre.

    1-D tensors of equal length; |ρ| < 1 and s > 0 are assumed.
    """
    q = torch.sqrt((1 - rho * rho).clamp_min(0.0))
    slope = s2 * rho
    slope = torch.where(slope == 0, torch.ones_like(slope), slope)   # no kink when ρ = 0
    cuts = [c for c in (_kinks(sigma, s1, b1), _kinks(tau, slope, b2)) if c is not None]
    outer_cuts = torch.cat(cuts, dim=-1) if cuts else None
    x, wx = gaussian_nodes(outer_cuts, order=order, batch_shape=s1.shape, dtype=s1.dtype,
                           device=s1.device)                                    # (P, M)
    mean = s2[:, None] * rho[:, None] * x + b2[:, None]                          # (P, M)
    spread = (s2 * q)[:, None].expand_as(mean)
    z, wz = gaussian_nodes(_kinks(tau, spread, mean), order=order, batch_shape=mean.shape,
                           dtype=mean.dtype, device=mean.device)
    inner = torch.sum(wz * tau.function(spread[..., None] * z + mean[..., None]), dim=-1)
    outer = sigma.function(s1[:, None] * x + b1[:, None])
    return torch.sum(wx * outer * inner, dim=-1)


def _constant_pair(sigma, tau, s1, s2, b1, b2):
    """One of the units is constant (s = 0): E = E[σ(s₁G + b₁)]·E[τ(s₂G + b₂)]."""
    mean1 = sigma.hermite_coefficients(0, s1, b1)[..., 0]
    mean2 = tau.hermite_coefficients(0, s2, b2)[..., 0]
    return mean1 * mean2


def _collinear_pair(sigma, tau, s1, s2, sign, b1, b2):  # noqa: PLR0913
    """E[σ(s₁G + b₁) τ(±s₂G + b₂)] by 1-D piecewise Gauss–Legendre cut at both kinks."""
    cuts = [c for c in (_kinks(sigma, s1, b1), _kinks(tau, sign * s2, b2)) if c is not None]
    z, w = gaussian_nodes(torch.cat(cuts, dim=-1) if cuts else None, order=32,
                          batch_shape=s1.shape, dtype=s1.dtype, device=s1.device)
    left = sigma.function(s1[..., None] * z + b1[..., None])
    right = tau.function((sign * s2)[..., None] * z + b2[..., None])
    return torch.sum(w * left * right, dim=-1)


def _check_units(**values) -> None:
    """Per-unit arguments: no NaN, variances ≥ 0 (a ValueError naming the argument and value)."""
    for name, value in values.items():
        if torch.any(torch.isnan(value)):
            raise ValueError(f"{name} must not contain NaN")
        if name.startswith("var") and torch.any(value < 0):
            raise ValueError(f"{name} must be >= 0 (a variance), got {float(value.min())!r}")


def _correlation(cov, s1, s2, degenerate=None):
    """ρ = cov/(s₁s₂) clamped to [−1, 1]; raises ValueError when |cov| > s₁s₂ beyond round-off.

    Entries with a constant unit (``degenerate``) get ρ = 0 and must have cov = 0 up to
    round-off relative to the largest s₁s₂.
    """
    if degenerate is None and frozen(cov, s1, s2):
        rho = (cov / s1).div_(s2)   # in place: no N1 × N2 outer product of the scales
    elif degenerate is None:
        rho = cov / (s1 * s2)
    else:
        safe1 = torch.where(s1 > 0, s1, torch.ones_like(s1))
        safe2 = torch.where(s2 > 0, s2, torch.ones_like(s2))
        floor = _ROUND_OFF * float(s1.max()) * float(s2.max()) if cov.numel() else 0.0
        if torch.any(degenerate & (cov.abs() > floor)):
            _raise_impossible(cov, s1, s2)
        rho = torch.where(degenerate, torch.zeros_like(cov), cov / (safe1 * safe2))
    if rho.numel():
        low, high = torch.aminmax(rho.detach())
        if not (float(low) >= -1 - _ROUND_OFF and float(high) <= 1 + _ROUND_OFF):
            _raise_impossible(cov, s1, s2)
    return rho.clamp_(-1.0, 1.0) if frozen(rho) else rho.clamp(-1.0, 1.0)


def _raise_impossible(cov, s1, s2):
    bound = (s1 * s2).expand(cov.shape)
    excess = torch.nan_to_num(cov.abs() - bound, nan=torch.inf)
    index = int(torch.argmax(excess))
    value, limit = float(cov.flatten()[index]), float(bound.flatten()[index])
    if value != value:
        raise ValueError("cov must not contain NaN")
    raise ValueError(f"cov = {value!r} is impossible for variances with sqrt(var1*var2) = "
                     f"{limit!r}: |cov| must be <= sqrt(var1*var2) (up to relative {_ROUND_OFF})")
