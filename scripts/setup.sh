#!/usr/bin/env bash
# Create .venv (if needed) and install lazylab with its test dependencies into it.
# torch 2.13.0 is pinned where it can be had (this machine type keeps a CPU build on disk);
# otherwise the project's range is used.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" \
    || .venv/bin/python -m pip install -q --disable-pip-version-check "torch>=2.1,<=2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
