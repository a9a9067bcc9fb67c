"""Run a sweep of the test lab in a separate process (used by the kill -9 test).

Usage: python -m experiments.sweep_worker SPEC STORE EXECUTOR
"""

from __future__ import annotations

import functools
import sys

from experiments.minilab import CATALOG
from lazylab.experiments import (Store, execute_run, load_sweep, make_executor, provenance,
                                 run_sweep)


def main(spec: str, store_path: str, executor: str) -> None:
    sweep = load_sweep(spec, CATALOG)
    options = {"workers": 2} if executor in ("pool", "dask") else {}
    with Store(store_path, provenance=provenance()) as store:
        run_sweep(sweep, store, executor=make_executor(executor, **options),
                  run_function=functools.partial(execute_run, catalog=CATALOG))


if __name__ == "__main__":
    main(*sys.argv[1:4])
