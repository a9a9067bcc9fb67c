"""Run every benchmark and write benchmarks/RESULTS.md (a markdown table).

Usage: ``python benchmarks/run.py [--quick] [--only NAME ...]`` where NAME is a module suffix
(``population``, ``solvers``, ``regimes``, ``training``). Ratios are measured within one run.
Benchmarks in ``ON_REQUEST`` (``paper_scale``: every study's paper scale, tens of minutes) run
only when named in ``--only``.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ON_REQUEST = {"paper_scale"}


def _modules(only):
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if n.removeprefix("bench_") in only
            or not only and n.removeprefix("bench_") not in ON_REQUEST]


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds each")
    parser.add_argument("--only", nargs="*", default=[], help="benchmark names to run")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    lines = [f"# Benchmarks ({'quick' if args.quick else 'full'} sizes)", "",
             f"Machine: {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             "| benchmark | case | metric | value | unit | note |", "|---|---|---|---|---|---|"]
    for name in _modules(args.only):
        start = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        for entry in importlib.import_module(name).run(quick=args.quick):
            lines.append("| " + " | ".join(_format(entry[k]) for k in
                                            ("benchmark", "case", "metric", "value", "unit", "note"))
                         + " |")
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
