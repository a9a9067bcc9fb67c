"""Closed-form activation families: one record per family, holding everything exact about it.

A :class:`Family` holds the Hermite coefficients λ_k(σ; s, b) of G ↦ σ(sG + b) (s ≥ 0), the
closed forms of E[σ(u + b₁) τ(v + b₂)] against other families, and the Dirac parts of σ′. The
Gaussian engine (:mod:`lazylab.gaussian`) dispatches through these records; an activation of
the registry names its family (``Activation.family``). Adding a closed form is one record here;
a new activation of an existing family (or a composite a·g(u) + b·g(−u) of its base, expanded by
linearity as neural-tangents' ABRelu does for a·relu(u) + b·relu(−u)) is one registry line.

Hermite coefficients (integration by parts, E[f He_k] = E[f^(j) He_{k-j}]), with m = b/s:
* relu: λ_0 = sφ(m) + bΦ(m), λ_1 = sΦ(m), λ_k = sφ(m) He_{k-2}(-m) for k ≥ 2;
* step 1[u > 0]: λ_0 = Φ(m), λ_k = φ(m) He_{k-1}(-m) for k ≥ 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from lazylab.quadrature import bivariate_normal_cdf, hermite_polynomials, normal_cdf, normal_pdf

__all__ = ["Family", "Angle", "FAMILIES", "RELU", "STEP", "ERF", "step_step", "relu_step", "relu_relu",
           "erf_erf"]


@dataclass(frozen=True)
class Family:
    """The closed forms shared by the activations of one family (one record per family).

    Attributes:
        name: family name.
        hermite: (degree, s, b) ↦ λ_0..λ_degree of G ↦ σ(sG + b), or None (quadrature).
        pairs: other family's name ↦ (biased, unbiased) closed forms of E[σ(u + b₁) τ(v + b₂)]
            with τ of that family, called as biased(s₁, s₂, ρ, b₁, b₂) and unbiased(s₁, s₂, angle)
            (an :class:`Angle` of ρ)
            for |ρ| < 1, s > 0 (either may be None). A pair is looked up in both orders.
        diracs: the Dirac parts (weight, location) of σ′, when σ jumps.
        times_u: registry name of the activation u ↦ u·σ(u), when it is in the registry.
        tangent_excess: for σ′ of this family, (scales, ρ) ↦ (κ, N¹¹, N¹², N²²), the
            in-plane moments of the NT operator (:mod:`lazylab.gaussian.tangent`), or None.
        singular: names of the partner families whose unbiased form has an infinite
            ρ-derivative at ρ = ±1 (step × step: (π − θ)/(2π), derivative 1/(2π sin θ)); the
            engine then takes collinear pairs by exact 1-D rules when gradients are needed.
    """

    name: str
    hermite: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    pairs: dict = field(default_factory=dict, hash=False, compare=False)
    diracs: tuple[tuple[float, float], ...] = ()
    times_u: str | None = None
    tangent_excess: Callable | None = None
    singular: frozenset = frozenset()

    @property
    def jumps(self) -> bool:
        """σ is discontinuous: σ′ has Dirac parts and no function part."""
        return bool(self.diracs)

    def pair_form(self, other: "Family | None", unbiased: bool):
        """The closed form of E[σ τ] for τ of family ``other``: (form, swapped, biased) or None.

        ``swapped``: the form takes τ's arguments first; ``biased``: it takes (s₁, s₂, ρ, b₁, b₂)
        rather than (s₁, s₂, Angle(ρ)). Without biases the unbiased form is preferred.
        """
        if other is None:
            return None
        for forms, swapped in ((self.pairs.get(other.name), False),
                               (other.pairs.get(self.name), True)):
            if forms is None:
                continue
            biased, plain = forms
            if unbiased and plain is not None:
                return plain, swapped, False
            if biased is not None:
                return biased, swapped, True
        return None

    def has_unbiased_pair(self, other: "Family | None") -> bool:
        """An unbiased closed form against ``other`` exists (O(1) work per entry)."""
        found = self.pair_form(other, unbiased=True)
        return found is not None and not found[2]

    def has_smooth_unbiased_pair(self, other: "Family | None") -> bool:
        """An unbiased closed form against ``other`` exists and its value and gradient are
        exact on all of ρ ∈ [−1, 1] (collinear pairs need no special rule)."""
        return (self.has_unbiased_pair(other) and other.name not in self.singular
                and self.name not in other.singular)


# ----------------------------------------------------------------------------- Hermite closed forms

def _safe_ratio(s, b):
    positive = s > 0
    m = b / torch.where(positive, s, torch.ones_like(s))
    return positive, m


def _relu_hermite(degree, s, b):
    positive, m = _safe_ratio(s, b)
    pdf, cdf = normal_pdf(m), normal_cdf(m)
    terms = [s * pdf + b * cdf, s * cdf]
    if degree >= 2:
        he = hermite_polynomials(-m, degree - 2)
        terms += [s * pdf * he[..., k] for k in range(degree - 1)]
    lam = torch.stack(terms[: degree + 1], dim=-1)
    constant = torch.nn.functional.pad(torch.relu(b)[..., None], (0, degree))
    return torch.where(positive[..., None], lam, constant)


def _step_hermite(degree, s, b):
    positive, m = _safe_ratio(s, b)
    terms = [normal_cdf(m)]
    if degree >= 1:
        he = hermite_polynomials(-m, degree - 1)
        terms += [normal_pdf(m) * he[..., k] for k in range(degree)]
    lam = torch.stack(terms, dim=-1)
    constant = torch.nn.functional.pad((b > 0).to(lam.dtype)[..., None], (0, degree))
    return torch.where(positive[..., None], lam, constant)


# ----------------------------------------------------------------------------- pair closed forms
# (X, Y) standard normal with correlation ρ, q = √(1 − ρ²), u = s₁X, v = s₂Y, m_i = b_i/s_i,
# Φ₂ = Φ₂(m₁, m₂; ρ), A = (m₂ − ρm₁)/q, B = (m₁ − ρm₂)/q (THEORY.md §5.1; each re-derived from
# E[X 1{X>a, Y>b}] and E[XY 1{X>a, Y>b}] by Gaussian integration by parts):
#   E[1{u+b₁>0} 1{v+b₂>0}] = Φ₂,   E[(u+b₁)₊ 1{v+b₂>0}]/s₁ = m₁Φ₂ + φ(m₁)Φ(A) + ρφ(m₂)Φ(B),
#   E[(u+b₁)₊ (v+b₂)₊]/(s₁s₂) = (ρ + m₁m₂)Φ₂ + m₁φ(m₂)Φ(B) + m₂φ(m₁)Φ(A) + qφ(m₁)φ(A);
# without biases these are the arc-cosine kernels (Cho & Saul 2009) with θ = arccos ρ;
# E[erf(u) erf(v)] = (2/π) arcsin(2c/√((1 + 2s₁²)(1 + 2s₂²))), c = ρs₁s₂ (Williams 1997).

def _standardize(s1, s2, rho, b1, b2):
    q = torch.sqrt((1 - rho * rho).clamp_min(0.0))
    m1, m2 = b1 / s1, b2 / s2
    return q, m1, m2, (m2 - rho * m1) / q, (m1 - rho * m2) / q


def step_step(s1, s2, rho, b1, b2):
    """E[1{u + b₁ > 0} 1{v + b₂ > 0}] with u = s₁X, v = s₂Y, corr(X, Y) = ρ, |ρ| < 1, s > 0."""
    return bivariate_normal_cdf(b1 / s1, b2 / s2, rho)


def relu_step(s1, s2, rho, b1, b2):
    """E[(u + b₁)₊ 1{v + b₂ > 0}] (same conventions as :func:`step_step`)."""
    q, m1, m2, a, b = _standardize(s1, s2, rho, b1, b2)
    phi2 = bivariate_normal_cdf(m1, m2, rho)
    return s1 * (m1 * phi2 + normal_pdf(m1) * normal_cdf(a) + rho * normal_pdf(m2) * normal_cdf(b))


def relu_relu(s1, s2, rho, b1, b2):
    """E[(u + b₁)₊ (v + b₂)₊] (same conventions as :func:`step_step`)."""
    q, m1, m2, a, b = _standardize(s1, s2, rho, b1, b2)
    phi2 = bivariate_normal_cdf(m1, m2, rho)
    return s1 * s2 * ((rho + m1 * m2) * phi2 + m1 * normal_pdf(m2) * normal_cdf(b)
                      + m2 * normal_pdf(m1) * normal_cdf(a) + q * normal_pdf(m1) * normal_pdf(a))


def erf_erf(s1, s2, rho, b1=0.0, b2=0.0):  # noqa: ARG001 (the biased signature)
    """E[erf(u) erf(v)] for unbiased u, v (Williams 1997); b₁ = b₂ = 0 is required."""
    c = rho * s1 * s2
    return (2 / math.pi) * torch.asin(2 * c / torch.sqrt((1 + 2 * s1 * s1) * (1 + 2 * s2 * s2)))


def frozen(*tensors) -> bool:
    """No gradient flows through these tensors, so fresh temporaries may be updated in place."""
    return not torch.is_grad_enabled() or not any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


class Angle:
    """A correlation ρ with q = √(1 − ρ²) and π − θ = π − arccos ρ, each computed once on demand.

    The unbiased arc-cosine forms take an Angle so that every base pair of a composite shares one
    angle computation: flipping one unit (ρ → −ρ) keeps q and maps π − θ to θ.
    """

    def __init__(self, rho: torch.Tensor, *, parent: "Angle | None" = None):
        self.rho = rho
        self._parent = parent
        self._q = None
        self._complement = None

    @property
    def q(self) -> torch.Tensor:
        if self._q is None:
            if self._parent is not None:
                self._q = self._parent.q
            elif frozen(self.rho):   # 1 − ρ² in one pass, then in place: one allocation
                one = torch.ones((), dtype=self.rho.dtype, device=self.rho.device)
                self._q = torch.addcmul(one, self.rho, self.rho, value=-1.0).clamp_min_(0.0).sqrt_()
            else:
                self._q = torch.sqrt((1 - self.rho * self.rho).clamp_min(0.0))
        return self._q

    @property
    def complement(self) -> torch.Tensor:
        """π − θ = π − arccos ρ = arccos(−ρ) (one arccos, accurate also where θ is near π)."""
        if self._complement is None:
            if self._parent is not None:
                base = self._parent.complement
                self._complement = (torch.neg(base).add_(torch.pi) if frozen(base)
                                    else torch.pi - base)
            else:
                self._complement = (torch.neg(self.rho).acos_() if frozen(self.rho)
                                    else torch.acos(-self.rho))
        return self._complement

    def flipped(self) -> "Angle":
        """The angle of −ρ."""
        return Angle(-self.rho, parent=self)


class _ArcCosineCore(torch.autograd.Function):
    """J(ρ) = √(1 − ρ²) + (π − arccos ρ)ρ with its derivative J′(ρ) = π − arccos ρ.

    Differentiating the two terms apart gives −ρ/√(1 − ρ²) + ρ/√(1 − ρ²) + (π − arccos ρ): the
    singular parts cancel in exact arithmetic, but autograd forms them — infinite at ρ = ±1,
    and near it two terms of size 1/√(1 − ρ²) (≈ 10⁸ a few ulps from 1) whose difference
    loses ≈ 8 digits. J′ is finite on [−1, 1] (π at ρ = 1, 0 at ρ = −1) and taken directly.
    This is what lets the engine take collinear pairs (a unit with itself, wⱼ ∥ wᵢ) by the
    closed form under autograd instead of by 1-D rules (:func:`lazylab.gaussian.dual`).
    First derivatives only: a second backward raises instead of silently dropping J″.
    """

    @staticmethod
    def forward(ctx, rho):
        angle = Angle(rho.detach())
        ctx.save_for_backward(angle.complement)
        return torch.addcmul(angle.q, angle.complement, angle.rho)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (complement,) = ctx.saved_tensors
        return grad * complement


def relu_relu_unbiased(s1, s2, angle: Angle):
    """E[u₊ v₊] = s₁s₂ (sin θ + (π − θ) cos θ)/(2π), θ = arccos ρ; its ρ-derivative
    s₁s₂(π − θ)/(2π) is finite at ρ = ±1 (:class:`_ArcCosineCore` when ρ needs gradients)."""
    core = (torch.addcmul(angle.q, angle.complement, angle.rho) if frozen(angle.rho)
            else _ArcCosineCore.apply(angle.rho))
    if frozen(core, s1, s2) and core.shape == torch.broadcast_shapes(core.shape, s1.shape,
                                                                      s2.shape):
        return core.mul_(s1 / (2 * torch.pi)).mul_(s2)
    return core * (s1 / (2 * torch.pi)) * s2


def step_step_unbiased(s1, s2, angle: Angle):  # noqa: ARG001 (scale-free)
    """E[1{u>0} 1{v>0}] = (π − θ)/(2π)."""
    return angle.complement / (2 * torch.pi)


def relu_step_unbiased(s1, s2, angle: Angle):  # noqa: ARG001 (free of s₂)
    """E[u₊ 1{v>0}] = s₁(1 + ρ)/(2√(2π))."""
    return (1 + angle.rho) * (s1 / (2 * (2 * torch.pi) ** 0.5))


def erf_erf_unbiased(s1, s2, angle: Angle):
    """E[erf(u) erf(v)] without biases, as :func:`erf_erf`."""
    return erf_erf(s1, s2, angle.rho)


def step_tangent_excess(scales, rho):
    """κ = E[σ′(u)σ′(v)] and N = M − κG for σ′ = step, θ = arccos ρ (lazylab.gaussian.tangent):

    κ = (π − θ)/(2π), N¹¹ = s_i² sinθ cosθ/(2π), N¹² = s_i s_j sinθ/(2π), N²² = s_j² sinθ cosθ/(2π);
    scales (N,), rho (N, N) with |ρ| < 1 off the collinear pairs.
    """
    theta = torch.acos(rho)
    sin, cos = torch.sin(theta), torch.cos(theta)
    si, sj = scales[:, None], scales[None, :]
    kappa = (torch.pi - theta) / (2 * torch.pi)
    return kappa, si * si * sin * cos / (2 * torch.pi), si * sj * sin / (2 * torch.pi), \
        sj * sj * sin * cos / (2 * torch.pi)


# The families: a new closed form is one record here; a new activation of a family is one
# line of lazylab.activations.ACTIVATIONS (composites a·g(u) + b·g(−u) of a family's base, like abs and sign, are
# expanded by linearity, as neural-tangents' ABRelu does for a·relu(u) + b·relu(−u)).
RELU = Family("relu", _relu_hermite, {"relu": (relu_relu, relu_relu_unbiased),
                                      "step": (relu_step, relu_step_unbiased)})
STEP = Family("step", _step_hermite, {"step": (step_step, step_step_unbiased)},
              diracs=((1.0, 0.0),), times_u="relu", tangent_excess=step_tangent_excess,
              singular=frozenset({"step"}))
ERF = Family("erf", None, {"erf": (None, erf_erf_unbiased)})
FAMILIES: dict[str, Family] = {f.name: f for f in (RELU, STEP, ERF)}
