"""Benchmark of ridge selection: one factorization for the whole grid against a refit per value.

Kernel ridge (ReLU NTK, exact fits) at d = 100, n ∈ {1000, 4000}, a 12-value ridge grid
10⁻⁹ … 10² chosen on a validation split of 1000 samples by
:func:`lazylab.experiments.selection.fit_with_selection`:

* "refit": the regime without ``fit_path``: per value one kernel matrix K (n × n), one Cholesky
  factor of K + nλI (n³/3 flops) and one validation kernel block K(x_val, X) for the score;
* "path": ``Kernel.fit_path`` as selection runs it: K once, a Cholesky per value on it, and one
  validation block shared by all values (:class:`lazylab.models.kernel.SharedBlock`);
* "path eigh" (n = 1000 only): the same with one eigendecomposition of K instead of the
  Choleskys (what ``symmetric_path`` does from ``EIGH_MIN_SHIFTS`` values on).

All score every value on the same validation set; the rows give each route's time, the ratios
(measured within one run), whether the routes chose the same ridge and the largest relative
difference of the validation risks over the grid (round-off: the routes solve the same systems).
The target is y = relu(x₁) + (‖x‖²/d − 1)√d/2 + 0.1 ε, x ~ N(0, I_d).
Run: ``python benchmarks/bench_selection.py [--quick] [--n=N ...]`` (quick: n = 1000 only;
``--n=N``: these sizes instead).

Neural-tangent least squares (``--nt``: these cases only; also part of :func:`run`;
``--threads=K``: K torch threads in them, e.g. 1 on a loaded machine; ``--nt-paper``: instead
σ = u² on ghorbani-fig1's task at the paper's n/(Nd) = 25/225, 75/225, 250/225), the matrix-free
CG route (solver "cg", what "auto" takes above ``DIRECT_ENTRIES``) at d = 100, N = 50 (Nd = 5000
unknowns; quick: d = 30, N = 15), n = 2·Nd and Nd/2, σ ∈ {relu, quadratic}, the 11-value
``ridge = "auto"`` grid (:func:`default_ridge_grid` at the scale of the reference fit at λ = 1,
exactly as selection builds it; that reference fit is timed on its own row), validated on 1000
samples:

* "refit": ``NeuralTangent`` without ``fit_path``: per λ a cold CG, gates and preconditioner anew;
* "path": ``NeuralTangent.fit_path`` (gates, right-hand side and preconditioner statistics once,
  CG from the largest λ down, each warm-started from the previous solution; for n ≤ p/2 the
  dual with one Krylov space for all λ, from n·p ≥ 2.5·10⁷ float32 products refined in
  float64 — both routes take the dual and float32 where the fit does).

Rows: seconds, total CG iterations, the per-λ iterations (largest λ first; the dual path's
overlap, as its λ share products), passes over x by dtype (what the time is made of),
unconverged values
(with the worst residual and the iteration cap), same choice, the largest relative difference
of the validation risks, and the load average at the end of the case.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import isolated, machine_framed, print_rows, row, timer  # noqa: E402

from lazylab.experiments.selection import (  # noqa: E402
    Criterion, Selection, default_ridge_grid, feature_scale, fit_with_selection)
from lazylab.models import Kernel, NeuralTangent  # noqa: E402
from lazylab.models.neural_tangent import GatedFeatures  # noqa: E402
from lazylab.solvers import ridge_path  # noqa: E402
from lazylab.tasks import TASKS, Dataset  # noqa: E402

try:  # the dual route (absent from code before it, which this benchmark can also time)
    from lazylab.models import _tangent_dual  # noqa: E402
except ImportError:
    _tangent_dual = None

BENCHMARK = "selection"
DIM, VALIDATION = 100, 1000
GRID = tuple(10.0 ** k for k in range(-9, 3))
FULL, QUICK = (1000, 4000), (1000,)
EIGH_UP_TO = 1000
"""Largest n of the "path eigh" case (an eigendecomposition at n = 4000 takes minutes here)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Refitting(Kernel):
    """The Kernel regime without its ridge path: selection refits every grid value."""

    fit_path = None


def _sample(rng: np.random.Generator, n: int, dim: int = DIM) -> Dataset:
    x = torch.from_numpy(rng.standard_normal((n, dim)))
    y = (torch.relu(x[:, 0]) + (x.square().mean(1) - 1.0) * math.sqrt(dim) / 2
         + 0.1 * torch.from_numpy(rng.standard_normal(n)))
    return Dataset(x, y)


def _select(regime_class, train, validation) -> tuple[float, dict, list[float]]:
    """(seconds, metrics, validation risk of every grid value in order) of one selection."""
    risks = []

    def score(predictor) -> float:
        risks.append(float(torch.mean((predictor.predict(validation.x) - validation.y) ** 2)))
        return risks[-1]

    with timer() as clock:
        _, metrics = fit_with_selection(
            lambda params: regime_class(**params), {"kind": "ntk", "method": "cholesky"},
            {"ridge": Selection(GRID, "validation")}, train,
            fit_rng=lambda: np.random.default_rng(0), criterion=Criterion(score, train.x))
    return clock["seconds"], metrics, risks


def _case(n: int, peak: float) -> list[dict]:
    rng = np.random.default_rng(n)
    train, validation = _sample(rng, n), _sample(rng, VALIDATION)
    routes = {"refit": _select(_Refitting, train, validation),
              "path": _select(Kernel, train, validation)}
    if n <= EIGH_UP_TO:
        ridge_path.EIGH_MIN_SHIFTS = 1  # this spawned process only
        routes["path eigh"] = _select(Kernel, train, validation)
    case = f"ntk kernel ridge selection n={n} d={DIM} {len(GRID)} ridges"
    refit_time, refit, refit_risks = routes["refit"]
    rows = [row(BENCHMARK, case, "time_refit", refit_time, "s",
                f"Cholesky n³/3 = {n**3 / 3e9:.2f} GFLOP per value; peak {peak:.1f} GFLOP/s")]
    for name, (seconds, metrics, risks) in routes.items():
        if name == "refit":
            continue
        label = name.replace(" ", "_")
        spread = max(abs(a - b) / abs(b) for a, b in zip(risks, refit_risks))
        rows += [row(BENCHMARK, case, f"time_{label}", seconds, "s", ""),
                 row(BENCHMARK, case, f"speedup_{label}", refit_time / seconds, "",
                     "refit / " + name),
                 row(BENCHMARK, case, f"same_choice_{label}",
                     float(metrics["selected_ridge"] == refit["selected_ridge"]), "",
                     f"ridge {metrics['selected_ridge']:.0e}, "
                     f"edge {metrics['selection_at_edge']:.0f}"),
                 row(BENCHMARK, case, f"risk_difference_{label}", spread, "",
                     "max relative over the grid, vs refit")]
    return rows


NT_SIZES = {False: (100, 50), True: (30, 15)}
"""(d, N) of the NT cases: full and quick."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class _RefittingTangent(NeuralTangent):
    """NeuralTangent without its ridge path: selection refits (cold CG) every grid value."""

    fit_path = None


class _Passes:
    """Counts passes over x (one Jv and one Jᵀu each) by the NT products, per dtype: a
    ``gram_apply`` is one pass, a Jv (``apply``) or a Jᵀu (the dual's ``transposed_apply``) half.
    With the dual's shared Krylov space the per-λ iteration counts overlap; passes do not."""

    def __init__(self):
        self.counts = {"float64": 0.0, "float32": 0.0}

    def __enter__(self):
        self.saved = [(GatedFeatures, "gram_apply", 1.0), (GatedFeatures, "apply", 0.5)]
        if _tangent_dual is not None:
            self.saved.append((_tangent_dual, "transposed_apply", 0.5))
        self.saved = [(owner, name, weight, getattr(owner, name))
                      for owner, name, weight in self.saved]
        for owner, name, weight, real in self.saved:
            setattr(owner, name, self._counted(real, weight))
        return self

    def _counted(self, real, weight):
        def counted(*args, **kwargs):  # (features, x, ...) for all three
            self.counts[str(args[1].dtype).removeprefix("torch.")] += weight
            return real(*args, **kwargs)
        return counted

    def __exit__(self, *exc):
        for owner, name, _, real in self.saved:
            setattr(owner, name, real)


def _tangent_select(regime_class, params: dict, grid, train, validation):
    """(seconds, metrics, [(risk, diagnostics)] per grid value in grid order, passes over x by
    dtype) of one selection."""
    records = []

    def score(predictor) -> float:
        risk = float(torch.mean((predictor.predict(validation.x) - validation.y) ** 2))
        records.append((risk, dict(predictor.diagnostics)))
        return risk

    with timer() as clock, _Passes() as passes:
        _, metrics = fit_with_selection(
            lambda p: regime_class(**p), params, {"ridge": Selection(tuple(grid), "validation")},
            train, fit_rng=lambda: np.random.default_rng(0), criterion=Criterion(score, train.x))
    return clock["seconds"], metrics, records, passes.counts


def _tangent_rows(case: str, name: str, route, order, cap: int) -> list[dict]:
    seconds, metrics, records, passes = route
    its = [int(records[k][1]["cg_iterations"]) for k in order]
    failed = [d for _, d in records if d["cg_converged"] != 1.0]
    worst = max(d["cg_residual"] for _, d in records)
    return [row(BENCHMARK, case, f"time_{name}", seconds, "s", ""),
            row(BENCHMARK, case, f"cg_iterations_{name}", sum(its), "",
                "per λ, largest first: " + " ".join(map(str, its))),
            row(BENCHMARK, case, f"passes_{name}", passes["float64"] + passes["float32"], "",
                f"over x (a Jv and a Jᵀu each): "
                f"{passes['float64']:.0f} float64, {passes['float32']:.0f} float32"),
            row(BENCHMARK, case, f"unconverged_{name}", len(failed), "",
                f"cap {cap} its; worst relative residual {worst:.1e}; chose "
                f"{metrics['selected_ridge']:.2e}")]


def _fig1_data(n: int, dim: int) -> tuple[Dataset, Dataset]:
    """ghorbani-fig1's task: y = xᵀBx − tr B, B = diag(γ)/√d, γ_i ~ Exp(1)."""
    task = TASKS["quadratic"](rng=np.random.default_rng(dim), dim=dim, matrix="exp-diagonal")
    return (task.sample(n, rng=np.random.default_rng(n)),
            task.sample(VALIDATION, rng=np.random.default_rng(n + 1)))


def _tangent_case(activation: str, n: int, quick: bool, threads: int | None,
                  fig1: bool = False) -> list[dict]:
    if threads is not None:
        torch.set_num_threads(threads)  # this spawned process only
    dim, width = NT_SIZES[quick]
    rng = np.random.default_rng(n + dim)
    train, validation = (_fig1_data(n, dim) if fig1
                         else (_sample(rng, n, dim), _sample(rng, VALIDATION, dim)))
    params = {"width": width, "activation": activation, "solver": "cg"}
    with timer() as clock:
        reference = NeuralTangent(**params, ridge=1.0).fit(train, rng=np.random.default_rng(0))
    grid = default_ridge_grid(feature_scale(reference, train.x))
    routes = {"refit": _tangent_select(_RefittingTangent, params, grid, train, validation),
              "path": _tangent_select(NeuralTangent, params, grid, train, validation)}
    case = f"nt cg {activation}{' fig1' if fig1 else ''} d={dim} N={width} n={n} {len(grid)} ridges"
    order = sorted(range(len(grid)), key=lambda k: -grid[k])
    rows = [row(BENCHMARK, case, "time_reference_fit", clock["seconds"], "s",
                f"λ = 1 for the auto grid's scale; {reference.diagnostics['cg_iterations']:.0f} "
                "CG its (both routes pay it; not in their times)")]
    for name, route in routes.items():
        rows += _tangent_rows(case, name, route, order, 10 * width * dim)
    (refit_time, refit, refit_records, _), (path_time, path, path_records, _) = routes.values()
    spread = max(abs(a[0] - b[0]) / abs(b[0]) for a, b in zip(path_records, refit_records))
    return rows + [
        row(BENCHMARK, case, "speedup_path", refit_time / path_time, "", "refit / path"),
        row(BENCHMARK, case, "same_choice_path",
            float(path["selected_ridge"] == refit["selected_ridge"]), "",
            f"edge {path['selection_at_edge']:.0f}"),
        row(BENCHMARK, case, "risk_difference_path", spread, "",
            "max relative over the grid, vs refit"),
        row(BENCHMARK, case, "load_average_1min", os.getloadavg()[0], "",
            f"at the case's end; {torch.get_num_threads()} torch threads")]


PAPER_SAMPLES_PER_DIM = (25, 75, 250)
"""ghorbani-fig1's paper NT least squares: n = r·d at d = 450, N = 225, i.e. n/(Nd) = r/225."""


def _tangent_cases(quick: bool, paper: bool = False):
    """(activation, n, fig1 task?) of the NT cases; ``paper``: the fig1 paper's n/(Nd) ratios."""
    dim, width = NT_SIZES[quick]
    if paper:
        for r in PAPER_SAMPLES_PER_DIM:
            yield "quadratic", round(r / 225 * width * dim), True
        return
    for activation in ("relu", "quadratic"):
        for n in (2 * width * dim, width * dim // 2):
            yield activation, n, False


def _cases(quick: bool, sizes: tuple[int, ...] | None = None, kernel: bool = True,
           tangent: bool = True, threads: int | None = None, paper: bool = False):
    """Yield each case's rows as soon as it finishes (the matmul peak first)."""
    def cases(peak):
        for n in (sizes or (QUICK if quick else FULL)) if kernel else ():
            yield isolated(_case, n, peak)
        for activation, n, fig1 in _tangent_cases(quick, paper) if tangent else ():
            yield isolated(_tangent_case, activation, n, quick, threads, fig1)

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """Kernel sizes and NT cases; ``quick``: n = 1000 only and the small NT sizes."""
    return [result for rows in _cases(quick) for result in rows]


if __name__ == "__main__":
    chosen = tuple(int(a.removeprefix("--n=")) for a in sys.argv[1:] if a.startswith("--n="))
    paper = "--nt-paper" in sys.argv
    only_nt = "--nt" in sys.argv or paper
    threads = [int(a.removeprefix("--threads=")) for a in sys.argv if a.startswith("--threads=")]
    print_rows(_cases(quick="--quick" in sys.argv, sizes=chosen, kernel=not only_nt,
                      tangent=only_nt or not chosen, threads=(threads or [None])[0],
                      paper=paper), width=64)
