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

import math

from concurrent.futures import ThreadPoolExecutor

import torch

from lazylab.activations import Activation, get_activation
from lazylab.activations.families import RELU, Angle
from lazylab.gaussian._pair_rules import (SERIES_DEGREE, _check_units, _collinear_pair,
                                          _constant_pair, _correlation, _mehler,
                                          _series_or_quadrature, quadrature_pair)
from lazylab.solvers.structured import large_empty, mirror_lower

__all__ = ["pair_expectation", "symmetric_dual_matrix", "lower_dual_matrix", "is_elementwise",
           "quadrature_pair", "SERIES_DEGREE"]

_COLLINEAR = 1e-12
_ELEMENTWISE_BLOCK = 1 << 21    # entries per row block of lower_dual_matrix (16 MB each)
_QUADRATURE_BLOCK = 1 << 16     # the same when pairs need ~64 quadrature nodes each
_CACHE_BLOCK = 1 << 15          # entries per elementwise chunk (256 KB: one thread's L2)


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
            ``bias1``/``bias2`` may be None for "no bias" (enables unbiased fast paths; so do
            zero biases that take no gradient).
            Inputs are converted to float64; float32 values are taken as exact, so the result
            is the exact expectation for the rounded parameters (e.g. of a float32 network).
    Returns:
        float64 tensor of the broadcast shape; differentiable in every argument.
    Raises:
        ValueError: a NaN argument, a negative variance, or an impossible covariance
            |cov| > √(var1·var2) beyond relative round-off 1e-12 (nothing is clamped silently).
    """
    sigma, tau = get_activation(sigma), get_activation(tau)
    unbiased = _no_bias(bias1) and _no_bias(bias2)
    bias1, bias2 = (None, None) if unbiased else (bias1, bias2)
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


def _no_bias(bias) -> bool:
    """None, or zeros that take no gradient: the same expectation as no bias, by the unbiased
    closed forms (e.g. a target neuron whose bias is 0.0)."""
    if bias is None:
        return True
    if isinstance(bias, torch.Tensor):
        return not (torch.is_grad_enabled() and bias.requires_grad) and not bool(torch.any(bias))
    return isinstance(bias, (int, float)) and bias == 0


def symmetric_dual_matrix(sigma, weights, biases=None, covariance=None) -> torch.Tensor:
    """K_ij = E[σ(w_i·x + b_i) σ(w_j·x + b_j)] for x ~ N(0, C), in one fused pass; (N, N) float64.

    The entries of ``lazylab.gaussian.dual_matrix(sigma, weights, biases, covariance=C)``,
    computed on the lower block triangle only (:func:`lower_dual_matrix`) and mirrored (K is
    exactly symmetric). Half the Gram flops and half the elementwise work of the full matrix.

    Args:
        sigma: activation. weights: W (N, d), any float dtype: dot products are taken in
            float64 (float32 values are exact). biases: (N,) or None. covariance: C (d, d) or
            None (identity).
    Not differentiable (in-place writes); ``dual_matrix`` is, for weights that need gradients.
    """
    return mirror_lower(lower_dual_matrix(sigma, weights, biases, covariance))


def lower_dual_matrix(sigma, weights, biases=None, covariance=None, *,
                      subtract=None) -> torch.Tensor:
    """The lower triangle (diagonal included) of :func:`symmetric_dual_matrix` minus u uᵀ.

    (N, N) float64; u = ``subtract`` (N,) or None, e.g. the feature means for the centred second
    moment, subtracted entry by entry while each chunk is in cache (− u(uᵀv) applied to products
    later would cancel digits). Only the lower triangle is written; the strict upper one holds
    arbitrary values (for :class:`lazylab.solvers.structured.LowerSymmetric`). The float64 Gram
    blocks W_{a:e} C W_{:e}ᵀ of all row blocks [a, e) are written into the output first, then
    replaced there by the dual activation: no other N × N temporary. Unbiased closed forms and
    polynomials take the Gram of the unit rows w_i/s_i, which is ρ itself (ρ_ii = 1 set exactly:
    arccos is not Lipschitz at 1), in chunks of about :data:`_CACHE_BLOCK` entries that stay in
    cache through all their elementwise passes, every row's chunks shared by one pool of
    threads. The closed forms share one angle per entry: for relu, K_ij = s_i s_j (sin θ + (π −
    θ) cos θ)/(2π) (Cho & Saul 2009) takes sin θ = √(1 − ρ²) and π − θ from one arccos;
    polynomials of degree p sum Mehler's Σ_{k ≤ p} μ_k(i) μ_k(j) ρ^k by Horner with rank-one
    updates (μ_k = λ_k/√k!, per unit once). Other pairs go through :func:`pair_expectation` by
    row blocks. Arguments as :func:`symmetric_dual_matrix`.
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
    chunked = closed or (sigma.is_polynomial and not _needs_grad(weights, var))
    relu = closed and sigma.components is None and sigma.family is RELU
    if chunked:   # Gram of the unit rows w_i/s_i (a constant unit's row is 0: ρ = 0)
        scale = torch.sqrt(var)
        unit = torch.where(scale > 0, scale, 1.0)[:, None]
        left, weights = (-left if relu else left) / unit, weights / unit   # relu: −ρ
    subtract = None if subtract is None else torch.as_tensor(subtract).to(torch.float64)
    evaluate = (_relu_chunks(scale, subtract) if relu else
                _closed_chunks(sigma, scale, subtract) if closed else
                _polynomial_chunks(sigma, scale, biases, subtract) if chunked else
                _pair_block(sigma, var, biases, subtract))
    entries = (_ELEMENTWISE_BLOCK if is_elementwise(sigma, sigma, biases is None)
               else _QUADRATURE_BLOCK)
    rows = max(64, entries // max(width, 1))
    out = large_empty(width, width, device=weights.device)
    blocks = [(start, min(start + rows, width)) for start in range(0, width, rows)]
    for start, stop in blocks:   # every Gram block first: the GEMMs run uninterrupted
        torch.mm(left[start:stop], weights[:stop].T, out=out[start:stop, :stop])
    for start, stop in [(0, width)] if chunked else blocks:  # chunks: one pool for all rows
        evaluate(out, start, stop)
    return out


def _in_chunks(function, subtract):
    """Apply ``function(piece, a, e)`` to rows [start, stop) in chunks (:func:`_chunk_bounds`;
    piece = out[a:e, :e] holds ρ), then subtract u uᵀ there (u = ``subtract`` or None); the
    chunks spread over threads by :func:`_map_single_threaded`."""
    def evaluate(out, start, stop):
        def chunk(bounds):
            a, e = bounds
            function(out[a:e, :e], a, e)
            if subtract is not None:
                out[a:e, :e].addr_(subtract[a:e], subtract[:e], alpha=-1.0)
        _map_single_threaded(chunk, _chunk_bounds(start, stop))
    return evaluate


def _chunk_bounds(start: int, stop: int) -> list[tuple[int, int]]:
    """Row ranges [a, e) covering [start, stop), r = e − a rows with r(a + r) ≈ _CACHE_BLOCK."""
    ends = [start]
    while ends[-1] < stop:
        a = ends[-1]
        ends.append(min(stop, a + max(1, int((math.sqrt(a * a + 4 * _CACHE_BLOCK) - a) / 2))))
    return list(zip(ends, ends[1:]))


def _map_single_threaded(function, items) -> None:
    """``function`` on every item, its torch operations single-threaded, the items shared by
    ``torch.get_num_threads()`` Python threads (torch releases the GIL inside operations).

    Each small elementwise operation would otherwise open an OpenMP parallel region whose
    barrier, on a loaded machine, waits up to a scheduler time slice for a descheduled worker
    (measured 8-16 ms per operation at load 10 on 2 cores); here no thread waits for another
    until the last item.
    """
    items = list(items)
    threads = min(torch.get_num_threads(), len(items))
    if threads <= 1:
        for item in items:
            function(item)
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads, initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:   # MKL's count is per thread
            for _ in pool.map(function, items):
                pass
    finally:
        torch.set_num_threads(before)


def _closed_chunks(sigma, scale, subtract):
    """Unbiased closed forms from ρ, in place: Σ over base pairs, one shared angle."""
    def function(piece, a, e):
        piece[:, a:].diagonal().fill_(1.0)
        piece.copy_(_closed_sum(sigma, sigma, scale[a:e, None], scale[None, :e],
                                Angle(piece.clamp_(-1.0, 1.0))))
    return _in_chunks(function, subtract)


def _relu_chunks(scale, subtract):
    """ReLU from −ρ in place: s_i s_j (√(1 − ρ²) + ρ (π − θ))/(2π) with π − θ = arccos(−ρ):
    :func:`lazylab.activations.families.relu_relu_unbiased` in six passes over the chunk and
    two temporaries (the Gram of the negated rows gives −ρ, so arccos(−ρ) needs no negation;
    after clamping to [−1, 1], 1 − ρ² ≥ 0 in floating point)."""
    column = scale / (2 * torch.pi)

    def function(piece, a, e):
        piece[:, a:].diagonal().fill_(-1.0)
        piece.clamp_(-1.0, 1.0)
        complement = torch.acos(piece)
        core = torch.addcmul(torch.ones((), dtype=piece.dtype), piece, piece, value=-1.0).sqrt_()
        core.addcmul_(piece, complement, value=-1.0)
        torch.mul(core, column[a:e, None], out=complement)
        torch.mul(complement, scale[None, :e], out=piece)
    return _in_chunks(function, subtract)


def _polynomial_chunks(sigma, scale, biases, subtract):
    """Σ_{k ≤ p} μ_k(i) μ_k(j) ρ^k (Mehler, exact for degree p) by Horner, in place."""
    bias = torch.zeros_like(scale) if biases is None else biases
    mu = sigma.hermite_coefficients(sigma.degree, scale, bias, normalized=True)
    degrees = [k for k in range(sigma.degree) if bool(torch.any(mu[:, k] != 0))]
    positive = (scale > 0).to(scale.dtype)

    def function(piece, a, e):
        piece[:, a:].diagonal().copy_(positive[a:e])
        rho = piece.clamp_(-1.0, 1.0).clone()
        piece.copy_(torch.outer(mu[a:e, -1], mu[:e, -1]))
        for k in range(sigma.degree - 1, -1, -1):
            piece.mul_(rho)
            if k in degrees:
                piece.addr_(mu[a:e, k], mu[:e, k])
    return _in_chunks(function, subtract)


def _pair_block(sigma, var, biases, subtract):
    """Any other pair: :func:`pair_expectation` on a whole row block (Gram entries in place),
    minus u uᵀ (u = ``subtract`` or None)."""
    def evaluate(out, start, stop):
        block = out[start:stop, :stop]
        pair = (None, None) if biases is None else (biases[start:stop, None], biases[None, :stop])
        block.copy_(pair_expectation(sigma, sigma, var[start:stop, None], var[None, :stop],
                                     block, *pair))
        if subtract is not None:
            block.addr_(subtract[start:stop], subtract[:stop], alpha=-1.0)
    return evaluate


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


def _smooth_closed(sigma, tau) -> bool:
    return sigma.family is not None and sigma.family.has_smooth_unbiased_pair(tau.family)


def _base_pair(sigma, tau, var1, var2, cov, b1, b2, unbiased):
    """One base pair; (var1, b1) and (var2, b2) have per-unit shapes, cov the output shape."""
    shape = cov.shape
    s1, s2 = torch.sqrt(var1), torch.sqrt(var2)
    if not (torch.any(s1 == 0) or torch.any(s2 == 0)):
        rho = _correlation(cov, s1, s2)
        if sigma.is_polynomial or tau.is_polynomial or (unbiased and _unbiased_closed(
                sigma, tau) and (not _needs_grad(var1, var2, cov) or _smooth_closed(sigma, tau))):
            # exact at ρ = ±1 as they stand; so is the ρ-derivative of the smooth forms (relu ×
            # relu by its own backward), the others' is singular there
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
