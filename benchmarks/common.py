"""Shared measurement helpers for the benchmarks (not part of the package)."""

from __future__ import annotations

import multiprocessing
import resource
import time
from contextlib import contextmanager

import torch


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measured float64 matrix-multiply throughput of this machine, in GFLOP/s (best of repeats)."""
    a = torch.randn(size, size, dtype=torch.float64)
    b = torch.randn(size, size, dtype=torch.float64)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


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
