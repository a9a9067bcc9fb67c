"""Sizes checked before memory is spent: each run's peak memory estimated from its sizes.

Validation calls :func:`check_resources` before any task is built, so a spec whose runs cannot
fit in this machine's memory (or that expands to an unreasonable number of runs) is refused
with one :class:`~lazylab.experiments.spec.SpecError` naming the parameter, the estimate and
what would fit, instead of a multi-terabyte allocation, an out-of-memory kill or a hang.

The estimate (bytes) is 8 × the float64 entries of the largest arrays a run holds at once:

==========================  ==============================================================
part                        entries
==========================  ==============================================================
task                        3d² (quadratic: B and a preset's temporaries), 4d² (mixture:
                            Σ, Δ and their square roots), else O(d)
data                        (n + n_test)(d + 1): training and test sets
random features             n = ∞: 3N² (the N × N dual matrix, its factor, a temporary);
                            finite n: min(nN, 2.5·10⁷) (streamed above) + 2N²
NT / semi-random            n = ∞: 6N² + 10Nd (operator blocks, PCG vectors); finite n,
                            direct solver: 2n(Nd + N) (features and a copy); CG: 4096N + 10Nd
kernel                      Cholesky: 2n²; FALKON: nM + 2M², M = n_centers or ⌈5√n⌉
network                     n = ∞: 4N² + 6Nd; finite n: 6Nd (parameters, gradients, Adam
                            states, W₀) + 4·batch·N
one step                    n = ∞: 3N²; finite n: 3nN + 3Nd + N²
==========================  ==============================================================

It is a lower bound of the peak (Python, torch and BLAS workspaces come on top), so a refused
spec would certainly not fit. The limit is, first found: ``lazylab run --max-memory GB`` (the
``max_memory_gb`` argument of :func:`check_resources`), the environment variable
``LAZYLAB_MAX_MEMORY_GB``, the spec's ``[sweep] max_memory_gb``, and otherwise ``MemAvailable``
of ``/proc/meminfo``. Each override is a number of GB, or ``inf`` to disable the check, for a
machine whose memory is not what this one reports (the command line and the environment
describe the machine the command runs on, so they win over what the spec's author wrote).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lazylab.experiments.selection import DEFAULT_GRIDS, Selection
from lazylab.experiments.spec import POPULATION, SpecError, SpecFile

__all__ = ["MAX_RUNS", "MEMORY_VARIABLE", "available_memory", "memory_limit", "run_memory",
           "check_resources", "run_seconds", "run_kind", "RUN_OVERHEAD_SECONDS",
           "FLOPS_PER_SECOND"]

MAX_RUNS = 100_000
"""A sweep may expand to at most this many runs (a store and a status table stay usable)."""
MEMORY_VARIABLE = "LAZYLAB_MAX_MEMORY_GB"
BYTES = 8  # float64
GB = 1e9
_TASK_SQUARES = {"quadratic": 3, "gaussian_mixture": 4}
_DIRECT_ENTRIES = 2.5e7  # neural_tangent's solver="auto" forms features up to this many entries
_CHOLESKY_LIMIT = 20_000  # kernel's method="auto" uses Cholesky up to this many samples
_BLOCK = 4096
_DENSE_DUAL = (4096, 64)  # models._tangent_dual.use_dense: n ≤ 4096, n² ≤ 64p, n ≤ p/2


def available_memory(meminfo: str | Path = "/proc/meminfo") -> float | None:
    """``MemAvailable`` in bytes, or None where the system does not report it."""
    try:
        text = Path(meminfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) * 1024.0
    return None


def memory_limit(max_memory_gb: float | str | None = None,
                 spec_memory_gb: float | None = None) -> float | None:
    """Bytes a run may use (None: unchecked), from the first override given.

    Args:
        max_memory_gb: the command line's ``--max-memory`` (GB; ``inf`` disables the check).
        spec_memory_gb: the spec's ``[sweep] max_memory_gb``.

    Order: ``max_memory_gb``, ``LAZYLAB_MAX_MEMORY_GB``, ``spec_memory_gb``, the available memory.
    """
    environment = os.environ.get(MEMORY_VARIABLE)
    for value, file, field in ((max_memory_gb, "<command line>", "--max-memory"),
                               (environment, "<environment>", MEMORY_VARIABLE),
                               (spec_memory_gb, "<spec>", "sweep.max_memory_gb")):
        if value is not None and str(value).strip():
            return _gigabytes(value, file, field)
    return available_memory()


def _gigabytes(value: float | str, file: str, field: str) -> float | None:
    """Bytes of a positive number of GB (None for ``inf``); SpecError naming the source."""
    try:
        limit = float(value)
    except ValueError:
        raise SpecError(file, field, f"{value!r} is not a number of GB; "
                        "allowed: a positive number or inf") from None
    if not limit > 0:
        raise SpecError(file, field, f"{value!r} must be positive")
    return None if math.isinf(limit) else limit * GB


def _regime_parts(regime: str, options: dict[str, Any], n: int | None,
                  dim: int) -> list[tuple[float, str, str]]:
    """(entries, parameter, what would fit) for the large arrays of one regime's fit."""
    width = int(options.get("width") or 0)
    if regime == "random_features":
        if n is None:
            return [(3.0 * width ** 2, "width", "the n = ∞ fit forms the N × N dual matrix; use "
                     "a smaller width, or a finite n_train (streaming ridge on the features)")]
        return [(min(n * width, _DIRECT_ENTRIES) + 2.0 * width ** 2, "width",
                 "the ridge normal equations are N × N; use a smaller width")]
    if regime in ("neural_tangent", "semi_random"):
        if n is None:
            return [(6.0 * width ** 2 + 10.0 * width * dim, "width", "the n = ∞ tangent fit "
                     "holds N × N operator blocks; use a smaller width, or a finite n_train with "
                     "solver = \"cg\" (matrix-free conjugate gradient)")]
        entries = n * (width * dim + width)
        if options.get("solver") == "direct" or (options.get("solver", "auto") == "auto"
                                                 and entries <= _DIRECT_ENTRIES):
            return [(2.0 * entries, "n_train", "the direct solver forms the n × (Nd + N) "
                     "feature matrix; use solver = \"cg\" (matrix-free conjugate gradient)")]
        parts = [(_BLOCK * width + 10.0 * width * dim, "width", "use a smaller width")]
        if _dense_dual(n, width * dim + (width if options.get("train_head") else 0)):
            parts.append((3.0 * n * n, "n_train", "the dense dual holds n × n matrices"))
        return parts
    if regime == "kernel" and n is not None:
        method = options.get("method", "auto")
        if method == "cholesky" or (method == "auto" and n <= _CHOLESKY_LIMIT):
            return [(2.0 * n ** 2, "n_train", "Cholesky kernel ridge forms the n × n kernel; "
                     "use method = \"falkon\" (memory O(n√n))")]
        centers = options.get("n_centers") or math.ceil(5 * math.sqrt(n))
        return [(n * centers + 2.0 * centers ** 2, "n_train", "use fewer n_centers")]
    if regime == "network":
        if n is None:
            return [(4.0 * width ** 2 + 6.0 * width * dim, "width", "use a smaller width")]
        batch = int(options.get("batch_size") or 100)
        return [(6.0 * width * dim + 4.0 * batch * width, "width", "use a smaller width")]
    if regime == "one_step":
        if n is None:
            return [(3.0 * width ** 2, "width", "use a smaller width")]
        return [(3.0 * n * width + 3.0 * width * dim + width ** 2, "width",
                 "the step and the ridge fit form the n × N features; use a smaller width")]
    return [(float(width) * (dim + (n or 0)), "width", "use a smaller width")]


def _dense_dual(samples: int, unknowns: int) -> bool:
    """Whether the NT / semi-random sample fit takes the dense dual (its Gram, the
    eigenvectors and a temporary: three n × n matrices); mirrors
    :func:`lazylab.models._tangent_dual.use_dense` without importing torch."""
    most, ratio = _DENSE_DUAL
    return 2 * samples <= unknowns and samples <= most and samples * samples <= ratio * unknowns


def run_memory(task: str, task_options: dict[str, Any], regime: str,
               regime_options: dict[str, Any], n_train: int | None,
               n_test: int) -> tuple[float, str, str]:
    """Estimated peak bytes of one run, the parameter of its largest part, and what would fit.

    Args:
        task, regime: registry names; ``*_options``: their parameters (defaults included).
        n_train: training samples, or None for the population (n = ∞).
        n_test: test samples.
    """
    dim = int(task_options.get("dim") or 0)
    task_entries = _TASK_SQUARES[task] * float(dim) ** 2 if task in _TASK_SQUARES else 4.0 * dim
    samples = (n_train or 0) + n_test
    parts = [(task_entries, "dim", "use a smaller dim (the task stores d × d matrices)"),
             (samples * (dim + 1.0), "n_train" if (n_train or 0) > n_test else "n_test",
              "use fewer samples")]
    parts.extend(_regime_parts(regime, regime_options, n_train, dim))
    total = BYTES * sum(entries for entries, _, _ in parts)
    _, parameter, advice = max(parts, key=lambda part: part[0])
    return total, parameter, advice


RUN_OVERHEAD_SECONDS = 0.2
"""Seconds every run costs whatever its size (task construction, seeding, risk, store write)."""
FLOPS_PER_SECOND = 2e9
"""Floating-point operations per second one core sustains on the dense work of a run."""


def run_seconds(run: Any) -> float:
    """A cost proxy for one run (seconds on one core; for scheduling and the ETA, not a promise).

    ``RUN_OVERHEAD_SECONDS + G · flops / FLOPS_PER_SECOND``, where the dense work of a run
    whose arrays hold ``E`` entries at once (:func:`run_memory`'s estimate / 8) is ``E^{3/2}``
    flops (an N × N solve costs N³), plus ``6 · steps · batch · N · d`` for iterative training
    (``steps``, else the budget ``max_steps`` of a fit run to tolerance: an upper bound), and
    ``G`` is the product of the lengths of the regime's selection grids (one fit per value).
    Within a kind of run (:func:`run_kind`) the estimate orders runs well; between kinds it can
    be off by 10–100×, which the sweep ETA corrects from the finished runs.

    Args:
        run: a :class:`~lazylab.experiments.runs.Run` (its task, regime, their parameters as
            given in the spec, n_train and n_test).
    """
    task_options, options = dict(run.task_params), dict(run.regime_params)
    sizes = {k: v for k, v in options.items() if isinstance(v, (int, float, str))}  # no selection
    memory, _, _ = run_memory(run.task, task_options, run.regime, sizes, run.n_train, run.n_test)
    flops = (memory / BYTES) ** 1.5
    steps = sizes.get("steps") or sizes.get("max_steps")
    if steps:
        batch = sizes.get("batch_size") or run.n_train or 100
        flops += 6.0 * steps * batch * sizes.get("width", 1) * int(task_options.get("dim") or 1)
    return RUN_OVERHEAD_SECONDS + _grid_size(options) * flops / FLOPS_PER_SECOND


def _grid_size(options: dict[str, Any]) -> int:
    """Fits one run makes at most: the product of its selection grids' lengths, plus the
    values an ``extend`` may add (one fit each), 1 without selection.

    A selected field is a :class:`~lazylab.experiments.selection.Selection` (its ``grid``, or
    the field's default grid) or, in a spec not yet parsed, a ``{"grid": [...]}`` table. Regimes
    with a ridge path fit a grid for less than one fit per value: an upper bound there.
    """
    size, extra = 1, 0
    for name, value in options.items():
        if isinstance(value, Selection):
            grid = value.grid if value.grid is not None else DEFAULT_GRIDS[name](1.0)
            extra += value.extend
        elif isinstance(value, dict) and isinstance(value.get("grid"), (list, tuple)):
            grid = value["grid"]
            extra += int(value.get("extend", 0) or 0)
        else:
            continue
        size *= max(len(grid), 1)
    return size + extra


_MODES = ("training", "solver", "method", "kind")
"""Regime parameters that choose the algorithm (population GD or SGD, CG or direct, …)."""


def run_kind(run: Any) -> str:
    """``task/regime[/mode…] n=inf|n``: runs of one kind take the same solver, so their costs
    scale alike, and :func:`run_seconds` is comparable within a kind but can be off by 10–100×
    between kinds (measured on the studies' paper scales: 25–75× too high for N³ solves, 20–100×
    too low for population GD). The ETA calibrates each kind on its own finished runs."""
    params = dict(run.regime_params)
    modes = [str(params[m]) for m in _MODES if isinstance(params.get(m), str)]
    return "/".join([run.task, run.regime, *modes]) + (" n=inf" if run.n_train is None else " n")


def _with_defaults(declared: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    options = {name: p.default for name, p in declared.items()
               if getattr(p, "default", None) is not None and not getattr(p, "required", True)}
    options.update(combo)
    return options


def _field(parameter: str, spec: SpecFile, regime: str) -> str:
    if parameter in ("n_train", "n_test") or parameter in spec.sweep.grids:
        return f"sweep.{parameter}"
    if parameter == "dim":
        return "task.dim"
    for index, section in enumerate(spec.regime):
        if section.name == regime and parameter in section.params:
            return f"regime[{index}].{parameter}"
    return f"regime.{parameter}"


def _check_run_count(spec: SpecFile, path: Path, task_combos: list, regime_combos: list) -> None:
    factors = {"sweep.seeds": len(spec.sweep.seeds), "task": len(task_combos),
               "regime": len(regime_combos), "sweep.n_train": len(spec.sweep.n_train)}
    total = math.prod(factors.values())
    if total > MAX_RUNS:
        field = max(factors, key=factors.get)
        raise SpecError(path, field, f"the sweep expands to {total:,} runs (seeds × task "
                        f"settings × regime settings × n_train = {' × '.join(map(str, factors.values()))}); "
                        f"allowed: at most {MAX_RUNS:,}; split it into several specs")


def check_resources(spec: SpecFile, path: str | Path, task_declared: dict[str, Any],
                    task_combos: list[dict[str, Any]],
                    regime_combos: list[tuple[str, dict[str, Any]]],
                    regime_declared: dict[str, dict[str, Any]] | None = None,
                    max_memory_gb: float | str | None = None) -> None:
    """Refuse a sweep whose runs are too many or whose largest run cannot fit in memory.

    Args:
        spec: the structurally valid spec; ``path`` its file (for the message).
        task_declared: the task builder's parameters (their defaults complete each combination).
        task_combos, regime_combos: the expanded task and (regime name, parameters) settings.
        regime_declared: regime name → its declared parameters (defaults), when known.
        max_memory_gb: the command line's limit (GB), which wins over every other
            (:func:`memory_limit`).

    Raises:
        SpecError: naming the parameter of the largest array, the estimate, the limit and
            what would fit.
    """
    path = Path(path)
    _check_run_count(spec, path, task_combos, regime_combos)
    limit = memory_limit(max_memory_gb, spec.sweep.max_memory_gb)
    if limit is None:
        return
    worst = _largest_run(spec, task_declared, task_combos, regime_combos,
                         regime_declared or {})
    if worst is not None and worst[0][0] > limit:
        (estimate, parameter, advice), regime, sizes = worst
        raise SpecError(path, _field(parameter, spec, regime),
                        f"a {regime} run with {parameter} = {sizes.get(parameter)} needs at "
                        f"least {estimate / GB:.3g} GB and {limit / GB:.3g} GB are available; "
                        f"{advice}; on a bigger machine pass --max-memory GB, or set "
                        f"{MEMORY_VARIABLE} or [sweep] max_memory_gb")


def _largest_run(spec: SpecFile, task_declared: dict[str, Any], task_combos: list,
                 regime_combos: list, regime_declared: dict[str, dict[str, Any]]):
    """((bytes, parameter, advice), regime, sizes) of the run with the largest estimate."""
    worst = None
    for task_combo in task_combos:
        task_options = _with_defaults(task_declared, task_combo)
        for regime, combo in regime_combos:
            options = _with_defaults(regime_declared.get(regime, {}), combo)
            for n_train in spec.sweep.n_train:
                n = None if n_train == POPULATION else int(n_train)
                estimate = run_memory(spec.task.name, task_options, regime, options, n,
                                      spec.sweep.n_test)
                if worst is None or estimate[0] > worst[0][0]:
                    sizes = {**task_options, **options, "n_train": n_train,
                             "n_test": spec.sweep.n_test}
                    worst = (estimate, regime, sizes)
    return worst
