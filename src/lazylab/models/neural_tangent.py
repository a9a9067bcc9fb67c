"""Neural tangent regime: the linearization of a two-layer network around a random first layer.

Notation (DESIGN.md, Ghorbani et al. 2019 eq. 3): W (N × d) frozen, w_i ~ N(0, I/d);
the trained unknowns are A (N × d) = ``directions``, the offset c and, with ``train_head``, h (N):

    f(x) = c + Σ_i g(w_i·x) ⟨a_i, x⟩ + Σ_i h_i σ(w_i·x),       g = σ′ for NT.

This is d/dt f(x; W + tA′, a)|_{t=0} with a_i A′_i = A_i (the first-order Taylor term), plus the
RF part when the head is trained. The same "gated linear" features with another gate g serve the
semi-random units (:mod:`lazylab.models.semi_random`, g = σ_s).

Solvers on samples (minimize (1/n)Σ(y − f)² + λ(‖A‖_F² + ‖h‖²), c unpenalized):
* "direct": the n × (Nd [+ N]) feature matrix is formed and handed to
  :func:`lazylab.solvers.solve_ridge` (primal when Nd ≤ n, dual otherwise; λ = 0 is the
  minimum-norm least squares). "auto" picks it when n·(Nd + N) ≤ 2.5·10⁷ entries.
* "cg": matrix-free preconditioned conjugate gradient (:func:`lazylab.solvers.conjugate_gradient`)
  on the centered normal equations (ΦᵀΦ/n − μμᵀ + λI) v = Φᵀ(y − ȳ)/n with μ = Φᵀ1/n. Φv and Φᵀr
  are computed in row blocks of x (GEMMs per block: XWᵀ, XAᵀ and (G∘r)ᵀX; the gates G = g(XWᵀ)
  are kept when n·N ≤ 2.5·10⁷), so the n × Nd matrix is never formed: memory O(n·N) or
  O(b·max(N, d) + N·d). Preconditioner (κ̂ ⊗ Ĉ + λI)⁻¹ with κ̂_ij = (1/n)Σ g_i g_j ‖x‖²/tr Ĉ,
  Ĉ = XᵀX/n (the sample analogue of the population operator's κ ⊗ I, exact off span(W); see
  :mod:`lazylab.models._tangent_solvers`), and the exact head block with ``train_head``. Stops
  at relative residual ``tol`` of the normal equations; diagnostics report ``cg_iterations``,
  ``cg_residual`` and ``cg_converged``. For n ≤ p/2 it solves the dual (n × n) system,
  Jacobi preconditioned, certified by the same primal residual
  (:mod:`lazylab.models._tangent_dual`); up to n = 4096 with n² ≤ 64p from the dense n × n dual
  matrix, (G Gᵀ)∘(X Xᵀ) centred, eigendecomposed once for every λ and certified the same way.
  "auto" picks "cg" above the dense size. The code lives in :mod:`lazylab.models._tangent_path`,
  with the ridge path of :meth:`NeuralTangent.fit_path` (statistics once, CG warm-started from
  the largest λ down; in the dual, every λ from one Krylov space).
* "sgd": plain SGD on the NT model, linear in its parameters, so a step is two structured
  products (Φv and Φᵀr from one XWᵀ), never an n × Nd Jacobian; on a task it is *online*
  (fresh samples each step, n = steps × batch_size; Ghorbani et al. 2019 §2.3), on a Dataset by
  batches drawn with replacement (:func:`lazylab.models._tangent_solvers.online_sgd`).
At n = ∞: :func:`lazylab.models.optimal_tangent` (exact operator, PCG preconditioned by the full
N × N matrix κ ⊗ I, :mod:`lazylab.models._tangent_solvers`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from lazylab import _checks as checks
from lazylab.activations import Activation, get_activation
from lazylab.models._common import draw_weights, numeric, resolve_input
from lazylab.models._tangent_path import solve_path, solve_single
from lazylab.models._tangent_online import check_tangent_checkpoints, fit_online
from lazylab.models.population import optimal_tangent
from lazylab.predictors import NeuralTangentModel
from lazylab.solvers import solve_ridge
from lazylab.solvers.batches import resolve_device
from lazylab.solvers.ridge_path import ridge_path

__all__ = ["NeuralTangent", "GatedFeatures", "fit_gated", "fit_tangent_path", "DIRECT_ENTRIES"]

DIRECT_ENTRIES = 25_000_000
"""solver="auto" forms the feature matrix up to this many entries (200 MB in float64)."""

_BLOCK_ENTRIES = 4_000_000

CACHE_ENTRIES = 25_000_000
"""The sample CG keeps the n × (N [+ N]) gates in memory up to this many entries (200 MB)."""

PATH_CACHE_ENTRIES = 50_000_000
"""The same for a ridge path (400 MB): it reuses the gates in every iteration of every λ, and the
Ghorbani paper's n = 112,500, N = 225 (2.5·10⁷ entries) is just above :data:`CACHE_ENTRIES`."""


class GatedFeatures:
    """φ(x) = [g(w_i·x) x]_{i ≤ N} (N·d columns) and optionally [σ(w_i·x)]_{i ≤ N} (N columns).

    Args:
        weights: W (N, d). gate: g (an Activation). head: σ for the extra head columns, or None.
    """

    def __init__(self, weights: torch.Tensor, gate: Activation, head: Activation | None = None):
        self.weights, self.gate, self.head = weights, gate, head
        self.width, self.dim = weights.shape

    @property
    def size(self) -> int:
        return self.width * self.dim + (0 if self.head is None else self.width)

    def pack(self, directions: torch.Tensor, head: torch.Tensor | None) -> torch.Tensor:
        flat = directions.reshape(-1)
        return flat if head is None else torch.cat([flat, head])

    def unpack(self, vector: torch.Tensor):
        split = self.width * self.dim
        head = vector[split:] if self.head is not None else None
        return vector[:split].reshape(self.width, self.dim), head

    def _parts(self, x):
        pre = x @ self.weights.T
        return self.gate.function(pre), (None if self.head is None else self.head.function(pre))

    def matrix(self, x: torch.Tensor) -> torch.Tensor:
        """Φ(x), (n, N·d [+ N]); column i·d + k is g(w_i·x) x_k (row-major, as ``pack``)."""
        gates, heads = self._parts(x)
        tangent = (gates[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        return tangent if heads is None else torch.cat([tangent, heads], dim=1)

    def rows(self, n: int) -> int:
        return max(1, _BLOCK_ENTRIES // max(self.width, self.dim, 1))

    def sample_gram(self, x: torch.Tensor) -> torch.Tensor:
        """Φ(x)Φ(x)ᵀ (n, n) = (G Gᵀ)∘(X Xᵀ) [+ H Hᵀ], G = g(X Wᵀ), H = σ(X Wᵀ), without forming
        Φ: the units in chunks that keep each temporary near 4·10⁶ entries; 2n²(N + d [+ N])
        flops."""
        n = x.shape[0]
        gates = torch.zeros(n, n, dtype=x.dtype, device=x.device)
        heads = None if self.head is None else torch.zeros_like(gates)
        step = max(1, _BLOCK_ENTRIES // max(n, 1))
        for start in range(0, self.width, step):
            pre = x @ self.weights[start:start + step].T
            gate = self.gate.function(pre)
            gates.addmm_(gate, gate.T)
            if heads is not None:
                head = self.head.function(pre)
                heads.addmm_(head, head.T)
        gram = gates.mul_(x @ x.T)
        return gram if heads is None else gram.add_(heads)

    def cache(self, x: torch.Tensor, limit: int | None = None):
        """The gates (and head features) of every row block, or None above ``limit`` entries
        (default :data:`CACHE_ENTRIES`)."""
        entries = x.shape[0] * self.width * (1 + int(self.head is not None))
        if entries > (CACHE_ENTRIES if limit is None else limit):
            return None
        step = self.rows(x.shape[0])
        return [self._parts(x[s:s + step]) for s in range(0, x.shape[0], step)]

    def blocks(self, x: torch.Tensor, cache=None):
        """Yield (x block, g(X Wᵀ), σ(X Wᵀ) or None) over row blocks of x."""
        step = self.rows(x.shape[0])
        for k, s in enumerate(range(0, x.shape[0], step)):
            block = x[s:s + step]
            yield (block, *(self._parts(block) if cache is None else cache[k]))

    def apply(self, x: torch.Tensor, vector: torch.Tensor, cache=None) -> torch.Tensor:
        """Φ(x) v without forming Φ, (n,)."""
        directions, head = self.unpack(vector)
        out = []
        for block, gates, heads in self.blocks(x, cache):
            value = (gates * (block @ directions.T)).sum(1)
            out.append(value if heads is None else value + heads @ head)
        return torch.cat(out)

    def gram_apply(self, x: torch.Tensor, vector: torch.Tensor, cache=None) -> torch.Tensor:
        """Φᵀ Φ v in row blocks (one pass over x): J v then Jᵀ(J v), three GEMMs per block."""
        directions, head = self.unpack(vector)
        out_a = torch.zeros_like(directions)
        out_h = None if head is None else torch.zeros_like(head)
        for block, gates, heads in self.blocks(x, cache):
            value = (gates * (block @ directions.T)).sum(1)
            if heads is not None:
                value = value + heads @ head
                out_h += heads.T @ value
            out_a += (gates * value[:, None]).T @ block
        return self.pack(out_a, out_h)

    def batch_value(self, x: torch.Tensor, vector: torch.Tensor):
        """(Φ(x) v, gates, head features) for one batch (no blocking: x is a minibatch)."""
        directions, head = self.unpack(vector)
        gates, heads = self._parts(x)
        value = (gates * (x @ directions.T)).sum(1)
        return (value if heads is None else value + heads @ head), gates, heads

    def batch_transpose(self, x: torch.Tensor, r: torch.Tensor, gates, heads) -> torch.Tensor:
        """Φ(x)ᵀ r from the batch's gates: (G∘r)ᵀ X (and Hᵀ r)."""
        return self.pack((gates * r[:, None]).T @ x, None if heads is None else heads.T @ r)

    def batch_step(self, x: torch.Tensor, r: torch.Tensor, gates, heads, vector, alpha) -> None:
        """v ← v + alpha·Φ(x)ᵀ r in place: the GEMM (G∘r)ᵀ X accumulates into v's directions
        (no Φᵀ r temporary, no second pass over v); Hᵀ r into its head."""
        directions, head = self.unpack(vector)
        directions.addmm_((gates * r[:, None]).T, x, alpha=alpha)
        if head is not None:
            head.add_(heads.T @ r, alpha=alpha)

    def row_norms(self, x: torch.Tensor, gates, heads) -> torch.Tensor:
        """‖Φ(x_a)‖² = Σ_i g(w_i·x_a)² ‖x_a‖² (+ Σ_i σ(w_i·x_a)²) per row a, (b,)."""
        norms = (gates * gates).sum(1) * (x * x).sum(1)
        return norms if heads is None else norms + (heads * heads).sum(1)

    def squared_norm(self, x: torch.Tensor, gates, heads) -> float:
        """Mean over the batch of ‖Φ(x)‖² (:meth:`row_norms`)."""
        return float(self.row_norms(x, gates, heads).mean())

    def moments(self, x: torch.Tensor, r: torch.Tensor, cache=None):
        """(Φᵀr, Φᵀ1, diag ΦᵀΦ) in one pass over x."""
        sums = [torch.zeros(self.size, dtype=x.dtype, device=x.device) for _ in range(3)]
        start = 0
        for block, gates, heads in self.blocks(x, cache):
            rb = r[start:start + block.shape[0]]
            start += block.shape[0]
            parts = [((gates * rb[:, None]).T @ block, None if heads is None else heads.T @ rb),
                     (gates.T @ block, None if heads is None else heads.sum(0)),
                     ((gates * gates).T @ (block * block),
                      None if heads is None else (heads * heads).sum(0))]
            for total, (a, h) in zip(sums, parts):
                total += self.pack(a, h)
        return sums


def fit_gated(features: GatedFeatures, x: torch.Tensor, y: torch.Tensor, *, ridge: float,
              solver: str = "auto", tol: float = 1e-10, max_iter: int | None = None,
              callback=None):
    """Minimize (1/n)‖y − c − Φv‖² + λ‖v‖² (c unpenalized); returns (v, c, diagnostics)."""
    n = x.shape[0]
    if solver == "direct" or (solver == "auto" and n * features.size <= DIRECT_ENTRIES):
        solution = solve_ridge(features.matrix(x), y, ridge=ridge, fit_intercept=True)
        return solution.coef, solution.intercept, {"cg_iterations": 0}
    return solve_single(features, x, y, ridge, tol=tol, max_iter=max_iter, callback=callback)


@dataclass(frozen=True, kw_only=True)
class NeuralTangent:
    """Neural-tangent (linearized) regression around a random first layer W, w_i ~ N(0, I/d).

    Args:
        width: N ≥ 1.
        activation: σ; its derivative must be a function (not 'step' or 'sign').
        train_head: also train the RF part Σ h_i σ(w_i·x) (the full linearization).
        ridge: λ ≥ 0 on ‖A‖_F² (+ ‖h‖²), 1/n-normalized loss on samples.
        solver: "auto", "direct" or "cg" on samples (module docstring); "sgd": plain SGD on the
            NT model (:func:`lazylab.models._tangent_solvers.online_sgd`), on a task *online*
            (a fresh batch from the task every step, samples seen = steps × batch_size, the
            protocol of Ghorbani et al. 2019 §2.3), on a Dataset by batches drawn with
            replacement.
        tol, max_iter: conjugate-gradient stopping rule (samples with "cg", and n = ∞); the
            default cap is 10 × the number of unknowns.
        learning_rate: SGD step, normalized (η = learning_rate / max(E‖Φ‖²/B, λ_max)): stable
            below 2; adds ≈ learning_rate/2 × the risk by gradient noise at stationarity.
        batch_size, steps: SGD batch and step budget.
        sgd_tol: SGD stops when the windowed batch loss changes by ≤ sgd_tol relative
            (windows of ≥ 100 steps and ≥ 10⁴ samples).
        device: where the sample fits run (SGD and least squares): "cpu" or "cuda[:k]"; the
            exact n = ∞ fit runs on the CPU whatever it says (a sweep decides n per run). The
            fitted model is returned on the CPU. With "sgd" on a GPU the float64 batches are
            drawn on the host as on the CPU, in blocks of
            :data:`lazylab.solvers.batches.DEVICE_BLOCK_ROWS` rows moved in one copy (the same
            numbers as the CPU's per-step draws for a noise-free task).
        checkpoints: with "sgd" online on a task, steps t ≤ ``steps`` at which the exact risk is
            also reported, ``population_risk_at_<t>`` (models._tangent_online).
    Random stream: W by one ``rng.standard_normal((N, d))`` (the same draw as RandomFeatures);
    with "sgd" the same generator then draws the batches.
    """

    width: int = 100
    activation: str = "relu"
    train_head: bool = False
    ridge: float = 0.0
    solver: str = "auto"
    tol: float = 1e-10
    max_iter: int | None = None
    learning_rate: float = 0.1
    batch_size: int = 100
    steps: int = 10_000
    sgd_tol: float = 1e-2
    device: str = "cpu"
    checkpoints: tuple[int, ...] = ()

    def __post_init__(self):
        checks.positive_int(self.width, "width")
        get_activation(self.activation).derivative()
        checks.ridge(self.ridge)
        checks.choice(self.train_head, "train_head", (True, False))
        checks.choice(self.solver, "solver", ("auto", "direct", "cg", "sgd"))
        checks.positive_float(self.tol, "tol")
        checks.optional(checks.positive_int, self.max_iter, "max_iter")
        checks.positive_float(self.learning_rate, "learning_rate")
        checks.positive_int(self.batch_size, "batch_size")
        checks.positive_int(self.steps, "steps")
        checks.positive_float(self.sgd_tol, "sgd_tol")
        checks.device(self.device)
        object.__setattr__(self, "checkpoints", check_tangent_checkpoints(self))

    def fit(self, data_or_task, *, rng: np.random.Generator,
            progress=None) -> NeuralTangentModel:
        """Fit A (and h) on samples or exactly at n = ∞ (a task with moments).

        ``progress(iteration, None)`` is called after each conjugate-gradient iteration (with
        "sgd": for every step, in order, but in bursts at the end of each window of steps, whose
        losses are read from the device together). Raises DivergenceError when SGD diverges.
        """
        data, task = resolve_input(data_or_task)
        dim = data.dim if task is None else task.dim
        weights = draw_weights(rng, self.width, dim)
        if self.solver == "sgd":
            return self._fit_sgd(weights, data, task, rng=rng, progress=progress)
        return fit_tangent(get_activation(self.activation), weights, data, task,
                           train_head=self.train_head, ridge=self.ridge, solver=self.solver,
                           tol=self.tol, max_iter=self.max_iter, progress=progress,
                           device=None if task is not None else resolve_device(self.device))

    def initial_model(self, data_or_task, *, rng: np.random.Generator) -> NeuralTangentModel:
        """The model before any fit: W drawn from ``rng`` exactly as :meth:`fit` draws it, A = 0
        (h = 0 with a head), c = 0. Model selection reads the features' scale from it (which
        depends on W and x alone) instead of fitting a reference ridge."""
        data, task = resolve_input(data_or_task)
        weights = draw_weights(rng, self.width, data.dim if task is None else task.dim)
        head = torch.zeros(self.width, dtype=torch.float64) if self.train_head else None
        return NeuralTangentModel(get_activation(self.activation), weights,
                                  torch.zeros_like(weights), head=head)

    def fit_path(self, data_or_task, ridges, *, rng: np.random.Generator
                 ) -> list[NeuralTangentModel] | None:
        """This regime fitted on samples at every λ of ``ridges`` (its own ``ridge`` is ignored).

        W is drawn once from ``rng`` as :meth:`fit` draws it. "direct" (and "auto" up to
        :data:`DIRECT_ENTRIES`): the feature matrix Φ (n × (Nd [+ N])) and its smaller Gram are
        formed once and every λ's (A, h, c) is solved on it
        (:func:`lazylab.solvers.ridge_path.ridge_path`): the "direct" fit per λ, to round-off.
        "cg" (and "auto" above): :func:`lazylab.models._tangent_path.solve_path` — gates,
        right-hand side and preconditioner statistics once, CG from the largest λ to the
        smallest, each warm-started from the previous solution (or its extrapolation in λ);
        every λ's solution meets the cold fit's certificate (relative residual ≤ ``tol`` of
        its own system), so choices and risks are those of refitting up to that tolerance.
        Returns the models in the order of ``ridges``, diagnostics as :meth:`fit`'s; None (the
        caller refits per λ) at n = ∞ and for "sgd".
        """
        data, task = resolve_input(data_or_task)
        if task is not None or self.solver == "sgd":
            return None
        weights = draw_weights(rng, self.width, data.dim)
        return fit_tangent_path(get_activation(self.activation), weights, data, ridges,
                                train_head=self.train_head, solver=self.solver, tol=self.tol,
                                max_iter=self.max_iter, device=resolve_device(self.device))

    def _fit_sgd(self, weights, data, task, *, rng, progress) -> NeuralTangentModel:
        sigma = get_activation(self.activation)
        features = GatedFeatures(weights.to(resolve_device(self.device)), sigma.derivative(),
                                 sigma if self.train_head else None)
        return fit_online(self, functools.partial(_solved_model, sigma, weights, features),
                          features, data, task, rng=rng, progress=progress)


def fit_tangent(sigma: Activation, weights: torch.Tensor, data, task, *, train_head: bool,
                ridge: float, solver: str, tol: float, max_iter: int | None,
                gate: Activation | None = None, progress=None,
                device: torch.device | None = None) -> NeuralTangentModel:
    """The NT fit for fixed W on samples (``data``) or at n = ∞ (``task``); gate g = σ′ default.

    ``max_iter=None`` caps conjugate gradient at 10 × the number of unknowns (round-off makes
    CG need more than the exact-arithmetic bound on ill-conditioned systems). ``device``: where
    the sample fit runs (default the CPU); the model comes back on the CPU.
    """
    if max_iter is None:
        max_iter = 10 * weights.shape[0] * (weights.shape[1] + int(train_head))
    callback = None if progress is None else (lambda iteration, _: progress(iteration, None))
    if task is not None:
        model = optimal_tangent(task, sigma, weights, train_head=train_head, ridge=ridge, tol=tol,
                                max_iter=max_iter, callback=callback)
        model.diagnostics = numeric(model.diagnostics)
        return model
    device = torch.device("cpu") if device is None else device
    features = GatedFeatures(weights.to(device), sigma.derivative() if gate is None else gate,
                             sigma if train_head else None)
    solution = fit_gated(features, data.x.to(device), data.y.to(device), ridge=ridge,
                         solver=solver, tol=tol, max_iter=max_iter, callback=callback)
    return _solved_model(sigma, weights, features, *solution)


def fit_tangent_path(sigma: Activation, weights: torch.Tensor, data, ridges, *,
                     train_head: bool, solver: str, tol: float, max_iter: int | None,
                     device: torch.device | None = None) -> list[NeuralTangentModel]:
    """The NT fits (gate g = σ′) for fixed W on samples at every λ of ``ridges``
    (:meth:`NeuralTangent.fit_path` says how); the models come back on the CPU."""
    device = torch.device("cpu") if device is None else device
    features = GatedFeatures(weights.to(device), sigma.derivative(),
                             sigma if train_head else None)
    x, y = data.x.to(device), data.y.to(device)
    if solver == "cg" or (solver == "auto" and data.x.shape[0] * features.size > DIRECT_ENTRIES):
        max_iter = 10 * features.size if max_iter is None else max_iter
        solutions = solve_path(features, x, y, ridges, tol=tol, max_iter=max_iter,
                               cache_entries=PATH_CACHE_ENTRIES)
    else:
        solutions = [(s.coef, s.intercept, {"cg_iterations": 0}) for s in
                     ridge_path(features.matrix(x), y, ridges, fit_intercept=True)]
    return [_solved_model(sigma, weights, features, *solution) for solution in solutions]


def _solved_model(sigma: Activation, weights: torch.Tensor, features: GatedFeatures, vector,
                  offset, info: dict) -> NeuralTangentModel:
    """The fitted model on the CPU from a sample fit's packed (A, h) ``vector`` (p,), its
    offset c and diagnostics, wherever ``features`` computed them; W (N, d) the CPU draw."""
    directions, head = features.unpack(vector.cpu())
    offset = offset.cpu() if isinstance(offset, torch.Tensor) else offset
    info["directions_norm_max"] = directions.abs().max()
    return NeuralTangentModel(sigma, weights, directions, head=head, offset=offset,
                              diagnostics=numeric(info))
