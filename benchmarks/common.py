"""Shared measurement helpers for the benchmarks (not part of the package)."""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from contextlib import contextmanager

import torch


def matmul_gflops(size: int = 2048, repeats: int = 5, *, clock=time.perf_counter) -> float:
    """Measured float64 matrix-multiply throughput of this machine, in GFLOP/s (best of repeats).

    ``clock`` is the timer: wall time by default; ``time.process_time`` gives GFLOP per CPU
    second, which on a loaded machine stays near the idle peak of the threads in use.
    """
    a = torch.randn(size, size, dtype=torch.float64)
    b = torch.randn(size, size, dtype=torch.float64)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        a @ b
        best = min(best, clock() - start)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux ru_maxrss is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer():
    """Context manager yielding a dict whose 'seconds' is filled on exit."""
    out = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def row(benchmark: str, case: str, metric: str, value: float, unit: str, note: str = "") -> dict:
    """One result row."""
    return {"benchmark": benchmark, "case": case, "metric": metric, "value": value,
            "unit": unit, "note": note}


def isolated(function, *args) -> list[dict]:
    """Run a benchmark case in a fresh spawned process, so ru_maxrss is that case's own peak."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def machine_framed(benchmark: str, cases):
    """Yield the measured matmul peak's row, then each list of rows from ``cases(peak)`` as it
    finishes, then the machine's load average (a loaded shared machine explains odd numbers)."""
    load_before = os.getloadavg()[0]
    peak = matmul_gflops()
    yield [row(benchmark, "float64 matmul 2048", "throughput", peak, "GFLOP/s", "common.py")]
    yield from cases(peak)
    yield [row(benchmark, "machine", "load_average_1min", os.getloadavg()[0], "",
               f"{load_before:.2f} at start, {os.cpu_count()} cores (shared machine?)")]


def print_rows(cases, width: int = 56) -> None:
    """Print each row of each yielded list as soon as it arrives (``python bench_X.py``)."""
    for rows in cases:
        for result in rows:
            print(f"{result['case']:<{width}} {result['metric']:<24} {result['value']:>12.4g} "
                  f"{result['unit']:<8} {result['note']}", flush=True)
