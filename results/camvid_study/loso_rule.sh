#!/usr/bin/env bash
# Does a decision rule fitted on val carry over to a sequence the model never saw? (issue 13)
# The in-project version of the issue's third row (CE + a rule from `iaseg calibrate --split val`,
# measured outside the project on the SegNet test split). For every leave-one-sequence-out CE run
# (trained without 0006R0) that its sweep has evaluated:
#   1. calibrate the matched operating point (the most G3 recall for at most 0.5 points of mean
#      IoU, the rule finish.sh ships with the CE weights) on CamVid val, as a user would;
#   2. evaluate the model with that rule on 0006R0: RUN/eval_train_rule/ (its report.json records
#      the rule's offsets), which results/collect.sh copies like the other evaluations.
# Then `iaseg compare` of CE, CE + that rule and IAL on 0006R0 (results/camvid_loso/rule_study).
# Runs already done are skipped. 14-18 min per seed (2-core EPYC, both cores busy with training
# runs, 2026-11-27: a trial on a study CE run, then LOSO CE seed 0; calibrate took about 16 of the
# 18 min); the 0006R0 options repeat the val_options of configs/camvid_loso_*.yaml.
# Usage: bash results/camvid_study/loso_rule.sh [RUNS] [CAMVID_ROOT]   (defaults /work/runs, ../shared/data/camvid)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-/work/runs}
ROOT=${2:-../shared/data/camvid}
IASEG=${IASEG:-iaseg}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
for run in "$RUNS"/camvid_loso/ce/seed*; do
  [ -f "$run/eval_train/report.json" ] || continue  # not finished (the sweep evaluates the last epoch)
  [ -f "$run/eval_train_rule/report.json" ] && continue
  $IASEG calibrate --checkpoint "$run/last.pt" --root "$ROOT" --split val --option 'exclude_sequences=[]' \
      --max-miou-drop 0.5 --maximize G3.recall --cache "$cache/$(basename "$run").pt" --out "$run/rule_val.json" --no-progress
  $IASEG evaluate --checkpoint "$run/last.pt" --root "$ROOT" --split train \
      --option 'sequences=[0006R0]' --option 'exclude_sequences=[]' \
      --decision-rule "$run/rule_val.json" --out "$run/eval_train_rule" --no-progress
  rm -f "$cache/$(basename "$run").pt"
done
bash results/collect.sh "$RUNS/camvid_loso" results/camvid_loso
L=results/camvid_loso
if compgen -G "$L/ce/seed*/eval_train_rule/report.json" > /dev/null \
    && compgen -G "$L/ial/seed*/eval_train/report.json" > /dev/null; then
  $IASEG compare --group CE "$L"/ce/seed*/eval_train --group "CE + val rule" "$L"/ce/seed*/eval_train_rule \
      --group IAL "$L"/ial/seed*/eval_train --out "$L/rule_study"
  python results/camvid_study/docs_table.py "$L/rule_study/study.json" "0006R0 (unseen), last epoch" > "$L/rule_study/docs_table.md"
fi
