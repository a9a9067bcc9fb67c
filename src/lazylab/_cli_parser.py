"""The ``lazylab`` command's argument parser (its commands are in :mod:`lazylab.cli`).

Kept apart from the commands so that it imports nothing heavy: ``lazylab --help`` builds this
parser and loads no study, torch, pandas or matplotlib.
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "EXECUTORS", "SCALES", "LIST_KINDS", "ALL_STUDIES"]

EXECUTORS = ("inprocess", "pool", "dask")
SCALES = ("smoke", "default", "paper")
"""The scales of every study (lazylab.studies.SCALES, repeated so --help imports no study;
tests/test_cli.py checks that the two agree)."""
ALL_STUDIES = "all"


def _version() -> str:
    try:
        return version("lazylab")
    except PackageNotFoundError:
        return "unknown"


def _add_spec(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument("spec", type=Path, metavar="SPEC", nargs="?" if optional else None,
                        help="the sweep's TOML spec file")
    parser.add_argument("--store", type=Path, metavar="PATH",
                        help="results database (default: <spec stem>.sqlite next to the spec)")
    parser.add_argument("--max-memory", metavar="GB", dest="max_memory",
                        help="memory a run may use in the size check, in GB, or inf to skip "
                             "it (default: LAZYLAB_MAX_MEMORY_GB, else [sweep] max_memory_gb, "
                             "else the available memory)")


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    """--executor, --workers, --scheduler | --dask-workers (shared by run and reproduce)."""
    parser.add_argument("--executor", choices=EXECUTORS,
                        help="where runs execute (default: dask with --scheduler or "
                             "--dask-workers, pool with --workers; else run picks in-process "
                             "when the pending runs' estimated work is under 30 s, pool above; "
                             "reproduce picks pool)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="pool processes (default: all cores)")
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                      help="run on an existing Dask cluster")
    dask.add_argument("--dask-workers", type=int, metavar="K",
                      help="start a Dask LocalCluster with K worker processes")


def _add_shard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard", metavar="K/N",
                        help="execute only share K of N (1 ≤ K ≤ N) of the runs, split by their "
                             "estimated cost the same way in every job; each shard writes its "
                             "own store, joined afterwards by `lazylab merge`")


def _add_merge(commands: Any) -> None:
    merge = commands.add_parser(
        "merge", help="copy the results of other stores (e.g. shards') into one store",
        description="Copy every run of the SOURCE stores into TARGET (created if missing). Of "
                    "two results of one run the better status stays (done > diverged > "
                    "failed), TARGET's on a tie; each source is one transaction.")
    merge.add_argument("target", type=Path, metavar="TARGET", help="the store to merge into")
    merge.add_argument("sources", type=Path, nargs="+", metavar="SOURCE",
                       help="stores written by lazylab (run --shard, reproduce --shard, or any)")


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="execute the pending runs of a sweep",
                              description="Execute every run of SPEC not yet in the store.")
    _add_spec(run)
    _add_executor_options(run)
    _add_shard(run)
    run.add_argument("--retry-failed", action="store_true", help="re-execute failed runs")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _add_reproduce(commands: Any) -> None:
    parser = commands.add_parser(
        "reproduce", help="run a built-in study (a paper's figure) end to end",
        description="Run a built-in study: its sweeps (resumable), figure, CSV and summary. "
                    "`lazylab list` shows the studies.")
    parser.add_argument("study", metavar="NAME|all", help="a study name, or 'all'")
    parser.add_argument("--scale", choices=SCALES, default="default",
                        help="problem sizes (default: default; paper: the paper's sizes; "
                             "smoke: seconds)")
    _add_executor_options(parser)
    parser.add_argument("--output", type=Path, metavar="DIR", default=Path("results"),
                        help="parent directory; each study writes into DIR/NAME "
                             "(default: results)")
    parser.add_argument("--device", help="cuda[:k]: the sample-based fits run there, under "
                                          "run ids of their own (default: cpu)")
    _add_shard(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


LIST_KINDS = ("studies", "tasks", "regimes", "activations", "metrics", "theory")
"""``lazylab list KIND``; all but studies are reference.LISTING_KINDS (so --help loads nothing)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lazylab`` with all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="lazylab", description="Sweeps, results and figures for lazy training versus "
        "feature learning in two-layer networks.")
    parser.add_argument("--version", action="version", version=f"lazylab {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    for name, text in (("status", "count done / diverged / failed / pending runs"),
                       ("show", "print a table of the stored results")):
        _add_spec(commands.add_parser(name, help=text, description=text.capitalize() + "."))
    export = commands.add_parser("export", help="write the results as CSV or Parquet",
                                 description="Write the sweep's stored results to a file.")
    _add_spec(export, optional=True)  # `export --csv SPEC`: --csv takes SPEC, _export_spec
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--csv", nargs="?", const="", metavar="PATH",
                         help="CSV file (default: <spec stem>.csv)")
    formats.add_argument("--parquet", nargs="?", const="", metavar="PATH",
                         help="Parquet file (default: <spec stem>.parquet)")
    plot = commands.add_parser("plot", help="draw the figure of the spec's [plot] section",
                               description="Draw the [plot] section of SPEC from stored results.")
    _add_spec(plot)
    plot.add_argument("--output", type=Path, metavar="STEM",
                      help="output path without extension "
                           "(default: [plot].output or the spec stem)")
    plot.add_argument("--format", nargs="+", choices=("png", "pdf", "svg"), dest="formats",
                      help="file formats (default: [plot].formats)")
    listing = commands.add_parser(
        "list", help="list the built-in studies, or what a spec may name",
        description="List the built-in studies (no KIND), or the tasks, regimes, activations, "
                    "metrics or theory curves a spec may name (the same as docs/specs.md).")
    listing.add_argument("kind", nargs="?", default="studies", choices=LIST_KINDS)
    _add_reproduce(commands)
    _add_merge(commands)
    return parser
