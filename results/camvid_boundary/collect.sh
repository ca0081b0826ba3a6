#!/usr/bin/env bash
# Copy the small result files of every finished issue-16 run (one with eval_full/report.json)
# from the run folders into this directory: config, metrics.jsonl, console.log, class stats and
# the full-resolution val evaluation (report, per-image counts, frontier). No images, no weights.
# Usage: bash results/camvid_boundary/collect.sh [RUNS]   (default /work/runs/camvid_boundary)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${1:-/work/runs/camvid_boundary}
for run in "$RUNS"/*/seed*; do
  [ -f "$run/eval_full/report.json" ] || continue
  dest="$HERE/$(basename "$(dirname "$run")")/$(basename "$run")"
  mkdir -p "$dest/eval_full"
  cp "$run"/{config.yaml,metrics.jsonl,console.log,class_stats.json} "$dest/"
  cp "$run"/eval_full/{report.json,report.md,report.csv,per_image.npz,frontier.json} "$dest/eval_full/"
  echo "collected $dest"
done
