"""Dual activations: E[σ(u + b₁) τ(v + b₂)] for a centered bivariate Gaussian (u, v).

Notation: s₁² = Var u, s₂² = Var v, ρ = Cov(u, v)/(s₁s₂); λ_k(σ; s, b) are the Hermite
coefficients of G ↦ σ(sG + b) (:mod:`lazylab.activations`).

How each pair is computed, in order:
1. composites (abs, sign) are expanded into their bases, σ(−(u + b)) = σ((−u) + (−b));
2. a unit with s = 0 is a constant: E = σ(b₁)·E[τ(v + b₂)];
3. collinear pairs (|ρ| > 1 − 1e-12, e.g. a unit with itself) are a 1-D expectation,
   E[σ(s₁G + b₁) τ(±s₂G + b₂)], by piecewise Gauss–Legendre cut at both kinks;
4. closed forms held by the family records (:mod:`lazylab.activations.families`): relu/step
   pairs with or without biases, erf pairs without biases;
5. if σ or τ is a polynomial of degree p, Mehler's formula
   E = Σ_{k ≤ p} λ_k(σ; s₁, b₁) λ_k(τ; s₂, b₂) ρ^k / k!  is exact;
6. otherwise the Mehler series to degree K = 40, whose remainder is bounded by Cauchy–Schwarz
   and Parseval: |R_K| ≤ √(T₁T₂)·|ρ|^{K+1} with T = E[σ²] − Σ_{k ≤ K} λ_k²/k!. Pairs whose
   bound exceeds 1e-12·(1 + √(E σ² E τ²)) go to a 2-D piecewise Gauss–Legendre rule instead
   (outer variable cut at the kinks of σ and of τ's conditional mean, inner variable cut at
   τ's kink); that rule is tested to ~1e-12 on closed forms.
"""

from __future__ import annotations

import torch

from lazylab.activations import Activation, get_activation
from lazylab.activations.families import Angle, frozen
from lazylab.quadrature import gaussian_nodes

__all__ = ["pair_expectation", "symmetric_dual_matrix", "is_elementwise", "SERIES_DEGREE"]

SERIES_DEGREE = 40
_COLLINEAR = 1e-12
_SERIES_TOLERANCE = 1e-12
_ROUND_OFF = 1e-12   # relative slack allowed in |cov| <= sqrt(var1*var2)
_ELEMENTWISE_BLOCK = 1 << 21    # entries per row block of symmetric_dual_matrix (16 MB each)
_QUADRATURE_BLOCK = 1 << 16     # the same when pairs need ~64 quadrature nodes each


def _bases(activation: Activation) -> list[Activation]:
    if activation.components is None:
        return [activation]
    return [get_activation(c.base) for c in activation.components]


def is_elementwise(sigma, tau, unbiased: bool) -> bool:
    """Whether the pair needs only O(1) temporaries per entry (no quadrature nodes).

    True when either side is a polynomial (finite Mehler sum) or, without biases, when every
    pair of bases has an unbiased closed form; callers may then skip row blocking.
    """
    sigma, tau = get_activation(sigma), get_activation(tau)
    if sigma.is_polynomial or tau.is_polynomial:
        return True
    if not unbiased:
        return False
    return all(a.family is not None and a.family.has_unbiased_pair(b.family)
               for a in _bases(sigma) for b in _bases(tau))


def pair_expectation(sigma, tau, var1, var2, cov, bias1=0.0, bias2=0.0) -> torch.Tensor:
    """E[σ(u + b₁) τ(v + b₂)] for (u, v) ~ N(0, [[var1, cov], [cov, var2]]), elementwise.

    Args:
        sigma, tau: activations (names, :class:`Activation` or callables).
        var1, bias1: floats or tensors describing the first units; var2, bias2 the second;
            cov: the covariances. Everything broadcasts to one output shape; per-unit work
            (Hermite coefficients, second moments) is done on the unbroadcast shapes, so pass
            (N1, 1) and (1, N2) tensors for all pairs of N1 × N2 units.
            ``bias1``/``bias2`` may be None for "no bias" (enables unbiased fast paths).
            Inputs are converted to float64; float32 values are taken as exact, so the result
            is the exact expectation for the rounded parameters (e.g. of a float32 network).
    Returns:
        float64 tensor of the broadcast shape; differentiable in every argument.
    Raises:
        ValueError: a NaN argument, a negative variance, or an impossible covariance
            |cov| > √(var1·var2) beyond relative round-off 1e-12 (nothing is clamped silently).
    """
    sigma, tau = get_activation(sigma), get_activation(tau)
    unbiased = bias1 is None and bias2 is None
    var1, var2, cov = (torch.as_tensor(t, dtype=torch.float64) for t in (var1, var2, cov))
    b1 = torch.zeros_like(var1) if bias1 is None else torch.as_tensor(bias1, dtype=torch.float64)
    b2 = torch.zeros_like(var2) if bias2 is None else torch.as_tensor(bias2, dtype=torch.float64)
    _check_units(var1=var1, var2=var2, bias1=b1, bias2=b2)
    var1, b1 = torch.broadcast_tensors(var1, b1)
    var2, b2 = torch.broadcast_tensors(var2, b2)
    shape = torch.broadcast_shapes(var1.shape, var2.shape, cov.shape)
    if unbiased and _fused(sigma, tau, var1, var2, cov):
        return _unbiased_closed_pairs(sigma, tau, var1, var2, cov.expand(shape))
    return _expand(sigma, tau, var1, var2, cov.expand(shape), b1, b2, unbiased)


def symmetric_dual_matrix(sigma, weights, biases=None, covariance=None) -> torch.Tensor:
    """K_ij = E[σ(w_i·x + b_i) σ(w_j·x + b_j)] for x ~ N(0, C), in one fused pass; (N, N) float64.

    The entries of ``lazylab.gaussian.dual_matrix(sigma, weights, biases, covariance=C)``,
    computed on the lower block triangle only and mirrored (K is exactly symmetric): for each
    row block [a, e) the float64 Gram block W_{a:e} C W_{:e}ᵀ is written into the one N × N
    output and replaced there by :func:`pair_expectation`, so the only other temporaries are
    of one row block. Unbiased closed forms share one angle per entry: for relu,
    K_ij = s_i s_j (sin θ + (π − θ) cos θ)/(2π) (Cho & Saul 2009) takes sin θ = √(1 − ρ²) and
    π − θ from one arccos of ρ = (WCWᵀ)_ij/(s_i s_j). Half the Gram flops and half the
    elementwise work of the full matrix.

    Args:
        sigma: activation. weights: W (N, d), any float dtype: dot products are taken in
            float64 (float32 values are exact). biases: (N,) or None. covariance: C (d, d) or
            None (identity).
    Not differentiable (in-place writes); ``dual_matrix`` is, for weights that need gradients.
    """
    sigma = get_activation(sigma)
    weights = torch.as_tensor(weights).to(torch.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be (N, d), got shape {tuple(weights.shape)}")
    left = weights if covariance is None else weights @ torch.as_tensor(covariance).to(
        torch.float64)
    var = (left * weights).sum(-1)
    biases = None if biases is None else torch.as_tensor(biases).to(torch.float64)
    width = weights.shape[0]
    closed = biases is None and _fused(sigma, sigma, var, var, var)
    if closed:   # Gram of the unit rows w_i/s_i: ρ itself, no division pass
        scale = torch.sqrt(var)
        left, weights = left / scale[:, None], weights / scale[:, None]
    entries = (_ELEMENTWISE_BLOCK if is_elementwise(sigma, sigma, biases is None)
               else _QUADRATURE_BLOCK)
    rows = max(64, entries // max(width, 1))
    out = torch.empty((width, width), dtype=torch.float64, device=weights.device)
    for start in range(0, width, rows):
        stop = min(start + rows, width)
        block = out[start:stop, :stop]
        torch.mm(left[start:stop], weights[:stop].T, out=block)
        if closed:   # ρ_ii = 1 exactly (arccos is not Lipschitz at 1: no round-off there)
            block[:, start:].diagonal().fill_(1.0)
            value = _closed_sum(sigma, sigma, scale[start:stop, None], scale[None, :stop],
                                Angle(block.clamp_(-1.0, 1.0)))
        else:
            pair = (None, None) if biases is None else (biases[start:stop, None],
                                                        biases[None, :stop])
            value = pair_expectation(sigma, sigma, var[start:stop, None], var[None, :stop],
                                     block, *pair)
        block.copy_(value)
    return _mirror_lower(out, rows)


def _mirror_lower(out, rows):
    """Copy the lower triangle of ``out`` (filled by row blocks of ``rows``) onto its upper one."""
    width = out.shape[0]
    for start in range(0, width, rows):
        stop = min(start + rows, width)
        square = out[start:stop, start:stop]
        square.copy_(square.tril() + square.tril(-1).mT)
        out[start:stop, stop:].copy_(out[stop:, start:stop].mT)
    return out


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


def _fused(sigma, tau, var1, var2, cov) -> bool:
    """Every base pair has an unbiased closed form, no gradient is needed, no unit is constant."""
    return (is_elementwise(sigma, tau, True) and not sigma.is_polynomial
            and not tau.is_polynomial and not _needs_grad(var1, var2, cov)
            and bool(torch.all(var1 > 0)) and bool(torch.all(var2 > 0)))


def _terms(activation: Activation):
    if activation.components is None:
        return [(1.0, activation, False)]
    return [(c.coefficient, get_activation(c.base), c.flip) for c in activation.components]


def _unbiased_closed_pairs(sigma, tau, var1, var2, cov):
    """Σ over base pairs c·c′·E[g(±u) h(±v)], all from one ρ and one shared angle.

    The closed forms are exact at ρ = ±1 as they stand (only their ρ-derivative is singular
    there), so no collinear mask is needed; a flipped unit maps ρ → −ρ and reuses the angle.
    """
    s1, s2 = torch.sqrt(var1), torch.sqrt(var2)
    return _closed_sum(sigma, tau, s1, s2, Angle(_correlation(cov, s1, s2))).expand(cov.shape)


def _closed_sum(sigma, tau, s1, s2, angle):
    """Σ over base pairs c·c′·E[g(±u) h(±v)] at scales s1, s2 from one shared angle."""
    total = None
    for c1, base1, flip1 in _terms(sigma):
        for c2, base2, flip2 in _terms(tau):
            form, swapped, _ = base1.family.pair_form(base2.family, unbiased=True)
            shared = angle.flipped() if flip1 != flip2 else angle
            value = form(s2, s1, shared) if swapped else form(s1, s2, shared)
            value = value if c1 * c2 == 1.0 else (c1 * c2) * value
            total = value if total is None else total + value
    return total


def _expand(sigma, tau, var1, var2, cov, b1, b2, unbiased):
    if sigma.components is not None:
        return sum(c.coefficient * _expand(get_activation(c.base), tau, var1, var2,
                                           -cov if c.flip else cov, -b1 if c.flip else b1, b2,
                                           unbiased)
                   for c in sigma.components)
    if tau.components is not None:
        return sum(c.coefficient * _expand(sigma, get_activation(c.base), var1, var2,
                                           -cov if c.flip else cov, b1, -b2 if c.flip else b2,
                                           unbiased)
                   for c in tau.components)
    return _base_pair(sigma, tau, var1, var2, cov, b1, b2, unbiased)


def _unbiased_closed(sigma, tau) -> bool:
    return sigma.family is not None and sigma.family.has_unbiased_pair(tau.family)


def _base_pair(sigma, tau, var1, var2, cov, b1, b2, unbiased):
    """One base pair; (var1, b1) and (var2, b2) have per-unit shapes, cov the output shape."""
    shape = cov.shape
    s1, s2 = torch.sqrt(var1), torch.sqrt(var2)
    if not (torch.any(s1 == 0) or torch.any(s2 == 0)):
        rho = _correlation(cov, s1, s2)
        if sigma.is_polynomial or tau.is_polynomial or (unbiased and _unbiased_closed(sigma, tau)
                                                        and not _needs_grad(var1, var2, cov)):
            # exact at ρ = ±1 as they stand (only their ρ-derivative is singular there)
            return _generic_pair(sigma, tau, s1, s2, rho, b1, b2, unbiased)
        return _with_special_pairs(sigma, tau, s1, s2, rho, b1, b2, unbiased,
                                   torch.zeros(shape, dtype=torch.bool, device=cov.device))
    degenerate = ((s1 == 0) | (s2 == 0)).expand(shape)
    rho = _correlation(cov, s1, s2, degenerate)
    if sigma.is_polynomial or tau.is_polynomial:  # the finite Mehler sum is exact for all ρ, s
        return _generic_pair(sigma, tau, s1, s2, rho, b1, b2, unbiased)
    return _with_special_pairs(sigma, tau, s1, s2, rho, b1, b2, unbiased, degenerate)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _with_special_pairs(sigma, tau, s1, s2, rho, b1, b2, unbiased, degenerate):
    """Open pairs by the generic route; constant units and collinear pairs by exact 1-D rules."""
    shape = rho.shape
    safe1 = torch.where(s1 > 0, s1, torch.ones_like(s1))
    safe2 = torch.where(s2 > 0, s2, torch.ones_like(s2))
    collinear = (rho.abs() > 1 - _COLLINEAR) & ~degenerate
    special = degenerate | collinear
    rho_open = torch.where(special, torch.zeros_like(rho), rho)
    out = _generic_pair(sigma, tau, safe1, safe2, rho_open, b1, b2, unbiased)
    if torch.any(special):
        full = [t.expand(shape) for t in (s1, s2, b1, b2)]
        out = out.clone()
        for mask, fill in ((degenerate, _constant_pair), (collinear, _collinear_pair)):
            if torch.any(mask):
                picked = [t[mask] for t in full]
                extra = () if fill is _constant_pair else (torch.sign(rho[mask]),)
                out[mask] = fill(sigma, tau, *picked[:2], *extra, *picked[2:])
    return out


def _generic_pair(sigma, tau, s1, s2, rho, b1, b2, unbiased):
    found = None if sigma.family is None else sigma.family.pair_form(tau.family, unbiased)
    if found is not None:
        form, swapped, takes_biases = found
        args = (s2, s1, rho, b2, b1) if swapped else (s1, s2, rho, b1, b2)
        if not takes_biases:
            return form(args[0], args[1], Angle(rho)).expand(rho.shape)
        return form(*args).expand(rho.shape)
    degrees = [a.degree for a in (sigma, tau) if a.is_polynomial]
    if degrees:
        return _mehler(sigma, tau, s1, s2, rho, b1, b2, min(degrees))
    return _series_or_quadrature(sigma, tau, s1, s2, rho, b1, b2)


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
