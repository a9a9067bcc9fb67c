"""Feature-learning diagnostics of a fitted :class:`lazylab.models.network.Network`.

Notation as in :mod:`lazylab.models.network`: effective first layer W (N, d) with rows w_i,
head a (N,), biases b, initial values W₀, a₀, b₀; the first-layer Gram Q = Wᵀdiag(a²)W.
Every diagnostic is a number (``Predictor.diagnostics``), computed once at the end of ``fit``
(the learning monitor every ``track_every`` steps).

* ``weight_change`` ‖W − W₀‖_F/‖W₀‖_F, ``head_change`` ‖a − a₀‖/‖a₀‖ (a₀ ≠ 0).
* ``kernel_change``: ‖K_T − K₀‖_F/‖K₀‖_F for the tangent-kernel Gram of the trained per-unit
  parameters (raw U, v, b, with the parameterization's gradient multiplier g) on a fixed probe
  set of ``PROBE_POINTS`` inputs x ~ N(0, I_d) from the seed ``PROBE_SEED`` (independent of the
  fit's stream):
  K(x, x') = g Σ_i [s_in² (x·x') + 1_b] a_i² σ′(z_i)σ′(z_i′) + g s_out² Σ_i σ(z_i)σ(z_i′),
  z_i = w_i·x + b_i (each term only when its layer is trained; the offset's constant
  contribution is left out). For the lazy model f_α = α(f_θ − f_θ₀) the kernel is α² times
  this one, so the ratio is the same. Skipped for an activation whose σ′ is not a function.
* ``kernel_change_population`` (σ = u², no biases, first layer trained, head fixed): the same
  ratio in L²(N(0, I_d) ⊗ N(0, I_d)), exactly [D]. Then K(x, x') = 4g s_in² (x·x') xᵀQx', and
  with x, x' independent, E_{x'}[(x·x')²(xᵀΔx')²] = ‖x‖²‖Δx‖² + 2(xᵀΔx)² (Isserlis), whose mean
  over x is (d + 6)‖Δ‖_F² + 2(Tr Δ)² (E‖x‖²xᵀAx = (d + 2)Tr A, E(xᵀΔx)² = 2‖Δ‖_F² + (Tr Δ)²):

      ‖K_T − K₀‖/‖K₀‖ = √[((d + 6)‖Q_T − Q₀‖_F² + 2 Tr(Q_T − Q₀)²) / ((d + 6)‖Q₀‖_F² + 2 (Tr Q₀)²)].

* ``alignment`` (a quadratic target y = xᵀBx + b₀, :class:`lazylab.tasks.Quadratic`): the
  fraction of ‖W‖_F² in the span of B's top r = min(N, r₊) eigenvectors (r₊: the eigenvalues
  > ``RANK_TOLERANCE`` · max |λ|), A = Tr(P WᵀW)/Tr(WᵀW) = ‖W V_r‖_F²/‖W‖_F², P = V_r V_rᵀ.
  At a random isotropic initialization E Tr(P W₀ᵀW₀)/E Tr(W₀ᵀW₀) = r/d; when training reaches
  Theorem 3's optimum of the plain network (WᵀW = B_r, rows in B's top eigenspace) A = 1;
  ``alignment_initial`` is A at W₀.
* ``learned_step_k`` (``track_every`` set; σ = u², no biases, a quadratic target): the step
  at which v_kᵀFv_k first reaches λ_k/2, for B's top K = min(N, r₊, ``TRACKED_DIRECTIONS``)
  eigenpairs (λ_k, v_k) in decreasing order, where F = Σ_i a_i w_i w_iᵀ over the predictor's
  units is the matrix of the learned function (F = α(WᵀW − W₀ᵀW₀) for the lazy model with the
  head at ones). Observed every ``track_every`` steps and interpolated between the two
  observations around the crossing (linearly in log m while m > 0, the growth being
  exponential there); absent when the direction is never learned. Theory:
  :func:`lazylab.theory.incremental_learning_times`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lazylab.tasks.quadratic import Quadratic

__all__ = ["PROBE_POINTS", "PROBE_SEED", "RANK_TOLERANCE", "TRACKED_DIRECTIONS",
           "LearningMonitor", "learning_monitor", "parameter_diagnostics", "target_directions",
           "tangent_gram", "quadratic_kernel_change"]

PROBE_POINTS = 256
PROBE_SEED = 20_190_613
RANK_TOLERANCE = 1e-10
TRACKED_DIRECTIONS = 8


def target_directions(source) -> tuple[torch.Tensor, torch.Tensor] | None:
    """B's positive eigenpairs (λ decreasing, shape (r₊,); V (d, r₊)) for a quadratic task,
    else None."""
    if not isinstance(source, Quadratic):
        return None
    values, vectors = torch.linalg.eigh(source.matrix.to(torch.float64))
    values, vectors = values.flip(0), vectors.flip(1)
    keep = values > RANK_TOLERANCE * float(values.abs().max())
    return values[keep], vectors[:, keep]


def _alignment(weights: torch.Tensor, basis: torch.Tensor) -> float:
    """‖W V‖_F²/‖W‖_F² (module docstring)."""
    weights = weights.detach().to("cpu", torch.float64)
    return float(torch.sum((weights @ basis) ** 2) / torch.sum(weights ** 2))


def tangent_gram(activation, weights, head, biases, x, *, scales, layers) -> torch.Tensor:
    """Tangent-kernel Gram (P, P) of the trained per-unit parameters at (W, a, b) on x (P, d)
    (module docstring); ``layers`` ⊆ {"u", "v", "b"}, ``scales`` the parameterization row."""
    z = x @ weights.T if biases is None else x @ weights.T + biases
    gram = torch.zeros(x.shape[0], x.shape[0], dtype=x.dtype, device=x.device)
    if "v" in layers:
        values = activation.function(z)
        gram += scales.output ** 2 * (values @ values.T)
    bias_trained = "b" in layers and biases is not None
    if "u" in layers or bias_trained:
        slopes = activation.derivative().function(z) * head
        factor = scales.input ** 2 * (x @ x.T) if "u" in layers else torch.zeros_like(gram)
        gram += (factor + float(bias_trained)) * (slopes @ slopes.T)
    return scales.gradient * gram


def quadratic_kernel_change(initial: torch.Tensor, final: torch.Tensor) -> float:
    """Exact L² relative change of K(x, x') ∝ (x·x') xᵀQx' from Q₀ = ``initial`` to Q_T =
    ``final`` (both (d, d)), x, x' ~ N(0, I_d) independent (module docstring formula)."""
    dim = initial.shape[0]

    def energy(q):
        return (dim + 6) * float(torch.sum(q * q)) + 2.0 * float(torch.trace(q)) ** 2

    return math.sqrt(energy(final - initial) / energy(initial))


def _probe(dim: int, like: torch.Tensor) -> torch.Tensor:
    points = np.random.default_rng(PROBE_SEED).standard_normal((PROBE_POINTS, dim))
    return torch.from_numpy(points).to(device=like.device, dtype=like.dtype)


def _kernel_changes(activation, now, then, scales, layers) -> dict[str, float]:
    """``kernel_change`` (probe set) and, for σ = u² trained in its first layer only with no
    biases, ``kernel_change_population``; ``now``/``then`` are effective (w, a, b)."""
    out = {}
    try:
        x = _probe(now[0].shape[1], now[0])
        grams = [tangent_gram(activation, w, a, b, x, scales=scales, layers=layers)
                 for w, a, b, *_ in (now, then)]
        out["kernel_change"] = float(torch.linalg.norm(grams[0] - grams[1])
                                     / torch.linalg.norm(grams[1]))
    except ValueError:      # σ′ contains a Dirac mass: no tangent kernel as a function
        pass
    if getattr(activation, "name", None) == "quadratic" and set(layers) & {"u", "v"} == {"u"} \
            and now[2] is None:
        q_now, q_then = (w.T @ (a[:, None] ** 2 * w) for w, a, *_ in (now, then))
        out["kernel_change_population"] = quadratic_kernel_change(q_then.double().cpu(),
                                                                  q_now.double().cpu())
    return out


def parameter_diagnostics(activation, now, then, source, *, scales, layers) -> dict[str, float]:
    """Weight, head and kernel changes and the target alignment (module docstring).

    Args:
        activation: σ (an Activation). now, then: effective (W, a, b, c) at the end and at
            initialization. source: the task or Dataset fitted. scales: the parameterization
            row (:class:`~lazylab.models._network_training.Scales`). layers: trained raw
            per-unit parameters ("u", "v", "b").
    """
    (w, a, *_), (w0, a0, *_) = now, then
    with torch.no_grad():
        out = {"weight_change": float(torch.linalg.norm(w - w0) / torch.linalg.norm(w0))}
        if float(torch.linalg.norm(a0)) > 0:
            out["head_change"] = float(torch.linalg.norm(a - a0) / torch.linalg.norm(a0))
        out.update(_kernel_changes(activation, now, then, scales, layers))
        directions = target_directions(source)
        if directions is not None:
            basis = directions[1][:, :min(w.shape[0], directions[1].shape[1])]
            out["alignment"], out["alignment_initial"] = _alignment(w, basis), _alignment(w0,
                                                                                          basis)
    return out


class LearningMonitor:
    """Records the step at which each tracked eigendirection of B is learned (module docstring).

    Args:
        eigenvalues: λ_k, shape (K,), decreasing. vectors: v_k as columns, shape (d, K).
    """

    def __init__(self, eigenvalues: torch.Tensor, vectors: torch.Tensor):
        self.half = 0.5 * eigenvalues.to(torch.float64)
        self.vectors = vectors.to(torch.float64)
        self.learned = [math.nan] * int(eigenvalues.shape[0])
        self.previous: tuple[int, np.ndarray] | None = None

    def observe(self, step: int, weights: torch.Tensor, head: torch.Tensor) -> None:
        """Record m_k = v_kᵀFv_k = Σ_i a_i (w_i·v_k)² at ``step`` (F of the predictor's units)."""
        with torch.no_grad():
            projected = weights.detach().to("cpu", torch.float64) @ self.vectors
            values = (head.detach().to("cpu", torch.float64)[:, None] * projected ** 2).sum(0)
        values, half = values.numpy(), self.half.numpy()
        for k in np.nonzero((values >= half) & np.isnan(self.learned))[0]:
            self.learned[k] = self._crossing(step, float(values[k]), float(half[k]), k)
        self.previous = (step, values)

    def _crossing(self, step: int, value: float, half: float, k: int) -> float:
        if self.previous is None:
            return float(step)
        before, old = self.previous[0], float(self.previous[1][k])
        if old > 0:
            old, value, half = math.log(old), math.log(value), math.log(half)
        fraction = (half - old) / (value - old) if value > old else 1.0
        return before + fraction * (step - before)

    def diagnostics(self) -> dict[str, float]:
        """``learned_step_k`` (k = 1…K, λ decreasing); NaN (dropped later) if never learned."""
        return {f"learned_step_{k + 1}": value for k, value in enumerate(self.learned)}


def learning_monitor(net, source) -> LearningMonitor | None:
    """The monitor for ``net`` on ``source``: None unless ``net.track_every`` is set, σ = u²
    without biases and the target is quadratic with a positive eigenvalue."""
    if net.track_every is None or net.activation != "quadratic" or net.biases:
        return None
    directions = target_directions(source)
    if directions is None or directions[0].numel() == 0:
        return None
    count = min(net.width, int(directions[0].numel()), TRACKED_DIRECTIONS)
    return LearningMonitor(directions[0][:count], directions[1][:, :count])
