"""Wall times of the yehudai-shamir, xie-semirandom and damian-onestep studies end to end.

Each study is reproduced from an empty store in a temporary directory (sweeps through the
experiments platform, figure, CSV, summary) at the "default" scale, or at the "smoke" scale with
``--quick``, with the process-pool executor (one worker per core; every run limited to one BLAS
thread). Reported: total seconds and the split into sweeps / figure / summary, the number of
runs, and the runs per second of the sweep phase. The machine's float64 matmul peak is
reported in the same run, so that times from different machines can be compared.

Run: ``python benchmarks/bench_studies_more.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_gflops, row, timer  # noqa: E402

from lazylab.studies import reproduce  # noqa: E402

STUDIES = ("yehudai-shamir", "xie-semirandom", "damian-onestep")


def run(quick: bool = False) -> list[dict]:
    """One block of rows per study (see the module docstring)."""
    scale = "smoke" if quick else "default"
    rows = [row("studies_more", "machine", "float64 matmul peak", matmul_gflops(), "GFLOP/s")]
    for name in STUDIES:
        with tempfile.TemporaryDirectory() as directory, timer() as clock:
            result = reproduce(name, scale=scale, executor="pool", output_dir=directory,
                               quiet=True)
        timings, runs = result["timings"], result["runs"]
        case = f"{name} ({scale})"
        rows += [row("studies_more", case, "wall time", clock["seconds"], "s",
                     f"{runs['done']} of {runs['total']} runs done, pool executor"),
                 row("studies_more", case, "sweeps", timings["sweeps"], "s"),
                 row("studies_more", case, "figure + CSV + summary",
                     timings["figure"] + timings["summary"], "s"),
                 row("studies_more", case, "runs per second", runs["total"] / timings["sweeps"],
                     "1/s")]
    return rows


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv):
        print(entry)
