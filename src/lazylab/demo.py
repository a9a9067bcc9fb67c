"""A one-minute demonstration: exact RF and NT population risks of a quadratic target.

Run ``python -m lazylab.demo``. For y = xᵀBx − Tr B with B = diag(Exp(1))/√d (Ghorbani et al.
2019, Fig. 1 setting at a smaller d), prints R/R₀ at n = ∞ for random features (ReLU with an
offset) and for the neural tangent model (ReLU and u²) at a few widths, each computed exactly
by lazylab's Gaussian engine, next to the paper's large-d predictions (eq. 13, isotropic Γ).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from lazylab.models import optimal_head, optimal_tangent
from lazylab.tasks import TASKS


def _nt_prediction(rho: float, trace_ratio: float) -> float:
    """Eq. (13), NT row: (1 − ρ)₊² + ρ(1 − ρ)₊ Tr(B)²/(d‖B‖²_F)."""
    gap = max(1.0 - rho, 0.0)
    return gap**2 + rho * gap * trace_ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 25, 50, 100, 200])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    task = TASKS["quadratic"](rng=rng, dim=args.dim)
    trace_ratio = float(torch.trace(task.matrix) ** 2 / (args.dim * (task.matrix**2).sum()))
    print(f"quadratic target, d = {args.dim}, B = diag(Exp(1))/sqrt(d); "
          f"R/R0 at n = infinity (exact), R0 = Var y = {task.null_risk:.4f}")
    print(f"{'N':>6} {'RF relu':>9} {'NT relu':>9} {'NT u^2':>9} {'eq.13 NT':>9} {'seconds':>8}")
    for width in args.widths:
        start = time.perf_counter()
        weights = torch.as_tensor(rng.standard_normal((width, args.dim)) / math.sqrt(args.dim))
        risks = [optimal_head(task, "relu", weights).diagnostics["population_risk"],
                 optimal_tangent(task, "relu", weights).diagnostics["population_risk"],
                 optimal_tangent(task, "quadratic", weights).diagnostics["population_risk"]]
        normalized = [r / task.null_risk for r in risks]
        prediction = _nt_prediction(width / args.dim, trace_ratio)
        print(f"{width:>6} " + " ".join(f"{r:>9.4f}" for r in normalized)
              + f" {prediction:>9.4f} {time.perf_counter() - start:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
