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
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import isolated, machine_framed, print_rows, row, timer  # noqa: E402

from lazylab.experiments.selection import Criterion, Selection, fit_with_selection  # noqa: E402
from lazylab.models import Kernel  # noqa: E402
from lazylab.solvers import ridge_path  # noqa: E402
from lazylab.tasks import Dataset  # noqa: E402

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


def _sample(rng: np.random.Generator, n: int) -> Dataset:
    x = torch.from_numpy(rng.standard_normal((n, DIM)))
    y = (torch.relu(x[:, 0]) + (x.square().mean(1) - 1.0) * math.sqrt(DIM) / 2
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


def _cases(quick: bool, sizes: tuple[int, ...] | None = None):
    """Yield each case's rows as soon as it finishes (the matmul peak first)."""
    def cases(peak):
        for n in sizes or (QUICK if quick else FULL):
            yield isolated(_case, n, peak)

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """Both sizes; ``quick``: n = 1000 only."""
    return [result for rows in _cases(quick) for result in rows]


if __name__ == "__main__":
    chosen = tuple(int(a.removeprefix("--n=")) for a in sys.argv[1:] if a.startswith("--n="))
    print_rows(_cases(quick="--quick" in sys.argv, sizes=chosen), width=56)
