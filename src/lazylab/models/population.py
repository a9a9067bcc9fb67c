"""Exact n = ∞ fits of a fixed first layer: random features and neural tangent.

Notation: φ_i(x) = σ(w_i·x + b_i); Σ = Cov(φ) (N × N), r = Cov(φ, y) (N); for the NT model the
unknowns are A (N × d) and, with a trained head, h (N). The offset c is eliminated exactly:
for any other parameters its optimum is c = E y − E[rest], which turns every objective into a
variance, min Var(y − g) + ridge‖params‖².

* RF (Ghorbani et al. 2019, eq. 2 and 4; THEORY.md §1.3): (Σ + ridge I) a = r, c = E y − aᵀE φ.
  Σ from one fused float64 pass over the lower triangle, in one N × N buffer; solved, for
  N ≥ :data:`STRUCTURED_MIN_WIDTH`, by conjugate gradient on that triangle alone, preconditioned
  with Σ's degree ≤ 1 Hermite part, the constant of its degree-2 part and its diagonal
  (:mod:`lazylab.solvers.structured`), else (or when that does not certify 10⁻¹²) by a float32
  Cholesky factor of the mirrored matrix refined in float64 to float64 accuracy, else by
  :func:`lazylab.solvers.ridge.solve_symmetric`: float64 Cholesky, falling back to an
  eigendecomposition pseudo-inverse (cut-off max(N·ε, 10⁻¹²)·max|λ|) when Σ is singular, e.g.
  σ = u² − 1 with N > d(d + 1)/2.
* NT (eq. 3): the same normal equations with the operator of
  :mod:`lazylab.gaussian.tangent`, solved matrix-free by preconditioned conjugate gradient
  preconditioned by (κ ⊗ I + ridge)⁻¹ with the full N × N matrix κ_ij = E[σ′(u_i)σ′(u_j)]
  (one Cholesky; exact on directions orthogonal to span(W), pseudo-inverse when κ is singular;
  :mod:`lazylab.models._tangent_solvers` derives it).
The reported risk is Var y − 2 xᵀr + xᵀ(Op)x for the solution x (exact for any x, so an
inexact CG solve only ever over-estimates the optimal risk).
* NT with σ = c₀ + c₂u², ridge 0, no head, W of rank d and diagonal input covariances: the
  best quadratic form instead, in O(d³) (:mod:`lazylab.models._tangent_quadratic`).
"""

from __future__ import annotations

import torch

from lazylab import _checks as checks

from lazylab.activations import get_activation
from lazylab.activations.families import frozen
from lazylab.gaussian import dual_matrix, feature_input_moment, feature_mean, unit_scales
from lazylab.gaussian.dual import lower_dual_matrix, symmetric_dual_matrix
from lazylab.gaussian.tangent import cross_moment, tangent_operator
from lazylab.models._tangent_quadratic import quadratic_tangent
from lazylab.models._tangent_solvers import (KroneckerInverse, SymmetricInverse,
                                             TransposeCorrection)
from lazylab.predictors import NeuralTangentModel, TwoLayer
from lazylab.risk.population import require_moments, whiten
from lazylab.solvers.cg import conjugate_gradient
from lazylab.solvers.ridge import refined_cholesky_solve, solve_symmetric
from lazylab.solvers.structured import LowerSymmetric, low_rank_preconditioned_solution

__all__ = ["optimal_head", "optimal_tangent"]


def optimal_head(task, activation, weights, biases=None, *, offset: bool = True,
                 ridge: float = 0.0):
    """Population-optimal head a (and offset c) for fixed W, b: random features at n = ∞.

    Minimizes E[(y − c − Σ a_i σ(w_i·x + b_i))²] + ridge·‖a‖²: (Σ + ridge I) a = r with
    Σ = K − m mᵀ (m mᵀ dropped without offset), K_ij = E[σ(w_i·x + b_i) σ(w_j·x + b_j)] from
    one fused float64 pass (:func:`lazylab.gaussian.dual.symmetric_dual_matrix`) into one N × N
    buffer. On the structured route (:func:`_structured`) only K's lower triangle is built and
    Σ + ridge I is applied as an operator on it (:class:`lazylab.solvers.structured.LowerSymmetric`);
    otherwise, or when that route declines, the buffer is mirrored, centred and regularized in
    place and solved by :func:`_solve_head`.

    Args:
        task: a task with moments. activation: σ. weights: W (N, d). biases: b (N,) or None.
        offset: fit c (True) or fix c = 0 (Ghorbani et al.'s RF class has no offset).
    Returns:
        A :class:`TwoLayer` with diagnostics ``population_risk``, ``head_norm_max`` and
        ``pseudo_inverse`` (1.0 when the feature covariance was singular).
    """
    require_moments(task)
    ridge = checks.ridge(ridge)
    sigma = get_activation(activation)
    means = [(p, feature_mean(sigma, weights, biases, c)) for p, c in task.components]
    mean = sum(p * m for p, m in means)
    cross = task.feature_moment(sigma, weights, biases)
    target_mean = torch.as_tensor(task.target_mean(), dtype=torch.float64)
    second = torch.as_tensor(task.target_second_moment(), dtype=torch.float64)
    if offset:
        cross = cross - mean * target_mean
        second = second - target_mean ** 2
    if frozen(weights, biases) and _structured(*weights.shape):
        head, product, used_cholesky = _structured_head(task, sigma, weights, biases, means,
                                                        cross, offset, ridge)
    else:
        system = _feature_gram(task, sigma, weights, biases)
        system = _centred(system, mean if offset else None, ridge)
        head, used_cholesky = _solve_head(system, cross)
        product = system @ head
    risk = second - 2 * head @ cross + head @ product - ridge * head @ head
    constant = target_mean - head @ mean if offset else torch.zeros((), dtype=torch.float64)
    return TwoLayer(sigma, weights, head, biases=biases, offset=constant, diagnostics={
        "population_risk": float(risk), "head_norm_max": float(head.abs().max()),
        "pseudo_inverse": float(not used_cholesky)})


def _structured_head(task, sigma, weights, biases, means, cross, offset, ridge):
    """(a, (Σ + ridge I) a, used_cholesky) on the structured route.

    Only the lower triangle of Σ_c p_c (K_c − m_c m_cᵀ) is built (each m_c m_cᵀ subtracted in
    the dual pass; K_c without the offset), and Σ + ridge I is that plus the between-component
    Σ_c p_c (m_c − m)(m_c − m)ᵀ and the ridge, as an operator; CG solves
    (:func:`lazylab.solvers.structured.low_rank_preconditioned_solution`, which also returns
    the product its certificate computed). When CG declines, the buffer is mirrored and
    completed in place and :func:`_solve_head` solves.
    """
    lower = None
    for (p, m), (_, covariance) in zip(means, task.components):
        part = lower_dual_matrix(sigma, weights, biases, covariance,
                                 subtract=m if offset else None)
        part = part if p == 1.0 else part.mul_(p)
        lower = part if lower is None else lower.add_(part)
    mean = sum(p * m for p, m in means)
    spread = (torch.stack([p ** 0.5 * (m - mean) for p, m in means], dim=1)
              if offset and len(means) > 1 else None)
    operator = LowerSymmetric(lower, low_rank=spread, shift=ridge)
    factors = _low_rank_part(task, sigma, weights, biases, means, offset)
    solved = low_rank_preconditioned_solution(operator, cross, factors)
    if solved is not None:
        return *solved, True
    system = operator.dense()
    head, used_cholesky = _solve_head(system, cross)
    return head, system @ head, used_cholesky


def _centred(system, mean, ridge):
    """K − m mᵀ (m None: K) + ridge I, in place where no gradient flows."""
    if mean is not None:
        system = system.addr_(mean, mean, alpha=-1.0) if frozen(system, mean) else \
            system - torch.outer(mean, mean)
    if ridge and frozen(system):
        system.diagonal().add_(ridge)
    elif ridge:
        system = system + ridge * torch.eye(system.shape[0], dtype=system.dtype)
    return system


def _feature_gram(task, sigma, weights, biases):
    """K = Σ_c p_c E_c[φ φᵀ] over the task's Gaussian components, (N, N) float64.

    One fused symmetric pass per component when no gradient flows; ``dual_matrix`` otherwise.
    """
    if not frozen(weights, biases):
        return sum(p * dual_matrix(sigma, weights, biases, covariance=c)
                   for p, c in task.components)
    gram = None
    for p, c in task.components:
        part = symmetric_dual_matrix(sigma, weights, biases, c)
        part = part if p == 1.0 else part.mul_(p)
        gram = part if gram is None else gram.add_(part)
    return gram


STRUCTURED_MIN_WIDTH = 3072
"""From this width N on, :func:`optimal_head` first tries conjugate gradient preconditioned by
the degree ≤ 1 Hermite part and the degree-2 constant (:mod:`lazylab.solvers.structured`):
O(N²) per iteration against the Cholesky's N³/3. At d = 450, N = 4500 it needs 15 iterations
for ReLU and 17 for σ = u² − 1 (17 and 18 without the degree-2 constant; tanh 6–7) and is the
faster of the two from between N = 2048 and 3072 on (benchmarks/bench_random_features.py)."""


def _structured(width: int, dim: int) -> bool:
    """Whether the CG route is tried: N ≥ :data:`STRUCTURED_MIN_WIDTH` and N ≤ d(d + 1)/8.

    The degree ≥ 2 remainder is close to its diagonal only while N is small against the
    d(d + 1)/2 degree-2 directions: its degree-2 part is a Gram matrix of N vectors in that
    space, whose normalized spectrum fills [(1 − √q)², (1 + √q)²] with q = N/(d(d + 1)/2)
    (Marchenko–Pastur); q ≤ ¼ keeps the preconditioned condition number near 9 (15–17
    iterations measured at q = 0.045). Beyond it (e.g. yehudai-shamir's N = 16,384 at d ≤ 32)
    CG would spend its budget before the Cholesky route solves anyway.
    """
    return STRUCTURED_MIN_WIDTH <= width <= dim * (dim + 1) / 8


def _low_rank_part(task, sigma, weights, biases, means, offset: bool) -> torch.Tensor:
    """V (N, r) with VVᵀ the degree ≤ 1 Hermite part of the (centred) feature second moment,
    plus the constant part of its degree-2 term.

    Per component c (weight p_c, covariance C_c) the Hermite expansion of the dual kernel,
    K_ij = Σ_k λ_k(i)λ_k(j)ρ_ijᵏ/k!, starts with m_i m_j (degree 0, m = E φ) and
    (λ₁(i)/s_i)(λ₁(j)/s_j) w_iᵀC_c w_j (degree 1; s_i² = w_iᵀC_c w_i). Summed over components
    and centred, Σ_c p_c m_c m_cᵀ − m mᵀ = Σ_c p_c (m_c − m)(m_c − m)ᵀ (zero for one component),
    so V stacks √p_c (m_c − m) (or √p_c m_c without the offset) and √p_c diag(λ₁/s) W C_c^{1/2}.
    Degree 2: with unit vectors v_i = C_c^{1/2}w_i/s_i, ρ_ij² = ⟨v_iv_iᵀ, v_jv_jᵀ⟩_F
    = 1/d + ⟨v_iv_iᵀ − I/d, v_jv_jᵀ − I/d⟩_F exactly (tr(vvᵀ − I/d) = 0), so the degree-2 term
    λ₂(i)λ₂(j)ρ_ij²/2 holds the rank-one λ₂λ₂ᵀ/(2d) (one eigenvalue ≈ N/d times the rest's
    diagonal) plus a Gram matrix: V takes the column √(p_c/(2d)) λ₂ too. r ≤ components · (d + 2)
    columns, and S − VVᵀ stays positive semi-definite (Gram and Hadamard-power terms).
    """
    columns = []
    mean = sum(p * m for p, m in means)
    dim = weights.shape[1]
    for (p, m), (_, covariance) in zip(means, task.components):
        if not offset or len(means) > 1:
            columns.append((p ** 0.5 * (m - mean if offset else m))[:, None])
        scales = unit_scales(weights, covariance)
        bias = torch.zeros_like(scales) if biases is None else biases
        lam = sigma.hermite_coefficients(2, scales, bias)
        slope = torch.where(scales > 0, lam[..., 1] / torch.where(scales > 0, scales, 1.0), 0.0)
        root = whiten(covariance)
        white = weights.to(torch.float64) if root is None else weights.to(torch.float64) @ root
        columns.append(p ** 0.5 * slope[:, None] * white)
        columns.append((p / (2 * dim)) ** 0.5 * lam[..., 2:3])
    return torch.cat(columns, dim=1)


def _solve_head(system, rhs):
    """S a = r, S symmetric positive (semi-)definite (N, N) float64; returns (a, used_cholesky).

    The float32 Cholesky factor of S refined in float64
    (:func:`lazylab.solvers.ridge.refined_cholesky_solve`: half the flops of a float64
    factorization, float64-accurate when cond(S)·2⁻²⁴ ≪ 1); when that does not converge,
    :func:`lazylab.solvers.ridge.solve_symmetric` (float64 Cholesky, falling back to the
    pseudo-inverse for a singular S).
    """
    if frozen(system, rhs):
        solution = refined_cholesky_solve(system, rhs)
        if solution is not None:
            return solution, True
    return solve_symmetric(system, rhs)


class _TangentSystem:
    """The covariance normal equations of the NT model over a mixture of Gaussian inputs."""

    def __init__(self, task, sigma, weights, train_head: bool, ridge: float):
        self.sigma, self.weights, self.train_head, self.ridge = sigma, weights, train_head, ridge
        self.width, self.dim = weights.shape
        self.parts = []
        for p, cov in task.components:
            root = whiten(cov)
            white = weights if root is None else weights @ root
            part = {"p": p, "root": root, "w": white, "op": tangent_operator(sigma, white)}
            if train_head:
                part["gram"] = dual_matrix(sigma, white, None)
                part["cross"] = cross_moment(sigma, white)
            self.parts.append(part)
        derivative = sigma.derivative()
        self.tangent_mean = sum(p * feature_input_moment(derivative, weights, None, c)
                                for p, c in task.components)
        self.feature_mean = sum(p * feature_mean(sigma, weights, None, c) for p, c in task.components)

    def pack(self, directions, head=None):
        return directions.reshape(-1) if head is None else torch.cat([directions.reshape(-1), head])

    def unpack(self, vector):
        split = self.width * self.dim
        head = vector[split:] if self.train_head else None
        return vector[:split].reshape(self.width, self.dim), head

    def apply(self, vector):
        a, h = self.unpack(vector)
        out_a = self.ridge * a
        out_h = None if h is None else self.ridge * h
        for part in self.parts:
            root = part["root"]
            a_white = a if root is None else a @ root
            k_a = part["op"].apply(a_white)
            if h is not None:
                alpha, beta = part["cross"]
                w = part["w"]
                s = w @ a_white.T
                # Σ_i h_i E[σ(u_i)σ′(u_j) z] = Σ_i h_i (α_ij w_i + β_ij w_j)
                k_a = k_a + alpha.T @ (h[:, None] * w) + (beta.T @ h)[:, None] * w
                g_h = (alpha * s).sum(1) + (beta * torch.diagonal(s)[None, :]).sum(1)
                out_h = out_h + part["p"] * (part["gram"] @ h + g_h)
            out_a = out_a + part["p"] * (k_a if root is None else k_a @ root)
        mean_g = torch.sum(self.tangent_mean * a)
        if h is not None:
            mean_g = mean_g + self.feature_mean @ h
            out_h = out_h - self.feature_mean * mean_g
        out_a = out_a - self.tangent_mean * mean_g
        return self.pack(out_a, out_h)

    def preconditioner(self):
        """M ≈ (Op)⁺ block-diagonal in (A, h): the κ ⊗ Cov part of the tangent block, the full head block.

        Tangent block: Σ_c p_c κ_c ⊗ Σ_c + ridge (Σ_c the component covariance; κ_c ⊗ I in
        whitened coordinates) — exact on {A : A Wᵀ = 0} for a single Gaussian, see
        :mod:`lazylab.models._tangent_solvers`. One N × N Cholesky (pseudo-inverse when κ is
        singular) for isotropic inputs, with the Woodbury correction for the constant part of
        the μ terms when N ≥ d; for other covariances κ̄ ⊗ Σ̄ by two eigendecompositions.
        Head block: the exact feature covariance + ridge (N × N Cholesky).
        """
        kappa = sum(part["p"] * part["op"].kappa for part in self.parts)
        if all(part["root"] is None for part in self.parts):
            eye = torch.eye(self.width, dtype=kappa.dtype)
            tangent = SymmetricInverse(kappa + self.ridge * eye)
            if self.width >= self.dim and not tangent.pseudo_inverse:
                # t_i = E[σ′(w_i·x)] from E[σ′(w_i·x) x] = t_i w_i
                scale = (self.tangent_mean * self.weights).sum(1) / (self.weights ** 2).sum(1)
                corrected = TransposeCorrection(tangent, scale[:, None] * self.weights)
                tangent = corrected if corrected.usable else tangent
        else:
            covariance = sum(part["p"] * (torch.eye(self.dim, dtype=kappa.dtype)
                                          if part["root"] is None else part["root"] @ part["root"])
                             for part in self.parts)
            tangent = KroneckerInverse(kappa, covariance, self.ridge)
        head = None
        if self.train_head:
            gram = sum(part["p"] * part["gram"] for part in self.parts)
            head = SymmetricInverse(gram - torch.outer(self.feature_mean, self.feature_mean)
                                    + self.ridge * torch.eye(self.width, dtype=gram.dtype))

        def apply(vector):
            a, h = self.unpack(vector)
            return self.pack(tangent(a), None if h is None else head(h))
        return apply


def optimal_tangent(task, activation, weights, *, train_head: bool = False, ridge: float = 0.0,
                    tol: float = 1e-10, max_iter: int | None = None,
                    callback=None):
    """Population-optimal neural-tangent fit for fixed W (Ghorbani et al. 2019, eq. 3 and 4).

    Minimizes E[(y − c − Σ σ′(w_i·x)⟨a_i, x⟩ − Σ h_i σ(w_i·x))²] + ridge(‖A‖_F² + ‖h‖²)
    over A (N, d), the offset c, and h when ``train_head``.

    Args:
        task: a task with moments. activation: σ (its derivative must be a function).
        weights: W (N, d), frozen. tol: relative residual of the conjugate gradient.
        callback: called as ``callback(iteration, relative_residual)`` (progress reporting).
    Returns:
        :class:`NeuralTangentModel` with diagnostics ``population_risk``, ``cg_iterations``,
        ``cg_residual``, ``cg_converged`` (for the quadratic shortcut of the module docstring:
        0 iterations, the residual of its normal equation).
    """
    require_moments(task)
    ridge = checks.ridge(ridge)
    sigma = get_activation(activation)
    if ridge == 0 and not train_head:
        shortcut = quadratic_tangent(task, sigma, weights, tol=tol)
        if shortcut is not None:
            return shortcut
    system = _TangentSystem(task, sigma, weights, train_head, ridge)
    target_mean = float(task.target_mean())
    rhs_a = task.tangent_moment(sigma, weights) - target_mean * system.tangent_mean
    rhs_h = None
    if train_head:
        rhs_h = task.feature_moment(sigma, weights, None) - target_mean * system.feature_mean
    rhs = system.pack(rhs_a, rhs_h)
    result = conjugate_gradient(system.apply, rhs, preconditioner=system.preconditioner(),
                                tol=tol, max_iter=max_iter, callback=callback)
    x = result.solution
    variance = float(task.target_second_moment()) - target_mean ** 2
    risk = variance - 2 * float(x @ rhs) + float(x @ system.apply(x)) - ridge * float(x @ x)
    directions, head = system.unpack(x)
    offset = target_mean - float(torch.sum(system.tangent_mean * directions))
    if head is not None:
        offset -= float(system.feature_mean @ head)
    return NeuralTangentModel(sigma, weights, directions, head=head, offset=offset, diagnostics={
        "population_risk": risk, "cg_iterations": result.iterations,
        "cg_residual": result.residual, "cg_converged": float(result.converged)})
