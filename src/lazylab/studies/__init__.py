"""Built-in studies: reproductions of the papers' figures, one module each.

``STUDIES`` maps a study name to its record. Each study module registers one entry; the CLI
command ``lazylab list`` prints the names and the first line of each study's docstring (or its
``description`` attribute). The registry is data, never an if/elif chain over names.
"""

from __future__ import annotations

__all__ = ["STUDIES"]

STUDIES: dict = {}
