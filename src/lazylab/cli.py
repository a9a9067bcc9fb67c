"""The ``lazylab`` command: run, inspect, export and plot sweeps; list built-in studies.

    lazylab run SPEC [--store PATH] [--max-memory GB] [--executor inprocess|pool|dask]
        [--workers N] [--scheduler tcp://HOST:PORT | --dask-workers K] [--shard K/N]
        [--retry-failed] [-q]
    lazylab status|show SPEC   run counts | a table of the results, with the failures' reasons
    lazylab export [--csv [PATH] | --parquet [PATH]] SPEC     (also SPEC --csv [PATH])
    lazylab plot SPEC [--output STEM] [--format png pdf svg]
    lazylab list [studies|tasks|regimes|activations|metrics|theory]
    lazylab reproduce NAME|all [--scale smoke|default|paper] [run's executor options]
        [--device cuda[:k]] [--shard K/N] [-q]
    lazylab merge TARGET SOURCE…   copy other stores' runs (e.g. shards') into TARGET
    lazylab --version

The store defaults to ``<spec stem>.sqlite`` next to the spec. Malformed specs, stores and
options print one line ``lazylab: error: FILE: FIELD: message`` and exit with status 2 before
anything is written. ``reproduce`` writes each study into ``DIR/NAME`` (default
``results/NAME``): its spec files, its SQLite store, the figure (PNG, PDF), the CSV of its points
and ``summary.md``; rerunning reads finished runs from the store. This module holds no
mathematics: it parses arguments and calls :mod:`lazylab.experiments`, :mod:`lazylab.plots` and
:mod:`lazylab.studies`. It is the one module that imports inside functions: the heavy stacks
(torch, pandas, matplotlib, the studies) are loaded only by the commands that need them, so
``lazylab --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from lazylab._cli_parser import ALL_STUDIES, LIST_KINDS, SCALES, build_parser
from lazylab._study_index import BUILT_IN_STUDIES

__all__ = ["main", "build_parser", "LIST_KINDS", "SCALES"]

EXIT_USAGE = 2


def _open_store(args: argparse.Namespace, sweep: Any, *, readonly: bool) -> Any:
    from lazylab.experiments import Store, default_store_path, provenance
    path = args.store or default_store_path(sweep.path)
    return Store(path, readonly=readonly, provenance=None if readonly else provenance())


def _executor_choice(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """(name or None: chosen by the work's size, options); SpecError on a contradiction."""
    from lazylab.experiments.executors import executor_options
    return executor_options(args.executor, args.workers, args.scheduler, args.dask_workers)


def _shard(args: argparse.Namespace) -> Any:
    """--shard K/N as a Shard, None without it; SpecError on a malformed value."""
    from lazylab.experiments.shards import parse_shard
    if args.shard is None:
        return None
    try:
        return parse_shard(args.shard)
    except ValueError as error:
        raise _usage("--shard", str(error)) from None


def _usage(field: str, message: str) -> Exception:
    from lazylab.experiments.spec import SpecError
    return SpecError("<command line>", field, message)


def _command_run(args: argparse.Namespace, sweep: Any, catalog: Any) -> int:
    from lazylab.experiments import (BarProgress, default_store_path, execute_run,
                                     make_executor, run_sweep)
    from lazylab.experiments.progress import execute_with_step_bar
    from lazylab.experiments.executors import Entered, choose_executor
    from lazylab.experiments.sweep import failure_reasons, format_failure_reasons, pending_runs_at
    if args.shard is not None:
        import dataclasses
        from lazylab.experiments.resources import run_kind, run_seconds
        from lazylab.experiments.shards import shard_runs
        mine = shard_runs(sweep.runs, _shard(args), run_seconds, run_kind)
        sweep = dataclasses.replace(sweep, runs=tuple(mine))
    name, options = _executor_choice(args)
    if name is None:  # the work's size decides (rule: experiments.executors.choose_executor)
        name = choose_executor(pending_runs_at(sweep, args.store or default_store_path(
            sweep.path), args.retry_failed))
    executor = make_executor(name, **options)
    inner = execute_with_step_bar if executor.name == "inprocess" and not args.quiet else execute_run
    run_function = functools.partial(inner, catalog=catalog) if catalog is not None else inner
    progress = None if args.quiet else BarProgress(sweep.name)
    # the executor starts first: one that cannot (unreachable scheduler) leaves no store
    with executor as active, _open_store(args, sweep, readonly=False) as store:
        status = run_sweep(sweep, store, executor=Entered(active), run_function=run_function,
                           retry_failed=args.retry_failed, progress=progress)
        print(_status_line(sweep, status, store.path, _shard(args)))
        for line in format_failure_reasons(failure_reasons(sweep, store)):
            print(line)
    return 0 if status.failed == 0 else 1


def _status_line(sweep: Any, status: Any, store_path: Path, shard: Any = None) -> str:
    share = "" if shard is None else f" (shard {shard})"
    return (f"{sweep.path}{share}: {status.total} runs: {status.done} done, {status.diverged} "
            f"diverged, {status.failed} failed, {status.pending} pending ({store_path})")


def _command_status(args: argparse.Namespace, sweep: Any, catalog: Any) -> int:
    from lazylab.experiments import sweep_status
    from lazylab.experiments.sweep import failure_reasons, format_failure_reasons
    with _open_store(args, sweep, readonly=True) as store:
        print(_status_line(sweep, sweep_status(sweep, store), store.path))
        for line in format_failure_reasons(failure_reasons(sweep, store)):
            print(line)
    return 0


def _command_show(args: argparse.Namespace, sweep: Any, catalog: Any) -> int:
    import pandas as pd
    from lazylab.experiments import results_frame
    from lazylab.experiments.sweep import failure_reasons, format_failure_reasons
    with _open_store(args, sweep, readonly=True) as store:
        frame = results_frame(sweep, store)
        reasons = format_failure_reasons(failure_reasons(sweep, store))
    if frame.empty:
        print(f"{sweep.path}: no results yet; run `lazylab run {sweep.path}`")
        return 0
    identity = [c for c in sweep.fields if c in frame and (c in ("regime", "seed")
                or frame[c].astype(str).nunique() > 1)]
    metrics = [m for m in sweep.metrics if m in frame]
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.float_format", "{:.6g}".format):
        table = frame.sort_values(identity, kind="stable", na_position="last")
        print(table[identity + ["status"] + metrics].to_string(index=False))
    for line in reasons:
        print(line)
    return 0


def _command_export(args: argparse.Namespace, sweep: Any, catalog: Any) -> int:
    from lazylab.experiments import default_store_path, export_results, results_frame
    fmt = "csv" if args.csv is not None else "parquet"
    target = Path(getattr(args, fmt) or sweep.path.with_suffix("." + fmt))
    if not target.parent.is_dir():
        raise _usage(f"--{fmt}", f"directory {target.parent} does not exist")
    store_path = args.store or default_store_path(sweep.path)
    if not Path(store_path).is_file():
        raise _usage("--store", f"{store_path} does not exist; give the store `lazylab run "
                     f"{sweep.path}` wrote (no results to export)")
    with _open_store(args, sweep, readonly=True) as store:
        frame = results_frame(sweep, store)
    print(export_results(frame, target, fmt))
    return 0


def _command_plot(args: argparse.Namespace, sweep: Any, catalog: Any) -> int:
    from lazylab import plots
    from lazylab.experiments import DONE, SpecError, default_catalog, resolve_theory
    from lazylab.experiments import results_frame
    from lazylab.experiments.sweep import make_task_builder
    plot = sweep.spec.plot
    if plot is None:
        raise SpecError(sweep.path, "plot", "no [plot] section; add one with x and y")
    theory = {name: resolve_theory(catalog or default_catalog(), name) for name in plot.theory}
    with _open_store(args, sweep, readonly=True) as store:
        frame = results_frame(sweep, store, statuses=(DONE,))
    if frame.empty or plot.y not in frame:
        raise SpecError(sweep.path, "plot.y", f"no finished runs record {plot.y!r} yet; "
                        f"run `lazylab run {sweep.path}` first")
    from lazylab.experiments.validate import column_name
    task_fields = sorted({column_name("task", k, sweep.collisions)
                          for run in sweep.runs for k, _ in run.task_params})
    figure = plots.plot_results(frame, x=plot.x, y=plot.y, series=plot.series,
                                fields=sweep.fields, task_fields=task_fields, log_x=plot.log_x,
                                log_y=plot.log_y, error_bars=plot.error_bars, theory=theory,
                                task_builder=make_task_builder(sweep, catalog), title=plot.title)
    stem = Path(args.output or (sweep.path.parent / (plot.output or sweep.path.stem)))
    for path in _save_figure(plots, figure, stem, args.formats or plot.formats):
        print(path)
    return 0


def _save_figure(plots: Any, figure: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Save the figure; an unwritable path is one SpecError and leaves no new file behind."""
    import matplotlib.pyplot as plt
    from lazylab.experiments.outputs import write_outputs
    try:
        return write_outputs(lambda: plots.save_figure(figure, stem, formats),
                             [Path(f"{stem}.{fmt}") for fmt in formats], "--output")
    finally:
        plt.close(figure)


def _command_list(args: argparse.Namespace) -> int:
    if args.kind != "studies":
        from lazylab.experiments.reference import registry_listing
        print(registry_listing(args.kind), end="")
        return 0
    loaded = sys.modules.get("lazylab.studies")  # then studies may be registered at run time
    studies = BUILT_IN_STUDIES if loaded is None else {
        name: (study.description.strip() or "-").splitlines()[0]
        for name, study in loaded.STUDIES.items()}
    for name, text in sorted(studies.items()):
        print(f"{name:24s} {text}")
    return 0


def _study_names(requested: str) -> list[str]:
    from lazylab.studies import STUDIES
    if requested == ALL_STUDIES:
        if not STUDIES:
            raise _usage("reproduce", "no built-in studies are installed")
        return sorted(STUDIES)
    if requested not in STUDIES:
        allowed = ", ".join([*sorted(STUDIES), ALL_STUDIES])
        raise _usage("reproduce", f"study {requested!r} is unknown; allowed: {allowed}")
    return [requested]


def _reproduce_report(result: dict[str, Any]) -> str:
    runs, timings, shard = result["runs"], result["timings"], result["shard"]
    files = [*result["figures"], result["csv"], result["summary"]]
    if shard is not None:
        files = [result["store"], f"shard {shard}: no figure; merge every shard's store into one "
                 f"(`lazylab merge TARGET SOURCE…`), then rerun without --shard"]
    share = "" if shard is None else f" shard {shard}"
    return (f"{result['study']} ({result['scale']}{share}): {runs['done']}/{runs['total']} runs "
            f"done, {runs['executed']} executed now, {runs['failed']} failed, "
            f"{runs['diverged']} diverged; {timings['total']:.1f} s\n"
            + "\n".join(f"  {p}" for p in files))


def _command_reproduce(args: argparse.Namespace) -> int:
    """``lazylab reproduce``: 0, 1 (some runs failed), 2 (bad input) or 130 (interrupted)."""
    from lazylab.experiments import SpecError
    from lazylab.studies import reproduce
    try:
        names = _study_names(args.study)
        shard = _shard(args)
        executor, options = _executor_choice(args)
        executor = executor or "pool"
    except SpecError as error:
        print(f"lazylab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    status = 0
    for name in names:
        try:
            result = reproduce(name, scale=args.scale, executor=executor,
                               executor_options=options, output_dir=args.output / name,
                               quiet=args.quiet, device=args.device, shard=shard)
        except (ValueError, TypeError, ImportError) as error:  # SpecError is a ValueError
            print(f"lazylab: error: reproduce {name}: {(str(error).strip() or '?').splitlines()[0]}",
                  file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(f"lazylab: interrupted; rerun `lazylab reproduce {args.study}` to resume",
                  file=sys.stderr)
            return 130
        print(_reproduce_report(result), flush=True)
        if result["runs"]["failed"]:
            status = 1
    return status


def _command_merge(args: argparse.Namespace) -> int:
    """``lazylab merge TARGET SOURCE…``: 0, or 2 (a source or the target is refused)."""
    from lazylab.experiments import SpecError, Store, provenance
    try:
        args.target.parent.mkdir(parents=True, exist_ok=True)
        with Store(args.target, provenance=provenance()) as target:
            for source in args.sources:
                counts = target.merge(source)
                print(f"{source}: {counts.total} runs: {counts.added} added, {counts.replaced} "
                      f"replaced (a better status), {counts.kept} kept"
                      + (f" ({counts.differing} done in both with other results; the "
                         "target's kept)" if counts.differing else ""))
    except SpecError as error:
        print(f"lazylab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.target}: merged {len(args.sources)} store(s)")
    return 0


def _export_spec(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``export --csv SPEC``: --csv's optional PATH took the one positional, the spec."""
    if args.spec is None:
        fmt = "csv" if args.csv is not None else "parquet"
        if not getattr(args, fmt):
            parser.error("the following arguments are required: SPEC")
        args.spec = Path(getattr(args, fmt))
        setattr(args, fmt, "")


_COMMANDS = {"run": _command_run, "status": _command_status, "show": _command_show,
             "export": _command_export, "plot": _command_plot}


def main(argv: Sequence[str] | None = None, *, catalog: Any = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 some runs failed, 2 bad input).

    Args:
        argv: arguments (``sys.argv[1:]`` when None).
        catalog: registries to use instead of lazylab's own (for embedding and tests).
    """
    try:
        return _main(argv, catalog)
    except BrokenPipeError:  # `lazylab show SPEC | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")
        return 0


def _main(argv: Sequence[str] | None, catalog: Any) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "export":
        _export_spec(parser, args)
    if args.command == "list":
        return _command_list(args)
    if args.command == "reproduce":
        return _command_reproduce(args)
    if args.command == "merge":
        return _command_merge(args)
    from lazylab.experiments import SpecError, load_sweep
    try:
        sweep = load_sweep(args.spec, catalog, max_memory_gb=args.max_memory)
        return _COMMANDS[args.command](args, sweep, catalog)
    except SpecError as error:
        print(f"lazylab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as error:
        print(f"lazylab: error: {args.spec}: {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as error:  # a documented error of the Python API
        print(f"lazylab: error: {args.spec}: {args.command}: {type(error).__name__}: "
              f"{(str(error).strip() or '?').splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lazylab: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
