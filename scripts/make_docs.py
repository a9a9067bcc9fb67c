"""Regenerate the documentation that is generated from the code: docs/specs.md.

    python scripts/make_docs.py          # from the repository root (any working directory)

``tests/experiments/test_reference.py`` fails when the committed file differs from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's lazylab, not an installed one

from lazylab.experiments.reference import spec_reference  # noqa: E402


def main() -> int:
    target = ROOT / "docs" / "specs.md"
    text = spec_reference()
    changed = not target.exists() or target.read_text(encoding="utf-8") != text
    target.write_text(text, encoding="utf-8")
    print(f"{target.relative_to(ROOT)}: {'updated' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
