#!/usr/bin/env bash
# Copy the small result files of every evaluated run under RUNS (RUNS/<name>/seed<k>/ with an
# eval_*/report.json) into DEST/<name>/seed<k>/: config.yaml, metrics.jsonl, console.log,
# class_stats.json and, per evaluation folder, report.json/.md/.csv, per_image.npz and
# frontier.json when present. No images (confusion_matrix.png stays behind), no weights.
# Usage: bash results/collect.sh RUNS DEST
#   e.g. bash results/collect.sh /work/runs/camvid_study results/camvid_study
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bash results/collect.sh RUNS DEST" >&2; exit 2; }
RUNS=$1
DEST=$2
for run in "$RUNS"/*/seed*; do
  compgen -G "$run/eval_*/report.json" > /dev/null || continue
  dest="$DEST/$(basename "$(dirname "$run")")/$(basename "$run")"
  mkdir -p "$dest"
  for f in config.yaml metrics.jsonl console.log class_stats.json; do
    [ -f "$run/$f" ] && cp "$run/$f" "$dest/"
  done
  for ev in "$run"/eval_*/; do
    [ -f "$ev/report.json" ] || continue
    mkdir -p "$dest/$(basename "$ev")"
    for f in report.json report.md report.csv per_image.npz frontier.json; do
      [ -f "$ev/$f" ] && cp "$ev/$f" "$dest/$(basename "$ev")/"
    done
  done
  echo "collected $dest"
done
