"""Writing output files all or nothing: an unwritable path is one SpecError and leaves no file.

Used by ``lazylab plot`` (the figure in several formats); the checks run before anything is
written, and a failure while writing removes the files this call created (files that existed
before are left as they were).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from lazylab.experiments.spec import SpecError

__all__ = ["write_outputs"]


def _problem(targets: Sequence[Path]) -> str | None:
    for target in targets:
        if not target.parent.is_dir():
            return f"directory {target.parent} does not exist"
        if not os.access(target.parent, os.W_OK):
            return f"directory {target.parent} is not writable"
        if target.is_dir():
            return f"{target} is a directory"
    return None


def write_outputs(write: Callable[[], list[Path]], targets: Sequence[Path], field: str
                  ) -> list[Path]:
    """Call ``write()`` (which writes ``targets``) after checking that they can be written.

    Raises:
        SpecError: ``<command line>: FIELD: …`` naming the path and the system's reason; any
            target created by this call is removed first.
    """
    targets = [Path(t) for t in targets]
    problem = _problem(targets)
    if problem is not None:
        raise SpecError("<command line>", field, f"{problem}; give a writable path")
    existing = {t for t in targets if t.exists()}
    try:
        return write()
    except OSError as error:
        for target in set(targets) - existing:
            try:
                target.unlink(missing_ok=True)
            except OSError:
                pass
        raise SpecError("<command line>", field, f"cannot write {', '.join(map(str, targets))} "
                        f"({error.strerror or error}); give a writable path") from None
