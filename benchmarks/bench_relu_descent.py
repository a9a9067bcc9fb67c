"""Population gradient descent of ReLU networks through the exact engine, per step.

lazy-rich's ReLU part (``lazylab.studies._lazy_rich_relu``: y = relu(w*·x) with a target bias of
0.0, both layers trained, standard parameterization, momentum 0.9) spends its time in the
engine's pair expectations under autograd. Two routes for the unbiased relu × relu pairs:

* "closed form": the arc-cosine form for every pair, collinear ones included (its ρ-derivative
  π − arccos ρ is taken directly, finite at ρ = ±1: ``activations.families._ArcCosineCore``),
  and a zero bias that takes no gradient counted as no bias;
* "special pairs": what the engine did before (restored here by switching both off): collinear
  pairs — every unit with itself — by exact 1-D rules, and the target's 0.0 bias through the
  biased forms (the bivariate normal CDF).

Per-step CPU time of one thread = (t_K − t_1)/(K − 1) of fixed-budget fits (the fit's fixed cost
cancels), both routes interleaved in rounds, best round; the ratio is special / closed; the two
routes' risks after K steps are compared (the same trajectory up to round-off). d = 64,
N ∈ {4, 16}, α = 1 (the paper scale's d and two of its widths), K = 400 (quick: d = 16,
N = 4, K = 200).

Run: ``python benchmarks/bench_relu_descent.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_framed, print_rows, row  # noqa: E402

import lazylab.gaussian.dual as dual  # noqa: E402
from lazylab.models.network import Network  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "relu_descent"
FULL = dict(dim=64, widths=(4, 16), steps=400, rounds=3)
QUICK = dict(dim=16, widths=(4,), steps=200, rounds=2)
ROUTES = ("closed form", "special pairs")


@contextmanager
def _route(name: str):
    """The engine with the closed form for every relu pair, or its former special-pair route."""
    smooth, no_bias = dual._smooth_closed, dual._no_bias
    if name == "special pairs":
        dual._smooth_closed = lambda *args: False
        dual._no_bias = lambda bias: bias is None
    try:
        yield
    finally:
        dual._smooth_closed, dual._no_bias = smooth, no_bias


def _fit(route: str, width: int, dim: int, steps: int) -> tuple[float, float]:
    """(CPU seconds, population risk) of a fixed-budget fit of lazy-rich's ReLU network."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=dim, weight_norm=1.0,
                                  bias=0.0, activation="relu")
    network = Network(width=width, activation="relu", train="both", parameterization="standard",
                      rate_scaling="none", training="population", laziness=1.0,
                      learning_rate=0.5, momentum=0.9, tol=1e-30, max_steps=steps)
    with _route(route):
        start = time.process_time()
        model = network.fit(task, rng=np.random.default_rng(1))
        return time.process_time() - start, float(model.diagnostics["population_risk"])


def step_case(dim: int, width: int, steps: int, rounds: int) -> list[dict]:
    """Per-step CPU seconds of both routes, interleaved; ratio special / closed."""
    best = {route: float("inf") for route in ROUTES}
    risks = {}
    for _ in range(rounds):
        for route in ROUTES:
            long, risks[route] = _fit(route, width, dim, steps)
            short, _ = _fit(route, width, dim, 1)
            best[route] = min(best[route], (long - short) / (steps - 1))
    case = f"d={dim} N={width} alpha=1 relu"
    gap = abs(risks["closed form"] - risks["special pairs"]) / abs(risks["special pairs"])
    return [row(BENCHMARK, case, "step_closed_form", best["closed form"], "s",
                f"CPU, one thread, best of {rounds} rounds of {steps}-step fits"),
            row(BENCHMARK, case, "step_special_pairs", best["special pairs"], "s", "same rounds"),
            row(BENCHMARK, case, "speedup", best["special pairs"] / best["closed form"], "x",
                "special pairs / closed form"),
            row(BENCHMARK, case, "risk_relative_gap", gap, "",
                f"after {steps} steps: {risks['closed form']:.15g} vs "
                f"{risks['special pairs']:.15g}")]


def _cases(quick: bool):
    sizes = QUICK if quick else FULL

    def cases(_peak):
        for width in sizes["widths"]:
            yield step_case(sizes["dim"], width, sizes["steps"], sizes["rounds"])

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False) -> list[dict]:
    """Both routes at lazy-rich's paper d (quick: d = 16)."""
    torch.set_num_threads(1)
    return [result for rows in _cases(quick) for result in rows]


if __name__ == "__main__":
    torch.set_num_threads(1)
    print_rows(_cases("--quick" in sys.argv), width=40)
