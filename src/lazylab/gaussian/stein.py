"""Expectations involving derivatives of activations, Dirac masses included (for Stein's lemma).

Notation: (u, v) centered bivariate Gaussian, s₁² = Var u, s₂² = Var v, c = Cov(u, v),
ρ = c/(s₁s₂); φ is the standard normal density; λ_k(τ; s, b) are Hermite coefficients.

The tangent moments of the tasks use Stein's lemma, E[h(x) x] = E[∇h(x)], which needs σ′ and σ″.
For kinked activations these are not functions: relu″ = δ, step′ = δ, abs″ = 2δ, sign′ = 2δ.
An activation's derivative is therefore split as f′ = (function part) + Σ_j a_j δ(· − k_j)
(:func:`derivative_parts`), and a Dirac term is integrated by conditioning:

    E[δ(u + b₁ − k) τ(v + b₂)] = p_u(u₀) · E[τ(v + b₂) | u = u₀],   u₀ = k − b₁,
                               = φ(u₀/s₁)/s₁ · λ_0(τ; √(s₂² − c²/s₁²), b₂ + c·u₀/s₁²),

since v | u = u₀ ~ N(c·u₀/s₁², s₂² − c²/s₁²) [D; tested by Monte Carlo with a narrow Gaussian
standing in for δ in tests/tasks]. With b₁ = k = 0 and τ(v) = relu target this is the
(1/(√(2π)s₁))·λ_0(τ; s₂√(1 − ρ²), b₂) of the brief.
"""

from __future__ import annotations

import torch

from lazylab.activations import ACTIVATIONS, Activation, Component, get_activation
from lazylab.gaussian.dual import pair_expectation
from lazylab.quadrature import normal_pdf

__all__ = ["DerivativeParts", "derivative_parts", "dirac_pair", "parts_pair",
           "has_function_derivative"]


class DerivativeParts(tuple):
    """(function part: Activation | None, diracs: tuple[(weight, location), ...])."""

    @property
    def function(self) -> Activation | None:
        return self[0]

    @property
    def diracs(self) -> tuple[tuple[float, float], ...]:
        return self[1]


def _jumps(activation: Activation) -> bool:
    return activation.family is not None and activation.family.jumps


def _is_step_like(activation: Activation) -> bool:
    """σ′ is Dirac masses only: a jumping family, or a composite of jumping bases."""
    if _jumps(activation):
        return True
    return activation.components is not None and all(
        _jumps(ACTIVATIONS[c.base]) for c in activation.components)


def has_function_derivative(activation) -> bool:
    """False for step-like activations (step, sign), whose derivative is a Dirac mass."""
    return not _is_step_like(get_activation(activation))


def derivative_parts(activation) -> DerivativeParts:
    """Split σ′ into a function and Dirac masses: σ′ = f + Σ a_j δ(· − k_j).

    * a jumping family (step): σ′ = its record's Dirac parts (``Family.diracs``), e.g. step′ = δ;
      composites of jumping bases (sign = step(u) − step(−u)): d/du[c·step(±u)] = ±c·δ(u);
    * composites of other bases: d/du[c·g(−u)] = −c·g′(−u), a composite of the derivatives
      (which must be registered by name, e.g. relu → step);
    * everything else: :meth:`Activation.derivative` (closed form, polynomial or autograd).
    """
    activation = get_activation(activation)
    if _jumps(activation):
        return DerivativeParts((None, activation.family.diracs))
    if activation.components is not None:
        if _is_step_like(activation):
            return DerivativeParts((None, _composite_diracs(activation.components)))
        if activation.derivative_name is not None:
            return DerivativeParts((activation.derivative(), ()))
        parts = []
        for c in activation.components:
            base = ACTIVATIONS[c.base]
            if base.derivative_name is None:
                raise ValueError(f"activation {activation.name!r}: component {c.base!r} has no "
                                 "registered derivative")
            parts.append(Component(-c.coefficient if c.flip else c.coefficient,
                                   base.derivative_name, c.flip))
        def function(u, parts=tuple(parts)):
            return sum(p.coefficient * ACTIVATIONS[p.base].function(-u if p.flip else u)
                       for p in parts)
        return DerivativeParts((Activation(f"d({activation.name})", function,
                                           kinks=activation.kinks, components=tuple(parts)), ()))
    return DerivativeParts((activation.derivative(), ()))


def _composite_diracs(components) -> tuple[tuple[float, float], ...]:
    """Dirac parts of Σ c·g(±u): d/du[c·g(−u)] = −c·g′(−u), and δ(−u − k) = δ(u + k)."""
    weights: dict[float, float] = {}
    for c in components:
        for weight, location in ACTIVATIONS[c.base].family.diracs:
            at = -location if c.flip else location
            part = (-c.coefficient if c.flip else c.coefficient) * weight
            weights[at] = part if at not in weights else weights[at] + part
    return tuple((float(w), at) for at, w in weights.items())


def dirac_pair(tau, var1, var2, cov, bias1=0.0, bias2=0.0, *, location=0.0) -> torch.Tensor:
    """E[δ(u + b₁ − k) τ(v + b₂)] = φ(u₀/s₁)/s₁ · λ_0(τ; √(s₂² − c²/s₁²), b₂ + c·u₀/s₁²).

    Arguments broadcast elementwise as in :func:`lazylab.gaussian.pair_expectation`;
    var1 must be positive (a Dirac mass of a degenerate unit has no density).
    """
    tau = get_activation(tau)
    var1, var2, cov = (torch.as_tensor(t, dtype=torch.float64) for t in (var1, var2, cov))
    b1 = torch.as_tensor(0.0 if bias1 is None else bias1, dtype=torch.float64)
    b2 = torch.as_tensor(0.0 if bias2 is None else bias2, dtype=torch.float64)
    if torch.any(var1 <= 0):
        raise ValueError("dirac_pair: var1 must be positive (the Dirac unit needs a density)")
    u0 = location - b1
    density = normal_pdf(u0 / torch.sqrt(var1)) / torch.sqrt(var1)
    conditional_var = (var2 - cov * cov / var1).clamp_min(0.0)
    conditional_mean = b2 + cov * u0 / var1
    scale, mean = torch.broadcast_tensors(torch.sqrt(conditional_var), conditional_mean)
    return density * tau.hermite_coefficients(0, scale, mean)[..., 0]


def parts_pair(first: DerivativeParts | Activation, second: DerivativeParts | Activation,
               var1, var2, cov, bias1=None, bias2=None) -> torch.Tensor:
    """E[f(u + b₁) g(v + b₂)] where f, g are activations or :class:`DerivativeParts`."""
    first = _as_parts(first)
    second = _as_parts(second)
    if first.diracs and second.diracs:
        raise ValueError("the product of two Dirac masses has no expectation as a function")
    total = 0.0
    if first.function is not None and second.function is not None:
        total = total + pair_expectation(first.function, second.function, var1, var2, cov,
                                         bias1, bias2)
    for weight, location in first.diracs:
        total = total + weight * dirac_pair(second.function, var1, var2, cov, bias1, bias2,
                                            location=location)
    for weight, location in second.diracs:
        total = total + weight * dirac_pair(first.function, var2, var1, cov, bias2, bias1,
                                            location=location)
    return torch.as_tensor(total, dtype=torch.float64)


def _as_parts(value) -> DerivativeParts:
    if isinstance(value, DerivativeParts):
        return value
    return DerivativeParts((get_activation(value), ()))
