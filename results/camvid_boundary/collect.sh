#!/usr/bin/env bash
# Copy the small result files of every finished issue-16 run from the run folders into this
# directory (results/collect.sh: config, metrics.jsonl, console.log, class stats and each
# evaluation's report, per-image counts and frontier; no images, no weights).
# Usage: bash results/camvid_boundary/collect.sh [RUNS]   (default /work/runs/camvid_boundary)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
bash "$HERE/../collect.sh" "${1:-/work/runs/camvid_boundary}" "$HERE"
