"""``lazylab reproduce NAME|all``: run built-in studies from the command line.

    lazylab reproduce NAME|all [--scale smoke|default|paper]
                     [--executor inprocess|pool|dask] [--workers N]
                     [--scheduler tcp://HOST:PORT | --dask-workers K] [--output DIR] [--quiet]

Each study writes into ``DIR/NAME`` (default ``results/NAME``): its spec files, its SQLite store,
the figure (PNG, PDF), the CSV of its points and ``summary.md``. Rerunning reads finished runs
from the store; an interrupted study resumes. An unknown study or a bad option prints one line
``lazylab: error: …`` and exits with status 2. This module holds no mathematics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_reproduce_parser", "run_reproduce"]

EXIT_USAGE = 2
ALL = "all"


def add_reproduce_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``reproduce`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from lazylab.studies.base import SCALES
    parser = subparsers.add_parser(
        "reproduce", help="run a built-in study (a paper's figure) end to end",
        description="Run a built-in study: its sweeps (resumable), figure, CSV and summary. "
                    "`lazylab list` shows the studies.")
    parser.add_argument("study", metavar="NAME|all", help="a study name, or 'all'")
    parser.add_argument("--scale", choices=SCALES, default="default",
                        help="problem sizes (default: default; paper: the paper's sizes; "
                             "smoke: seconds)")
    parser.add_argument("--executor", choices=("inprocess", "pool", "dask"),
                        help="where runs execute (default: pool; dask when --scheduler or "
                             "--dask-workers is given)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="pool processes (default: all cores)")
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                      help="run on an existing Dask cluster")
    dask.add_argument("--dask-workers", type=int, metavar="K",
                      help="start a Dask LocalCluster with K worker processes")
    parser.add_argument("--output", type=Path, metavar="DIR", default=Path("results"),
                        help="parent directory; each study writes into DIR/NAME "
                             "(default: results)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


class _Usage(Exception):
    """A bad command line: printed as one line, exit status 2."""


def _executor(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    dask_options = args.scheduler is not None or args.dask_workers is not None
    name = args.executor or ("dask" if dask_options else "pool")
    for option in ("workers", "dask_workers"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise _Usage(f"--{option.replace('_', '-')}: {value} must be a positive integer")
    if name != "dask" and dask_options:
        raise _Usage(f"--executor: {name!r} cannot use --scheduler/--dask-workers; allowed: dask")
    if name != "pool" and args.workers is not None:
        raise _Usage(f"--workers: applies to the pool executor, not {name!r}")
    if name == "pool":
        return name, {"workers": args.workers}
    if name == "dask":
        return name, {"scheduler": args.scheduler, "workers": args.dask_workers}
    return name, {}


def _names(requested: str) -> list[str]:
    from lazylab.studies import STUDIES
    if requested == ALL:
        if not STUDIES:
            raise _Usage("reproduce: no built-in studies are installed")
        return sorted(STUDIES)
    if requested not in STUDIES:
        allowed = ", ".join([*sorted(STUDIES), ALL])
        raise _Usage(f"reproduce: study {requested!r} is unknown; allowed: {allowed}")
    return [requested]


def _report(result: dict[str, Any]) -> str:
    runs, timings = result["runs"], result["timings"]
    files = [*result["figures"], result["csv"], result["summary"]]
    return (f"{result['study']} ({result['scale']}): {runs['done']}/{runs['total']} runs done, "
            f"{runs['executed']} executed now, {runs['failed']} failed, {runs['diverged']} "
            f"diverged; {timings['total']:.1f} s\n" + "\n".join(f"  {p}" for p in files))


def run_reproduce(args: argparse.Namespace) -> int:
    """Handle ``lazylab reproduce``; returns 0, 1 (some runs failed) or 2 (bad input)."""
    from lazylab.experiments import SpecError
    from lazylab.studies.base import reproduce
    try:
        names = _names(args.study)
        executor, options = _executor(args)
    except _Usage as error:
        print(f"lazylab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    status = 0
    for name in names:
        try:
            result = reproduce(name, scale=args.scale, executor=executor,
                               executor_options=options, output_dir=args.output / name,
                               quiet=args.quiet)
        except (SpecError, ImportError) as error:
            print(f"lazylab: error: reproduce {name}: {error}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(f"lazylab: interrupted; rerun `lazylab reproduce {args.study}` to resume",
                  file=sys.stderr)
            return 130
        print(_report(result), flush=True)
        if result["runs"]["failed"]:
            status = 1
    return status
