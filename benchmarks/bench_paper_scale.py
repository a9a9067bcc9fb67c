"""Paper scale of every study, projected from timed runs (issues 11 and 12).

Nobody runs ``lazylab reproduce NAME --scale paper`` to find out how long it takes: this
benchmark expands each study's ``sweeps("paper")`` into its runs exactly as ``reproduce`` does
(spec → TOML → :func:`~lazylab.experiments.validate.build_sweep`, duplicates once), groups them
into *kinds* — (task, regime, training/solver/method/kernel, n = ∞ or samples) — and times a
few runs of each kind through the platform's single-run path
(:func:`lazylab.experiments.execute.execute_run`, one thread, as a pool worker runs it), each in
a fresh spawned process stopped after ``cap`` seconds (wall). A run is measured by its CPU
seconds (read from /proc): the run is single-threaded, so on a shared, loaded machine its CPU
time is close to its wall time on an idle core, while its wall time is inflated by the load;
both are recorded.

Which runs are timed (per kind): the *ladder* — distinct sizes (a run without its seed) sorted by
the cost model :func:`lazylab.experiments.resources.run_seconds`, starting at the cheapest size
the model puts at ≥ 1 s, each next rung ≥ 8× the previous in model cost, ending at the most
expensive. Rungs are timed from the bottom; a rung predicted (from the rungs below) to exceed
the cap is not started. When the top is not reached, reduced copies of the top size are timed
(``steps``, else ``n_train`` with ``n_centers``, else ``width`` divided by 16 and by 4), so the
runs that dominate a kind's total are extrapolated from their own sizes, not from small ones.

Projection: a run of model cost c costs t·(c / c_ref)^b CPU seconds, with (c_ref, t) the largest
timed rung at or below c (the smallest one for cheaper runs) and b the log–log slope between
the two largest timed rungs, clipped to [0.5, 2] (b = 1, i.e. the model's own complexity, with
one rung or two closer than 3× in model cost). Summed over the kind's runs; the study's wall
time on a pool of ``WORKERS`` single-threaded workers (idle cores) is
max(total / WORKERS, longest run). A run stopped at the cap enters as a lower-bound point, and
a projection resting on one is marked LOWER BOUND. Rows give, per kind, the count,
every timed rung (measured, reduced or stopped at the cap), the projection and the cost model's
total, and per study the projected serial and pool times against the model's.

Run: ``python benchmarks/bench_paper_scale.py [--study NAME] [--kind TEXT] [--cap SECONDS]
[--rungs K]`` (``--study`` and ``--kind`` repeatable; ``--kind`` keeps the kinds whose name, as
in the rows, contains the text; ``--rungs 0`` times only the reduced top of each kind).
Through ``benchmarks/run.py`` only when named: ``run.py --only paper_scale`` (it takes long).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_framed, matmul_gflops, peak_memory_mb, print_rows, row  # noqa: E402

from lazylab.experiments.catalog import default_catalog  # noqa: E402
from lazylab.experiments.execute import FAILED, execute_run  # noqa: E402
from lazylab.experiments.resources import run_kind, run_seconds  # noqa: E402
from lazylab.experiments.runs import Run  # noqa: E402
from lazylab.experiments.spec import parse_spec  # noqa: E402
from lazylab.experiments.validate import build_sweep  # noqa: E402
from lazylab.studies import STUDIES  # noqa: E402
from lazylab.studies.base import spec_to_toml  # noqa: E402

BENCHMARK = "paper_scale"
WORKERS = 2
"""``reproduce`` on 2 cores: a pool of 2 single-threaded workers (execute_run's threads=1)."""
CAP_SECONDS = 120.0
RUNGS = 3
FLOOR_SECONDS = 1.0  # the ladder starts at the cheapest size the model puts at >= this
SPACING = 8.0  # each rung >= this factor above the previous in model cost
REDUCTION = 4  # a reduced copy divides steps, else n_train, else width by this
def study_runs(name: str) -> list[Run]:
    """Every run of a study's paper scale, as ``reproduce`` expands it (duplicates once)."""
    catalog, runs = default_catalog(), {}
    for spec in STUDIES[name].sweeps("paper"):
        parsed = parse_spec(tomllib.loads(spec_to_toml(spec)), spec["name"])
        for run in build_sweep(parsed, spec["name"], catalog, max_memory_gb="inf").runs:
            runs.setdefault(run.run_id, run)
    return list(runs.values())


def group_kinds(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs by kind, kinds in decreasing total model cost."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run_kind(run)].append(run)
    return dict(sorted(groups.items(), key=lambda item: -sum(map(run_seconds, item[1]))))


def ladder(runs: list[Run], cost=None, *, floor: float = FLOOR_SECONDS,
           spacing: float = SPACING) -> list[Run]:
    """Representative runs of one kind, cheapest first (see the module docstring); ``cost``:
    Run -> model seconds, :func:`run_seconds` by default.

    Sizes are runs without their seed (the seed of the first such run is kept); the last rung is
    the most expensive size (ties: the first).
    """
    cost = cost or run_seconds
    sizes = {}
    for run in sorted(runs, key=lambda r: (cost(r), r.seed)):
        sizes.setdefault(dataclasses.replace(run, seed=0), run)
    ordered = list(sizes.values())
    start = next((i for i, r in enumerate(ordered) if cost(r) >= floor), len(ordered) - 1)
    rungs = [ordered[start]]
    for run in ordered[start + 1:]:
        if cost(run) >= spacing * cost(rungs[-1]):
            rungs.append(run)
    if cost(ordered[-1]) > cost(rungs[-1]):
        rungs.append(ordered[-1])
    return rungs


def slope(points: list[tuple[float, float]]) -> float:
    """Log–log slope of seconds against model cost between the two largest points, in [0.5, 2]."""
    if len(points) < 2:
        return 1.0
    (c1, t1), (c2, t2) = sorted(points)[-2:]
    if c2 < 3 * c1 or t1 <= 0 or t2 <= 0:  # too close in cost for a slope: the model's
        return 1.0
    return min(2.0, max(0.5, math.log(t2 / t1) / math.log(c2 / c1)))


def projected_seconds(points: list[tuple[float, float]], model: float) -> float:
    """Seconds of a run of model cost ``model`` from timed (model cost, seconds) points."""
    points = sorted(points)
    below = [p for p in points if p[0] <= model]
    reference = below[-1] if below else points[0]
    return reference[1] * (model / reference[0]) ** slope(points)


def reduced(run: Run, factor: int = REDUCTION) -> Run:
    """The run with its dominant size divided by ``factor``: steps, else n_train (and
    n_centers with it, so FALKON keeps its M/n), else width."""
    params = dict(run.regime_params)
    if isinstance(params.get("steps"), int) and params["steps"] >= factor:  # not max_steps:
        params["steps"] //= factor  # the cost model counts steps only (a budget is no cost)
        return dataclasses.replace(run, regime_params=tuple(sorted(params.items())))
    if run.n_train is not None and run.n_train >= factor:
        if isinstance(params.get("n_centers"), int):
            params["n_centers"] = max(1, params["n_centers"] // factor)
        return dataclasses.replace(run, n_train=run.n_train // factor,
                                   regime_params=tuple(sorted(params.items())))
    if isinstance(params.get("width"), int) and params["width"] >= factor:
        params["width"] //= factor
        return dataclasses.replace(run, regime_params=tuple(sorted(params.items())))
    raise ValueError(f"run {run.run_id} has no steps, n_train or width to reduce")


def describe(run: Run) -> str:
    """The sizes of a run in a few words."""
    params, task = dict(run.regime_params), dict(run.task_params)
    parts = [f"d={task['dim']}" if "dim" in task else "", f"N={params['width']}"
             if "width" in params else "", "n=inf" if run.n_train is None else f"n={run.n_train}",
             f"steps={params['steps']}" if "steps" in params else ""]
    return " ".join(p for p in parts if p)


def _execute(run: Run) -> tuple[str, float]:
    """(status, peak MB) of one run through the platform's single-run path."""
    return execute_run(run).status, peak_memory_mb()


def _ready() -> int:
    """The worker's pid; the first call also makes it import this module (lazylab, torch)."""
    return os.getpid()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Timing:
    """One timed run: CPU seconds (one thread: ≈ the wall time on an idle core), wall seconds,
    status (``stopped`` past the cap: both times are then lower bounds), peak MB."""

    cpu: float
    wall: float
    status: str
    memory: float = 0.0

    @property
    def stopped(self) -> bool:
        return self.status == "stopped"


def timed(run: Run, cap: float) -> Timing:
    """Time ``run`` in a fresh spawned process (imports excluded), stopped after ``cap`` s."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pid = pool.apply(_ready)
        cpu, start = cpu_seconds(pid), time.perf_counter()
        try:
            status, memory = pool.apply_async(_execute, (run,)).get(timeout=cap)
        except multiprocessing.TimeoutError:
            status, memory = "stopped", 0.0
        return Timing(cpu_seconds(pid) - cpu, time.perf_counter() - start, status, memory)


def _rung_row(case: str, run: Run, timing: Timing, label: str) -> dict:
    stopped = "STOPPED at the cap (lower bound); " if timing.stopped else ""
    return row(BENCHMARK, case, "cpu_seconds_per_run", timing.cpu, "s",
               f"{stopped}{label} {describe(run)}; wall {timing.wall:.3g} s at load "
               f"{os.getloadavg()[0]:.1f}; model {run_seconds(run):.3g} s; status "
               f"{timing.status}; peak {timing.memory:.0f} MB")


def _time_ladder(case: str, candidates: list[tuple[Run, str]], cap: float):
    """Time candidates cheapest first, skipping those predicted past the cap: rows, (model
    cost, CPU seconds) points, and whether a run was stopped at the cap (its point, a lower
    bound, then steepens the slope). The prediction in wall seconds divides the projected CPU
    seconds by the CPU share the last run got."""
    rows, points, share = [], [], 1.0
    for run, label in candidates:
        if points and projected_seconds(points, run_seconds(run)) / share > cap:
            break
        timing = timed(run, cap)
        rows.append(_rung_row(case, run, timing, label))
        if timing.status == FAILED:  # e.g. a reduced copy too small to split: no timing
            continue
        points.append((run_seconds(run), max(timing.cpu, 1e-3)))
        share = min(1.0, max(timing.cpu / timing.wall, 0.05)) if timing.wall > 0 else 1.0
        if timing.stopped:
            return rows, points, True
    return rows, points, False


def _top_reduced(top: Run) -> list[tuple[Run, str]]:
    """The most expensive size reduced by REDUCTION² and REDUCTION (what can be reduced)."""
    candidates = []
    for power in (2, 1):
        try:
            factor = REDUCTION ** power
            candidates.append((reduced(top, factor), f"top reduced 1/{factor}"))
        except ValueError:
            continue
    return candidates


def time_kind(case: str, runs: list[Run], cap: float, rungs: int):
    """Rows of one kind's timed runs, its (model cost, CPU seconds) points for the projection,
    and whether the projection rests on a lower bound (the largest timed size was stopped).

    The ladder is timed from the bottom; when its top is not reached, the top size reduced by
    REDUCTION² and REDUCTION is timed too, so that the runs that dominate the total are
    extrapolated by a factor REDUCTION at most from a measurement at their own other sizes."""
    steps = ladder(runs)
    rows, points, stopped = _time_ladder(case, [(r, "timed") for r in steps[:rungs]], cap)
    finished = points[:len(points) - stopped]
    stops = points[len(points) - stopped:]
    if not finished or finished[-1][0] < run_seconds(steps[-1]):
        more, top, top_stopped = _time_ladder(case, _top_reduced(steps[-1]), cap)
        rows += more
        finished += top[:len(top) - top_stopped]
        stops += top[len(top) - top_stopped:]
    points = sorted(finished + stops)
    largest = max((c for c, _ in finished), default=-math.inf)
    return rows, points, any(c >= largest for c, _ in stops)


def kind_rows(study: str, kind: str, runs: list[Run], cap: float, rungs: int):
    """Rows of one kind (rungs, count, projection, model), its runs' projected seconds, and
    whether they are a lower bound."""
    case = f"{study} {kind}"
    rows, points, bound = time_kind(case, runs, cap, rungs)
    basis = "LOWER BOUND (a timed run reached the cap); " if bound else ""
    if not points:  # every timed run failed: the cost model's guess, said so
        points, basis = [(1.0, 1.0)], "NOT TIMED (every timed run failed): the cost model; "
    seconds = [projected_seconds(points, run_seconds(run)) for run in runs]
    model = sum(map(run_seconds, runs))
    sizes = sorted({describe(run) for run in runs}, key=len)
    rows += [row(BENCHMARK, case, "count", len(runs), "runs", f"{len(sizes)} sizes, e.g. "
                 f"{sizes[0]} … {describe(max(runs, key=run_seconds))}"),
             row(BENCHMARK, case, "projected_cpu_total", sum(seconds), "s",
                 f"{basis}longest run {max(seconds):.3g} s; slope {slope(points):.2f}"),
             row(BENCHMARK, case, "model_total", model, "s",
                 f"run_seconds; projected / model = {sum(seconds) / model:.3g}")]
    return rows, seconds, bound


def study_rows(study: str, cap: float, rungs: int, kinds: list[str] | None = None):
    """Yield each kind's rows of a study as it finishes, then the study's totals (of the kinds
    whose name contains one of ``kinds``, when given)."""
    runs = [r for r in study_runs(study) if not kinds or any(k in run_kind(r) for k in kinds)]
    total, longest, model, bounded = 0.0, 0.0, sum(map(run_seconds, runs)), []
    for kind, members in group_kinds(runs).items():
        rows, seconds, bound = kind_rows(study, kind, members, cap, rungs)
        total, longest = total + sum(seconds), max(longest, max(seconds))
        bounded += [kind] if bound else []
        yield rows
    wall = max(total / WORKERS, longest)
    basis = f"LOWER BOUND ({', '.join(bounded)}); " if bounded else ""
    case = f"{study} (all {len(runs)} runs)"
    yield [row(BENCHMARK, case, "projected_cpu_serial", total, "s", f"model {model:.4g} s"),
           row(BENCHMARK, case, "projected_wall_2_workers", wall, "s",
               f"{basis}{wall / 60:.1f} min = max(serial / {WORKERS}, longest run "
               f"{longest:.3g} s); model "
               f"{max(model / WORKERS, max(map(run_seconds, runs))) / 60:.1f} min")]


def cpu_matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """float64 matmul GFLOP per CPU second on one thread (best of repeats): on a loaded machine
    it stays near the idle one-thread peak when CPU seconds are a faithful clock."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return matmul_gflops(size, repeats, clock=time.process_time)
    finally:
        torch.set_num_threads(previous)


def _cases(studies, cap: float, rungs: int, kinds=None):
    def cases(peak):
        yield [row(BENCHMARK, "float64 matmul 2048", "fraction_of_quiet_peak", peak / 112.0, "",
                   "quiet machine: 112 GFLOP/s (2 threads); below 1 = wall times are slowed"),
               row(BENCHMARK, "float64 matmul 1024, 1 thread", "gflop_per_cpu_second",
                   cpu_matmul_gflops(), "GFLOP/s", "CPU seconds as the clock: near the idle "
                   "one-thread peak (about 112 / 2) when the CPU times below are faithful")]
        for study in studies:
            yield from study_rows(study, cap, rungs, kinds)

    return machine_framed(BENCHMARK, cases)


def run(quick: bool = False, studies=None, cap: float = CAP_SECONDS,
        rungs: int = RUNGS) -> list[dict]:
    """All rows; ``quick``: one rung per kind, 30 s cap (a rough projection in minutes)."""
    if quick:
        cap, rungs = min(cap, 30.0), 1
    return [r for rows in _cases(studies or list(STUDIES), cap, rungs) for r in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", choices=sorted(STUDIES),
                        help="a study to profile (repeatable; default: all)")
    parser.add_argument("--cap", type=float, default=CAP_SECONDS, help="seconds per timed run")
    parser.add_argument("--rungs", type=int, default=RUNGS, help="timed runs per kind at most")
    parser.add_argument("--kind", action="append", help="only kinds whose name contains this, "
                        "e.g. falkon or network/online (repeatable)")
    args = parser.parse_args(argv)
    print_rows(_cases(args.study or list(STUDIES), args.cap, args.rungs, args.kind), width=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
