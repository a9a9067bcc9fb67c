"""Built-in studies end to end: wall time at the default scale in a fresh store, fig1's left
panel alone (the paper's d = 450), and a rerun that finds every run done.

Each study runs through ``lazylab.studies.reproduce`` with the process pool (all cores), in a
temporary directory, exactly as ``lazylab reproduce NAME`` does. The rerun is the command
``lazylab reproduce NAME`` in a new process (interpreter start and imports included; no cache of
the first run survives). ``quick=True`` uses the smoke scale (seconds). The load average of the
machine is recorded with every row: on a shared machine the wall times are pessimistic.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import row, timer

from lazylab.studies import STUDIES, reproduce

NAMES = ("ghorbani-fig1", "ghorbani-fig2")


def _note(result: dict) -> str:
    runs = result["runs"]
    load = os.getloadavg()[0]
    return (f"{runs['executed']} runs executed of {runs['total']}, {os.cpu_count()} cores, "
            f"load average {load:.1f}; sweeps {result['timings']['sweeps']:.1f} s, figure "
            f"{result['timings']['figure']:.1f} s")


def _left_panel_only(study):
    """fig1 without its right panel: only the n = ∞ sweeps at d = 450."""
    return dataclasses.replace(study, name=study.name + "-left", sweeps=lambda scale: [
        spec for spec in study.sweeps(scale) if "-online-" not in spec["name"]])


def run(quick: bool = False, keep: str | Path | None = None) -> list[dict]:
    """Rows: fresh wall time and rerun wall time of each study; fig1's left panel alone.

    Args:
        quick: smoke scale instead of default. keep: copy each study's outputs there.
    """
    scale = "smoke" if quick else "default"
    rows = []
    root = Path(tempfile.mkdtemp(prefix="lazylab-bench-studies-"))
    try:
        cases = [(name, STUDIES[name]) for name in NAMES]
        cases.insert(1, ("ghorbani-fig1 left panel", _left_panel_only(STUDIES[NAMES[0]])))
        for label, study in cases:
            output = root / study.name
            with timer() as fresh:
                result = reproduce(study, scale=scale, executor="pool", output_dir=output,
                                   quiet=True)
            rows.append(row("studies", f"{label} ({scale})", "wall time, fresh store",
                            fresh["seconds"], "s", _note(result)))
            if study.name in STUDIES:
                command = [str(Path(sys.executable).with_name("lazylab")), "reproduce",
                           study.name, "--scale", scale, "--output", str(root), "--quiet"]
                with timer() as again:
                    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
                executed = done.stdout.split("runs done, ")[1].split(" executed")[0] \
                    if "runs done, " in done.stdout else "?"
                rows.append(row("studies", f"{label} ({scale})",
                                "wall time, rerun (new process)", again["seconds"], "s",
                                f"{executed} runs executed; exit {done.returncode}; load "
                                f"average {os.getloadavg()[0]:.1f}"))
            if keep is not None:
                shutil.copytree(output, Path(keep) / study.name, dirs_exist_ok=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv,
                     keep=next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--keep=")),
                               None)):
        print(f"{entry['case']:40s} {entry['metric']:28s} {entry['value']:9.1f} {entry['unit']}  "
              f"{entry['note']}", flush=True)
