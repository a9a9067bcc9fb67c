"""A pool worker killed mid-sweep fails only its run; workers never outlive their parent."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import pytest

from experiments.minilab import CATALOG
from experiments.test_kill import SPEC, _count, _worker
from lazylab.experiments import (DONE, FAILED, PoolExecutor, Store, execute_run, load_sweep,
                                 run_sweep)

DOOMED_SPEC = """
[task]
name = "linear"
dim = 3

[[regime]]
name = "ridge_features"
width = [2, 3, 4, 5, 6]

[[regime]]
name = "doomed"
marker = "{marker}"

[sweep]
n_train = 20
n_test = 20
seeds = 1
"""


@pytest.mark.slow
def test_killed_worker_fails_its_run_and_the_sweep_goes_on(tmp_path):
    spec = tmp_path / "doomed.toml"
    spec.write_text(DOOMED_SPEC.format(marker=tmp_path / "marker"))
    sweep = load_sweep(spec, CATALOG)
    run_function = functools.partial(execute_run, catalog=CATALOG)
    with Store(tmp_path / "doomed.sqlite") as store:
        status = run_sweep(sweep, store, executor=PoolExecutor(workers=2),
                           run_function=run_function)
        rows = {row["spec"]["regime"]["name"] + str(row["spec"]["regime"].get("width", "")): row
                for row in store.rows()}
        assert (status.done, status.failed, status.pending) == (5, 1, 0)
        assert rows["doomed"]["status"] == FAILED
        assert rows["doomed"]["error"].startswith("worker process died (signal 9, SIGKILL)")
        assert all(row["status"] == DONE for key, row in rows.items() if key != "doomed")
        again = run_sweep(sweep, store, executor=PoolExecutor(workers=2),
                          run_function=run_function, retry_failed=True)
        assert (again.done, again.failed, again.pending) == (6, 0, 0)


def _children(parent: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``parent``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_no_worker_survives_its_parent(tmp_path):
    spec = tmp_path / "kill.toml"
    spec.write_text(SPEC)
    store = tmp_path / "kill.sqlite"
    process = _worker(spec, store, "pool")
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while (_count(store) < 5 or not workers) and process.poll() is None \
            and time.monotonic() < deadline:
        workers = _children(process.pid)
        time.sleep(0.05)
    assert workers, "the sweep must have started its pool workers"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if _alive(pid)]
    names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in survivors}
    for pid in survivors:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, names
