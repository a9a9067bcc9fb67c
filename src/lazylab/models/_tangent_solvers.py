"""Preconditioners for the neural-tangent normal equations, at n = ∞ and on samples.

Notation (DESIGN.md): W (N × d) frozen, unknowns A (N × d); g = σ′ (the gate); z ~ N(0, I_d);
u_i = w_i·z; the NT operator (K A)_i = Σ_j K_ij a_j with K_ij = E[g(u_i) g(u_j) z zᵀ].

Structure of K [Gaussian integration by parts twice, E[F(z)(z zᵀ − I)] = E[∇²F(z)] for
F = g(u_i) g(u_j)]:

    K_ij = κ_ij I + ν_ij w_i w_iᵀ + μ_ij (w_i w_jᵀ + w_j w_iᵀ) + ν_ji w_j w_jᵀ,
    κ_ij = E[g(u_i) g(u_j)],  μ_ij = E[g′(u_i) g′(u_j)],  ν_ij = E[g″(u_i) g(u_j)]

(derivatives in the sense of distributions for g = step; :mod:`lazylab.gaussian.tangent` holds the
same operator in the form κ I + [w_i w_j] D [w_i w_j]ᵀ). Hence K = κ ⊗ I_d + R where every row of
R A lies in span(W) and R A = 0 whenever A Wᵀ = 0. K is symmetric, so it maps both
V = {A : rows in span W} and V⊥ = {A : A Wᵀ = 0} into themselves, and on V⊥ it *is* κ ⊗ I.
The preconditioner P = (κ ⊗ I + λ I)⁻¹ (one N × N Cholesky, λ the ridge) is therefore exact on
V⊥ (dimension N(d − rank W)), and CG only has to resolve P K on V. Examples: σ = u² gives g = 2u,
κ = 4WWᵀ, μ = 4, ν = 0, so for N = d and C = A W⁻¹ the preconditioned map is
C ↦ C + Cᵀ + tr(C WWᵀ)(WWᵀ)⁻¹: eigenvalues {0 (antisymmetric C), 2, one more}, and CG ends in
≤ 2 iterations. For ReLU, κ_ij = (π − θ_ij)/(2π) is the degree-0 arc-cosine kernel.

Second level (N ≥ d, isotropic inputs): at ρ_ij = 0, μ_ij = t_i t_j with t_i = E[g′(u_i)], so
the μ terms are T(A) = Ŵ((ŴᵀA)ᵀ + tr(ŴᵀA) I), Ŵ = diag(t) W, a map through d × d matrices;
(κ ⊗ I + T)⁻¹ follows by Woodbury with a d × d capacitance solved in closed form
(:class:`TransposeCorrection`). For ReLU at d = 60 it cuts CG from 40/49/58 to 29/34/44
iterations at N = d/2d/4d; for σ = u² it is exact but singular (antisymmetric C) and κ ⊗ I
already suffices.

Singular systems. If κ c = 0 then Σ_i c_i g(w_i·x) ≡ 0, so every A = c vᵀ predicts 0:
null(κ) ⊗ ℝ^d ⊂ null(K). Where κ is singular (polynomial σ with N beyond the dimension of its
derivative's span, e.g. σ = u² with N > d) P uses the pseudo-inverse κ⁺; its null space lies in
null(K), the right-hand side (a covariance with the target) lies in range(K), so PCG runs on the
consistent system restricted to range(κ) ⊗ ℝ^d and never picks up a component in null(κ) ⊗ ℝ^d.
Any solution of the consistent system has the same (exact) risk.

Samples: the same structure with the empirical κ̂ ⊗ Ĉ, κ̂_ij = (1/n)Σ g_i g_j ‖x‖² / tr Ĉ and
Ĉ = XᵀX/n (the Kronecker product whose block traces equal those of ΦᵀΦ/n), inverted with the
ridge by the two eigendecompositions: (κ̂ ⊗ Ĉ + λ I)⁻¹ = (V ⊗ U) diag(1/(k_i s_l + λ)) (V ⊗ U)ᵀ.
The statistics and the eigendecompositions do not depend on λ (:class:`SampleStatistics`): a
ridge path computes them once and only shifts the eigenvalues per λ.

Linear gates (g(u) = c·u, σ = c u²/2): Σ_i g(w_i·x)⟨a_i, x⟩ = c xᵀWᵀA x vanishes for every x
when WᵀA is antisymmetric, so {A = S W : S antisymmetric N × N} (dimension N(N − 1)/2 for
rank W = N ≤ d) lies in the null space of ΦᵀΦ on *every* sample. The right-hand side Φᵀr is
orthogonal to it, and so is the solution, but κ̂ ⊗ Ĉ does not preserve it: at small λ PCG spends
most iterations on eigenvalues ≈ λ/(k s) there (measured: 2369 → 505 iterations over an
11-value ridge grid at d = 60, N = 30, n = 2000). :class:`AntisymmetricDeflation` projects it out
(the preconditioner becomes Π M Π), which changes no iterate's residual certificate.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass

import torch

from lazylab.errors import DivergenceError
from lazylab.solvers.ridge import pseudo_inverse_cutoff

__all__ = ["SymmetricInverse", "KroneckerInverse", "TransposeCorrection", "AntisymmetricDeflation",
           "SampleStatistics", "sample_preconditioner", "online_sgd", "SGDResult"]


class SymmetricInverse:
    """x ↦ S⁺ x for a symmetric positive semi-definite S (m × m), factored once.

    Cholesky when every pivot exceeds the cut-off max(m·ε, 10⁻¹²)·max S_kk (then S⁺ = S⁻¹);
    otherwise the eigendecomposition with eigenvalues at or below
    :func:`lazylab.solvers.ridge.pseudo_inverse_cutoff` treated as zero.
    Attribute ``pseudo_inverse`` tells which.
    """

    def __init__(self, matrix: torch.Tensor):
        size = matrix.shape[0]
        factor, info = torch.linalg.cholesky_ex(matrix)
        floor = max(size * torch.finfo(matrix.dtype).eps, 1e-12) * float(
            torch.diagonal(matrix).abs().max())
        pivots = torch.diagonal(factor) ** 2
        self.pseudo_inverse = not (int(info) == 0 and bool(torch.all(pivots > floor)))
        if not self.pseudo_inverse:
            self.factor = factor
            return
        values, vectors = torch.linalg.eigh(matrix)
        keep = values > pseudo_inverse_cutoff(values)
        self.vectors, self.inverse_values = vectors[:, keep], 1.0 / values[keep]

    def __call__(self, rhs: torch.Tensor) -> torch.Tensor:
        """S⁺ rhs for rhs (m,) or (m, k)."""
        column = rhs.ndim == 1
        block = rhs[:, None] if column else rhs
        if self.pseudo_inverse:
            out = self.vectors @ (self.inverse_values[:, None] * (self.vectors.T @ block))
        else:
            out = torch.cholesky_solve(block, self.factor)
        return out[:, 0] if column else out


class KroneckerInverse:
    """A ↦ (L ⊗ R + λ I)⁺ A for symmetric PSD L (N × N), R (d × d), A (N, d), i.e. L A R + λ A.

    Both factors by eigendecomposition, L = V diag(k) Vᵀ, R = U diag(s) Uᵀ:
    the inverse is V [(Vᵀ A U) / (k_i s_l + λ)] Uᵀ, entries with k_i s_l + λ at or below the
    cut-off max(N·d·ε, 10⁻¹²)·max(k s + λ) set to zero (pseudo-inverse).
    :meth:`shifted` gives the inverse at another λ from the same eigenbases (a ridge path:
    O(N d) per λ instead of two eigendecompositions).
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor, shift: float = 0.0):
        k, self.left = torch.linalg.eigh(left)
        s, self.right = torch.linalg.eigh(right)
        self.product = k.clamp_min(0)[:, None] * s.clamp_min(0)[None, :]
        self.scale = self._scale(shift)

    def _scale(self, shift: float) -> torch.Tensor:
        denominator = self.product + shift
        floor = max(denominator.numel() * torch.finfo(denominator.dtype).eps, 1e-12) \
            * float(denominator.max())
        return torch.where(denominator > floor, 1.0 / denominator.clamp_min(floor),
                           torch.zeros_like(denominator))

    def shifted(self, shift: float) -> "KroneckerInverse":
        """(L ⊗ R + shift·I)⁺ sharing this one's eigenvectors (no refactorization)."""
        other = copy.copy(self)
        other.scale = self._scale(shift)
        return other

    def __call__(self, directions: torch.Tensor) -> torch.Tensor:
        inner = self.left.T @ directions @ self.right
        return self.left @ (inner * self.scale) @ self.right.T


class TransposeCorrection:
    """(M ⊗ I + T)⁻¹ by Woodbury, T(A) = Ŵ((ŴᵀA)ᵀ + tr(ŴᵀA) I): the constant part of the μ term.

    At ρ_ij = 0, μ_ij = E[g′(u_i)] E[g′(u_j)] = t_i t_j, so the μ terms of K are T with
    Ŵ = diag(t) W (module docstring); for σ = u² this is exact. T = U L Uᵀ with U Y = Ŵ Y
    (Y d × d) and L Y = Yᵀ + tr(Y) I, L⁻¹ Z = Zᵀ − tr(Z) I/(1 + d). Woodbury:
        (M ⊗ I + U L Uᵀ)⁻¹ = P − P U C⁻¹ Uᵀ P,  P = M⁻¹ ⊗ I,  C Y = L⁻¹ Y + Ĥ Y,  Ĥ = Ŵᵀ M⁻¹ Ŵ.
    In the eigenbasis Ĥ = V diag(h) Vᵀ, C decouples into 2 × 2 blocks [[h_k, 1], [1, h_l]] on
    (Y_kl, Y_lk) plus a rank-one trace term, solved in closed form (O(d³) per application).
    M ⊗ I + T is positive definite exactly when every h_k h_l < 1 (one negative eigenvalue per
    block, as L⁻¹ has): ``usable`` says whether max h < 1 − 10⁻⁶; otherwise do not use it.

    Args:
        inverse: a :class:`SymmetricInverse` of M (N × N, Cholesky path). scaled_weights: Ŵ (N, d).
    """

    def __init__(self, inverse: SymmetricInverse, scaled_weights: torch.Tensor):
        self.inverse, self.scaled = inverse, scaled_weights
        self.solved = inverse(scaled_weights)
        h, self.vectors = torch.linalg.eigh(scaled_weights.T @ self.solved)
        self.usable = bool(h.max() < 1 - 1e-6) and not inverse.pseudo_inverse
        self.h, self.pair = h, h[:, None] * h[None, :] - 1
        self.diagonal = 1 / (1 + h)
        self.trace_scale = 1 / (1 + h.shape[0] - self.diagonal.sum())

    def _capacitance_solve(self, rhs: torch.Tensor) -> torch.Tensor:
        f = self.vectors.T @ rhs @ self.vectors
        y = (self.h[None, :] * f - f.T) / self.pair
        y = y + torch.diag(torch.trace(y) * self.trace_scale * self.diagonal)
        return self.vectors @ y @ self.vectors.T

    def __call__(self, directions: torch.Tensor) -> torch.Tensor:
        z = self.inverse(directions)
        return z - self.solved @ self._capacitance_solve(self.scaled.T @ z)


class AntisymmetricDeflation:
    """A ↦ A − S W with S = argmin over antisymmetric S of ‖A − S W‖_F: the orthogonal
    projection onto the complement of {S W : S antisymmetric} (module docstring).

    Normal equations S M + M S = A Wᵀ − W Aᵀ with M = W Wᵀ = Q diag(m) Qᵀ, solved in the
    eigenbasis: S = Q [(Qᵀ (A Wᵀ − W Aᵀ) Q)_ij / (m_i + m_j)] Qᵀ. O(N² d) per application.

    Args:
        weights: W (N, d) with rank N (:meth:`applicable` says whether W qualifies).
    """

    def __init__(self, weights: torch.Tensor):
        self.weights = weights
        m, self.vectors = torch.linalg.eigh(weights @ weights.T)
        self.inverse_sums = 1.0 / (m[:, None] + m[None, :])

    @staticmethod
    def applicable(gate, weights: torch.Tensor) -> bool:
        """True when g is linear (g(t) = g(1)·t at t ∈ {−3, …, 3}, g(1) ≠ 0) and W (N × d) has
        N ≤ d and WWᵀ well conditioned (smallest eigenvalue > 10⁻⁸ × largest)."""
        t = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64)
        slope = float(gate.function(torch.ones(1, dtype=torch.float64))[0])
        if slope == 0.0 or not torch.allclose(gate.function(t), slope * t, rtol=1e-12, atol=0):
            return False
        if weights.shape[0] > weights.shape[1]:
            return False
        m = torch.linalg.eigvalsh(weights @ weights.T)
        return bool(m[0] > 1e-8 * m[-1])

    def __call__(self, directions: torch.Tensor) -> torch.Tensor:
        q, w = self.vectors, self.weights
        crossed = directions @ w.T
        rotated = q.T @ (crossed - crossed.T) @ q
        return directions - q @ (rotated * self.inverse_sums) @ q.T @ w


class SampleStatistics:
    """The statistics of the sample preconditioner, gathered in one pass over x (module docstring).

    κ̂ (N × N) and Ĉ (d × d) are eigendecomposed once (:class:`KroneckerInverse`); with a head,
    its centered Gram Hᵀ H/n − m mᵀ (N × N). :meth:`at` gives the preconditioner at any ridge λ
    without touching x again: the Kronecker part by shifting its eigenvalues, the head block by
    one N × N Cholesky of the Gram + λI (N³/3 flops).

    Args:
        features: a :class:`lazylab.models.neural_tangent.GatedFeatures` (gate g, optional head σ).
        x: (n, d) samples. cache: the features' per-block gates, or None.
    Cost: O(n(d² + N²)) flops (+ N² with a head) and two eigendecompositions, O(N³ + d³).
    """

    def __init__(self, features, x: torch.Tensor, cache=None):
        n, width, dim = x.shape[0], features.width, features.dim
        options = dict(dtype=x.dtype, device=x.device)
        weighted = torch.zeros(width, width, **options)
        second = torch.zeros(dim, dim, **options)
        head_gram = torch.zeros(width, width, **options)
        head_sum = torch.zeros(width, **options)
        for block, gates, heads in features.blocks(x, cache):
            weighted += (gates * (block * block).sum(1, keepdim=True)).T @ gates
            second += block.T @ block
            if heads is not None:
                head_gram += heads.T @ heads
                head_sum += heads.sum(0)
        covariance = second / n
        self.features = features
        self.tangent = KroneckerInverse(weighted / n / torch.trace(covariance), covariance)
        self.head_gram = None
        if features.head is not None:
            mean = head_sum / n
            self.head_gram = head_gram / n - torch.outer(mean, mean)
        self.deflation = (AntisymmetricDeflation(features.weights) if
                          AntisymmetricDeflation.applicable(features.gate, features.weights)
                          else None)

    def at(self, ridge: float):
        """vector ↦ M vector on packed (A, h) vectors: (κ̂ ⊗ Ĉ + λI)⁺ on A (as Π(·)Π with the
        :class:`AntisymmetricDeflation` Π for a linear gate), the head block on h."""
        tangent, features, deflate = self.tangent.shifted(ridge), self.features, self.deflation
        head = None
        if self.head_gram is not None:
            head = SymmetricInverse(self.head_gram + ridge * torch.eye(
                self.head_gram.shape[0], dtype=self.head_gram.dtype,
                device=self.head_gram.device))

        def apply(vector):
            directions, h = features.unpack(vector)
            directions = tangent(directions if deflate is None else deflate(directions))
            return features.pack(directions if deflate is None else deflate(directions),
                                 None if h is None else head(h))
        return apply


def sample_preconditioner(features, x: torch.Tensor, ridge: float, cache=None):
    """(κ̂ ⊗ Ĉ + λ I)⁻¹ on the directions, the exact head block inverse on h (module docstring).

    Args:
        features: a :class:`lazylab.models.neural_tangent.GatedFeatures` (gate g, optional head σ).
        x: (n, d) samples. ridge: λ. cache: the features' per-block gates, or None.
    Returns:
        vector ↦ M vector on packed (A, h) vectors. One pass over x: O(n(d² + N²)) flops
        (:class:`SampleStatistics`; a ridge path keeps those and calls ``at`` per λ).
    """
    return SampleStatistics(features, x, cache).at(ridge)


@dataclass(frozen=True)
class SGDResult:
    """Outcome of :func:`online_sgd`: packed parameters v, offset c, and how the run ended.

    ``calibration_samples`` were drawn once for the step size (not trained on); ``final_loss``
    is the mean of (y − f)² over the last window's fresh batches.
    """

    vector: torch.Tensor
    offset: float
    steps: int
    calibration_samples: int
    converged: bool
    final_loss: float


def _step_size(features, draw, learning_rate: float, batch_size: int) -> tuple[float, int]:
    """η = learning_rate / max(tr/B, λ̂_max + 1) from a calibration draw of m = max(B, 1000) samples.

    tr = E‖Φ(x)‖² + 1 (the offset's feature) and λ̂_max, the top eigenvalue of ΦᵀΦ/m by 30 power
    iterations, bound the second moment of the features [Φ, 1] (Weyl: λ_max ≤ λ̂_max + 1).
    With η·λ_max < 2 the mean dynamics are stable; with η·tr/B ≤ learning_rate the gradient
    noise adds ≈ learning_rate/2 × the risk at stationarity (normalized LMS misadjustment).
    Returns (η, tr, m).
    """
    size = max(batch_size, 1000)
    x, _ = draw(size)
    _, gates, heads = features.batch_value(x, torch.zeros(features.size, dtype=x.dtype,
                                                          device=x.device))
    trace = features.squared_norm(x, gates, heads) + 1.0
    vector = torch.ones(features.size, dtype=x.dtype, device=x.device)
    top = 0.0
    for _ in range(30):
        vector = vector / torch.linalg.vector_norm(vector)
        value, _, _ = features.batch_value(x, vector)
        vector = features.batch_transpose(x, value, gates, heads) / size
        top = float(torch.linalg.vector_norm(vector))
    return learning_rate / max(trace / batch_size, top + 1.0), trace, size


def _window_steps(batch_size: int, parameters: int, step_size: float, trace: float) -> int:
    """Steps per loss window: ≥ 100 steps, ≥ 10⁴ samples (noise of the mean ≲ 1.5 %) and ≥ twice
    the bulk relaxation time P/(η·tr) of SGD on P parameters (bulk eigenvalues ≈ tr/P)."""
    return max(100, -(-10_000 // batch_size), math.ceil(2 * parameters / (step_size * trace)))


def online_sgd(features, draw, *, learning_rate: float, batch_size: int, steps: int, tol: float,
               ridge: float = 0.0, callback=None, checkpoints=(), on_checkpoint=None
               ) -> SGDResult:
    """Plain SGD on the NT model f(x) = c + Φ(x)·v, linear in its parameters (v, c).

    Each step draws a fresh batch (x, y) = ``draw(batch_size)`` and takes
        v ← v − η (Φᵀ(f − y)/B + λ v),   c ← c − η mean(f − y),
    the gradient of ½·mean(y − f)² + ½λ‖v‖² (the regime's (1/n)‖y − f‖² + λ‖v‖² up to the
    factor 2, so the fixed point is the ridge solution of the same λ). Φv and Φᵀr are the blocked
    products of ``features`` (one XWᵀ, one XAᵀ, one (G∘r)ᵀX per step): no n × Nd Jacobian; the
    last GEMM accumulates into v in place (``features.batch_step``; a ridge adds one pass,
    v ← (1 − ηλ)v, first).
    Step size η from ``learning_rate`` by :func:`_step_size` (independent of width and dimension).

    Stop: the loss on each fresh batch before its step is an unbiased estimate of the current
    risk; its mean over a window (:func:`_window_steps`) is compared with the previous window's,
    and the run stops as converged when |L_k − L_{k−1}| ≤ tol·L_k. ``steps`` is the budget.
    The batch losses stay tensors until a window ends (or ``_DEFERRED_STEPS`` steps pass, or the
    budget ends); then they are read together, checked, and passed to ``callback(step, loss)``
    in order. Raises DivergenceError, naming the step, when a batch loss is not finite or
    exceeds 10⁸ × the first window's mean. ``on_checkpoint(t, v, c)`` is called right after
    step t for every t in ``checkpoints`` the run reaches (v is updated in place: copy it).
    """
    step_size, trace, calibration = _step_size(features, draw, learning_rate, batch_size)
    device = features.weights.device  # the batches' too (``draw`` puts them there)
    vector = torch.zeros(features.size, dtype=torch.float64, device=device)
    offset = torch.zeros((), dtype=torch.float64, device=device)
    window = _window_steps(batch_size, features.size + 1, step_size, trace)
    losses, pending, previous, reference = [], [], None, None
    marks = deque(checkpoints)
    for step in range(1, steps + 1):
        x, y = draw(batch_size)
        value, gates, heads = features.batch_value(x, vector)
        residual = value + offset - y
        pending.append(residual @ residual)
        if ridge:
            vector.mul_(1.0 - step_size * ridge)
        features.batch_step(x, residual, gates, heads, vector, -step_size / batch_size)
        offset = offset - step_size * residual.mean()
        if marks and step == marks[0]:
            on_checkpoint(marks.popleft(), vector, offset)
        if step % window and step % _DEFERRED_STEPS and step < steps:
            continue
        for done, total in enumerate(torch.stack(pending).tolist(), step + 1 - len(pending)):
            loss = total / batch_size
            _check_loss(loss, reference, done)
            losses.append(loss)
            if callback is not None:
                callback(done, loss)
        pending = []
        if len(losses) == window:
            current, losses = sum(losses) / window, []
            reference = current if reference is None else reference
            if previous is not None and abs(current - previous) <= tol * current:
                return SGDResult(vector, float(offset), step, calibration, True, current)
            previous = current
    final = sum(losses) / len(losses) if losses else previous
    return SGDResult(vector, float(offset), steps, calibration, False, final)


_DEFERRED_STEPS = 1000
"""Most batch losses :func:`online_sgd` keeps as tensors before reading them."""


def _check_loss(loss: float, reference: float | None, step: int) -> None:
    if not math.isfinite(loss) or (reference is not None and loss > 1e8 * reference):
        raise DivergenceError(f"NT online SGD diverged at step {step}: batch loss {loss!r}; "
                              "lower learning_rate (in units of 1/E‖Φ(x)‖², stable below 2)",
                              step=step)
