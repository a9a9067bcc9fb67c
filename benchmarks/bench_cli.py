"""Start-up of the everyday commands: ``lazylab --help``, ``list``, ``status SPEC``, ``show SPEC``.

Each command runs in a fresh interpreter (``python -m lazylab.cli …``, this checkout's ``src``
first on the path), so the time includes interpreter start and every import the command
triggers — what a user waits for. The value is the median of ``repeats`` runs (5) after one
warm-up run (the operating system's file cache). ``status`` and ``show`` run on a copy of
``examples/quadratic-width.toml`` with an empty store. The bare interpreter (``python -c pass``)
is measured the same way for reference. Targets (issues 12 and 14): ``--help`` < 0.5 s,
``status``/``show`` < 1 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import row

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src"
EXAMPLE = HERE.parent / "examples" / "quadratic-width.toml"


def _seconds(arguments: list[str], environment: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *arguments], capture_output=True, text=True,
                          env=environment, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} exited {done.returncode}: {done.stderr}")
    return elapsed


def _median(arguments: list[str], environment: dict[str, str], repeats: int) -> float:
    _seconds(arguments, environment)
    return statistics.median(_seconds(arguments, environment) for _ in range(repeats))


def run(quick: bool = False, repeats: int = 5) -> list[dict]:
    """Rows: median start-up seconds of each command (``quick`` changes nothing: seconds)."""
    environment = {**os.environ,
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE),
                                                               os.environ.get("PYTHONPATH")]))}
    root = Path(tempfile.mkdtemp(prefix="lazylab-bench-cli-"))
    try:
        spec = root / EXAMPLE.name
        shutil.copy(EXAMPLE, spec)
        cases = {"python -c pass (interpreter alone)": ["-c", "pass"],
                 "lazylab --help": ["-m", "lazylab.cli", "--help"],
                 "lazylab list": ["-m", "lazylab.cli", "list"],
                 "lazylab status SPEC": ["-m", "lazylab.cli", "status", str(spec)],
                 "lazylab show SPEC": ["-m", "lazylab.cli", "show", str(spec)]}
        load = os.getloadavg()[0]
        return [row("cli", case, "start-up, median of fresh processes",
                    _median(arguments, environment, repeats), "s",
                    f"{repeats} runs after one warm-up; load average {load:.1f}, "
                    f"{os.cpu_count()} cores")
                for case, arguments in cases.items()]
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv):
        print(f"{entry['case']:40s} {entry['value']:7.3f} {entry['unit']}  {entry['note']}",
              flush=True)
