#!/usr/bin/env bash
# The main job: install (once) and reproduce Ghorbani et al. (2019) Fig. 1 at the default scale
# (left panel at the paper's d = 450; a few minutes on 2 cores). Outputs go to
# results/ghorbani-fig1/ (figure PNG/PDF, CSV of the points, summary.md, the SQLite store);
# rerunning reads finished runs from the store, and an interrupted run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lazylab reproduce ghorbani-fig1 "$@"
