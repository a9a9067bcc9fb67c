#!/usr/bin/env bash
# The main job: install (once) and run lazylab's built-in demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m lazylab.demo "$@"
