"""Activations: σ, σ′ and the Hermite coefficients of u ↦ σ(s·u + b).

Notation: G ~ N(0, 1); He_k are the probabilists' Hermite polynomials; the Hermite coefficients
are λ_k = E[σ(G) He_k(G)], so σ = Σ_k λ_k He_k / k! and E[σ(G)²] = Σ_k λ_k² / k!
(Ghorbani et al. 2019, §2.1; THEORY.md §5.2). Throughout, λ_k(σ; s, b) denotes the coefficients
of the scaled and shifted function u ↦ σ(s·u + b) with s ≥ 0: these are what a hidden unit
σ(w·x + b) with s = ‖w‖ contributes to every Gaussian expectation.

Exact coefficients (all derived by integrating by parts, E[f He_k] = E[f^(j) He_{k-j}]):
* relu: with m = b/s, λ_0 = sφ(m) + bΦ(m), λ_1 = sΦ(m), λ_k = sφ(m) He_{k-2}(-m) for k ≥ 2;
* step 1[u > 0]: λ_0 = Φ(m), λ_k = φ(m) He_{k-1}(-m) for k ≥ 1;
* polynomials: expand (s·G + b)^j binomially and change basis monomial → Hermite;
* composites (abs = relu(u) + relu(-u), sign = step(u) - step(-u)): by linearity, with
  σ(-(sG + b)) having coefficients (-1)^k λ_k(σ; s, -b).
The closed forms of a family (Hermite coefficients, pair expectations, Dirac parts of σ′) are one
:class:`Family` record in :mod:`lazylab.activations.families`; an activation names its family.
Every other activation uses piecewise Gauss–Legendre quadrature cut at its kinks
(:mod:`lazylab.quadrature`), accurate to ~1e-14 for degrees up to 40.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from lazylab.activations.families import ERF, FAMILIES, RELU, STEP, Family
from lazylab.quadrature import gaussian_nodes, hermite_polynomials

__all__ = ["Activation", "Component", "Family", "ACTIVATIONS", "FAMILIES", "get_activation",
           "monomial", "polynomial", "two_sided", "hermite_polynomials"]

Function = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Component:
    """One term c·base(±u) of a composite activation."""

    coefficient: float
    base: str
    flip: bool = False


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function with what the Gaussian engine needs to know about it.

    Attributes:
        name: registry name (or the callable's name for user functions).
        function: σ, elementwise on torch tensors.
        derivative_name: name of σ′ in the registry, or None when σ′ is built from
            ``derivative`` (a callable) or by autograd.
        kinks: points where σ or σ′ is not smooth; quadrature cuts there.
        coefficients: monomial coefficients (c_0, …, c_p) when σ is a polynomial.
        components: for composites, σ(u) = Σ c·base(±u); the engine works on the bases.
        family: the closed-form :class:`Family` record, or None.
    """

    name: str
    function: Function
    derivative_name: str | None = None
    derivative_function: Function | None = field(default=None, repr=False)
    kinks: tuple[float, ...] = ()
    coefficients: tuple[float, ...] | None = None
    components: tuple[Component, ...] | None = None
    family: Family | None = None

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return self.function(u)

    @property
    def is_polynomial(self) -> bool:
        return self.coefficients is not None

    @property
    def degree(self) -> int | None:
        """Polynomial degree, or None for non-polynomials."""
        return None if self.coefficients is None else len(self.coefficients) - 1

    def derivative(self) -> "Activation":
        """σ′ as an :class:`Activation` (closed-form where the registry knows it)."""
        if self.coefficients is not None:
            coefs = tuple(j * c for j, c in enumerate(self.coefficients))[1:] or (0.0,)
            return polynomial(coefs, name=f"d({self.name})")
        if self.derivative_name is not None:
            return ACTIVATIONS[self.derivative_name]
        if self.derivative_function is not None:
            return Activation(f"d({self.name})", self.derivative_function, kinks=self.kinks)
        if self._has_jump():
            raise ValueError(f"activation {self.name!r} jumps, so its derivative contains a Dirac "
                             "mass and is not a function; use 'relu', whose derivative is 'step'")
        return Activation(f"d({self.name})", _autograd_derivative(self.function), kinks=self.kinks)

    def times_power(self, power: int) -> "Activation":
        """The activation u ↦ u^power · σ(u) (used for in-plane moments of the NT model)."""
        if power == 0:
            return self
        if self.coefficients is not None:
            return polynomial((0.0,) * power + self.coefficients, name=f"u^{power}*{self.name}")
        if power == 1 and self.family is not None and self.family.times_u is not None:
            return ACTIVATIONS[self.family.times_u]
        base = self.function
        return Activation(f"u^{power}*{self.name}", lambda u: u**power * base(u), kinks=self.kinks)

    def _has_jump(self) -> bool:
        if self.components is not None:
            return any(ACTIVATIONS[c.base]._has_jump() for c in self.components)
        return self.family is not None and self.family.jumps

    def hermite_coefficients(self, degree: int, scale=1.0, bias=0.0, *,
                             normalized: bool = False) -> torch.Tensor:
        """λ_0, …, λ_degree of u ↦ σ(scale·u + bias), broadcast over ``scale`` and ``bias``.

        Args:
            degree: highest coefficient K.
            scale: s ≥ 0, a float or tensor (for a unit, ‖w‖ or √(wᵀCw)).
            bias: b, a float or tensor broadcastable with ``scale``.
            normalized: return μ_k = λ_k / √k! (orthonormal Hermite coefficients) instead.
        Returns:
            float64 tensor of shape (*broadcast(scale, bias).shape, degree + 1).
        """
        s, b = _as_pair(scale, bias)
        if torch.any(s < 0):
            raise ValueError(f"scale must be >= 0, got min {float(s.min())}")
        lam = _hermite(self, int(degree), s, b)
        if normalized:
            lam = lam / _sqrt_factorials(int(degree), lam)
        return lam


def _as_pair(scale, bias):
    s = torch.as_tensor(scale, dtype=torch.float64)
    b = torch.as_tensor(bias, dtype=s.dtype, device=s.device)
    return torch.broadcast_tensors(s, b)


def _sqrt_factorials(degree: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.arange(degree + 1, dtype=like.dtype, device=like.device)
    return torch.exp(0.5 * torch.lgamma(k + 1))


# ----------------------------------------------------------------------------- exact coefficients

@lru_cache(maxsize=64)
def _monomial_to_hermite(degree: int) -> np.ndarray:
    """T with G^m = Σ_k T[m, k] He_k(G), for m, k ≤ degree (cached; do not mutate)."""
    table = np.zeros((degree + 1, degree + 1))
    for m in range(degree + 1):
        unit = np.zeros(m + 1)
        unit[m] = 1.0
        herme = np.polynomial.hermite_e.poly2herme(unit)
        table[m, : herme.size] = herme
    return table


def _polynomial_hermite(coefficients, degree, s, b):
    p = len(coefficients) - 1
    # coefficient of G^m in Σ_j c_j (sG + b)^j
    powers = [torch.zeros_like(s) for _ in range(p + 1)]
    for j, c in enumerate(coefficients):
        if c == 0:
            continue
        for m in range(j + 1):
            powers[m] = powers[m] + c * math.comb(j, m) * s**m * b ** (j - m)
    monomial_coefs = torch.stack(powers, dim=-1)                      # (..., p+1)
    table = torch.as_tensor(_monomial_to_hermite(p), dtype=s.dtype, device=s.device)
    factorials = torch.as_tensor([math.factorial(k) for k in range(p + 1)], dtype=s.dtype,
                                 device=s.device)
    lam = (monomial_coefs @ table) * factorials                       # λ_k = k!·h_k
    if degree > p:
        return torch.nn.functional.pad(lam, (0, degree - p))
    return lam[..., : degree + 1]


_CHUNK = 512


def _quadrature_hermite(activation, degree, s, b):
    """λ_k by piecewise Gauss–Legendre on the standardized variable, cut at the kinks.

    Without kinks the nodes are the same for every unit, so the Hermite table is built once
    and the work is one (units × nodes) · (nodes × degree) product.
    """
    shape = s.shape
    s_flat, b_flat = s.reshape(-1), b.reshape(-1)
    order = 24 + degree
    if not activation.kinks:
        z, w = gaussian_nodes(None, order=order, dtype=s.dtype, device=s.device)
        table = hermite_polynomials(z, degree) * w[:, None]                # (M, K+1)
        values = activation.function(s_flat[:, None] * z + b_flat[:, None])
        return (values @ table).reshape(*shape, degree + 1)
    knots = torch.as_tensor(activation.kinks, dtype=s.dtype, device=s.device)
    out = []
    for start in range(0, s_flat.numel(), _CHUNK):
        ss, bb = s_flat[start:start + _CHUNK], b_flat[start:start + _CHUNK]
        safe = torch.where(ss > 0, ss, torch.ones_like(ss))
        z, w = gaussian_nodes((knots - bb[:, None]) / safe[:, None], order=order)
        values = activation.function(ss[:, None] * z + bb[:, None]) * w
        out.append(torch.einsum("nm,nmk->nk", values, hermite_polynomials(z, degree)))
    if not out:
        return torch.zeros((*shape, degree + 1), dtype=s.dtype, device=s.device)
    return torch.cat(out).reshape(*shape, degree + 1)


def _hermite(activation: Activation, degree: int, s, b) -> torch.Tensor:
    if activation.components is not None:
        signs = torch.tensor([(-1.0) ** k for k in range(degree + 1)], dtype=s.dtype,
                             device=s.device)
        total = 0.0
        for comp in activation.components:
            base = ACTIVATIONS[comp.base]
            if comp.flip:
                total = total + comp.coefficient * signs * _hermite(base, degree, s, -b)
            else:
                total = total + comp.coefficient * _hermite(base, degree, s, b)
        return total
    if activation.coefficients is not None:
        return _polynomial_hermite(activation.coefficients, degree, s, b)
    if activation.family is not None and activation.family.hermite is not None:
        return activation.family.hermite(degree, s, b)
    return _quadrature_hermite(activation, degree, s, b)


# ----------------------------------------------------------------------------- constructors

def _autograd_derivative(function: Function) -> Function:
    def derivative(u: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            v = u.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(function(v).sum(), v)
        return grad
    return derivative


def polynomial(coefficients, *, name: str | None = None) -> Activation:
    """σ(u) = Σ_j c_j u^j from its monomial coefficients (c_0, c_1, …)."""
    coefs = tuple(float(c) for c in coefficients)
    if not coefs:
        raise ValueError("coefficients must not be empty")

    def function(u: torch.Tensor) -> torch.Tensor:
        # Horner, without the ops that change nothing (× 1, + 0): u² is one product, which
        # the training step evaluates and differentiates at every step
        if len(coefs) == 1:
            return torch.full_like(u, coefs[0])
        out = u if coefs[-1] == 1.0 else coefs[-1] * u
        for position, c in enumerate(reversed(coefs[:-1])):
            out = out if c == 0.0 else out + c
            out = out * u if position < len(coefs) - 2 else out
        return out.clone() if out is u else out  # σ(u) = u: never alias the input

    return Activation(name or f"polynomial{coefs}", function, coefficients=coefs)


def monomial(power: int) -> Activation:
    """σ(u) = u^power."""
    if power < 0 or int(power) != power:
        raise ValueError(f"power must be a non-negative integer, got {power!r}")
    return polynomial([0.0] * int(power) + [1.0], name=f"monomial{int(power)}")


def two_sided(name: str, base: Activation, a: float, b: float, function: Function | None = None,
              *, derivative_name: str | None = None) -> Activation:
    """σ(u) = a·base(u) + b·base(−u) for a registered base (neural-tangents' ABRelu for relu).

    Every closed form of the base's family carries over by linearity (the engine expands the
    components, with base(−(u + b)) = base((−u) + (−b))): abs = (relu, 1, 1), leaky ReLU =
    (relu, 1, −α), sign = (step, 1, −1). ``function`` is an exact elementwise form of σ if known.
    """
    parts = tuple(Component(float(c), base.name, flip) for c, flip in ((a, False), (b, True))
                  if c != 0)
    if function is None:
        def function(u, parts=parts, base_function=base.function):
            return sum(p.coefficient * base_function(-u if p.flip else u) for p in parts)
    return Activation(name, function, derivative_name=derivative_name, kinks=base.kinks,
                      components=parts)


def _step(u):
    return (u > 0).to(u.dtype)


_RELU = Activation("relu", torch.relu, derivative_name="step", kinks=(0.0,), family=RELU)
_STEP = Activation("step", _step, kinks=(0.0,), family=STEP)

ACTIVATIONS: dict[str, Activation] = {
    "relu": _RELU,
    "step": _STEP,
    "abs": two_sided("abs", _RELU, 1.0, 1.0, torch.abs, derivative_name="sign"),
    "sign": two_sided("sign", _STEP, 1.0, -1.0, torch.sign),
    "linear": polynomial([0.0, 1.0], name="linear"),
    "quadratic": polynomial([0.0, 0.0, 1.0], name="quadratic"),
    "hermite2": polynomial([-1.0, 0.0, 1.0], name="hermite2"),
    "cubic": monomial(3),
    "quartic": monomial(4),
    "erf": Activation("erf", torch.special.erf,
                      derivative_function=lambda u: 2.0 / math.sqrt(math.pi) * torch.exp(-u * u),
                      family=ERF),
    "tanh": Activation("tanh", torch.tanh,
                       derivative_function=lambda u: 1.0 - torch.tanh(u) ** 2),
    "sigmoid": Activation("sigmoid", torch.sigmoid,
                          derivative_function=lambda u: torch.sigmoid(u) * (1 - torch.sigmoid(u))),
    "softplus": Activation("softplus", torch.nn.functional.softplus, derivative_name="sigmoid"),
}

_MONOMIAL = re.compile(r"monomial(\d+)$")


def get_activation(activation: str | Activation | Function) -> Activation:
    """Look up an activation by name, pass an :class:`Activation` through, or wrap a callable.

    A callable is assumed smooth (no kinks); its derivative comes from autograd and its Gaussian
    expectations from quadrature. Names: the keys of ``ACTIVATIONS`` and ``monomialK``.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        if activation in ACTIVATIONS:
            return ACTIVATIONS[activation]
        match = _MONOMIAL.match(activation)
        if match:
            return monomial(int(match.group(1)))
        known = ", ".join(sorted(ACTIVATIONS)) + ", monomialK"
        raise ValueError(f"unknown activation {activation!r}; known: {known}")
    if callable(activation):
        return Activation(getattr(activation, "__name__", "custom"), activation)
    raise TypeError(f"activation must be a name, an Activation or a callable, got {type(activation)}")
