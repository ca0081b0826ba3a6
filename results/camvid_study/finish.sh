#!/usr/bin/env bash
# The last steps of the CPU study (issue 13) once its runs are done, in one command:
#   1. copy the runs' small files into results/ (results/collect.sh): camvid_study, camvid_loso;
#   2. the statistics: iaseg compare of CE / IAL / IAL-authors on val (results/camvid_study/study),
#      of CE / IAL on the held-out sequence 0006R0 (results/camvid_loso/study), of CE / CE + a
#      rule calibrated on val / IAL on 0006R0 (loso_rule.sh: results/camvid_loso/rule_study), and
#      the boundary experiment's comparison again (its ERF-PSPNet 360x480 group is the study's CE runs);
#   3. the shipped weights: the median-mean-IoU seed per loss (ship_weights.py: export, val
#      reports, checked int8 IRs);
#   4. the recommended decision rule for the CE weights: the matched operating point (the most G3
#      recall for at most 0.5 points of mean IoU), calibrated on val.
# Every step can be re-run. The docs (docs/results.md, weights/README.md, README) are written by hand
# from the files these steps write; the study tables come ready in study/docs_table.md.
# Usage: bash results/camvid_study/finish.sh [RUNS] [CAMVID_ROOT]   (defaults /work/runs, ../shared/data/camvid)
#        DRY_RUN=1 bash results/camvid_study/finish.sh ...   steps 1-2 only, and the per-seed table with the choice of step 3
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-/work/runs}
ROOT=${2:-../shared/data/camvid}
IASEG=${IASEG:-iaseg}
have() { compgen -G "$1" > /dev/null; }

bash results/collect.sh "$RUNS/camvid_study" results/camvid_study
[ -d "$RUNS/camvid_loso" ] && bash results/collect.sh "$RUNS/camvid_loso" results/camvid_loso

D=results/camvid_study
groups=(--group CE "$D"/ce/seed*/eval_val --group IAL "$D"/ial/seed*/eval_val)
have "$D/ial_authors/seed*/eval_val/report.json" && groups+=(--group IAL-authors "$D"/ial_authors/seed*/eval_val)
$IASEG compare "${groups[@]}" --out "$D/study"
L=results/camvid_loso
if have "$L/ial/seed*/eval_train/report.json"; then
  $IASEG compare --group CE "$L"/ce/seed*/eval_train --group IAL "$L"/ial/seed*/eval_train --out "$L/study"
  python results/camvid_study/docs_table.py "$L/study/study.json" "0006R0 (unseen), last epoch" > "$L/study/docs_table.md"
  # CE + a rule calibrated on val, on 0006R0 (the issue's third row, in-project): rule_study/
  bash results/camvid_study/loso_rule.sh "$RUNS" "$ROOT"
fi
# the tables of docs/results.md, printed from the statistics (copy them, do not type them)
python results/camvid_study/docs_table.py "$D/study/study.json" > "$D/study/docs_table.md"
B=results/camvid_boundary
$IASEG compare --group "ERF 176x240" $B/erf176_ce/seed*/eval_full --group "BiERF 176x240+360x480" $B/bierf_ce/seed*/eval_full \
    --group "ERF 360x480 (CPU)" "$D"/ce/seed*/eval_val --group "ERF 360x480 (GPU)" results/camvid_study_gpu/ce/seed*/eval_val \
    --reference "BiERF 176x240+360x480" --out $B/study

if [ -n "${DRY_RUN:-}" ]; then
  python results/camvid_study/ship_weights.py --runs "$RUNS/camvid_study" --root "$ROOT" --dry-run
  exit 0
fi
python results/camvid_study/ship_weights.py --runs "$RUNS/camvid_study" --root "$ROOT"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
$IASEG calibrate --checkpoint weights/camvid_erfpspnet_ce.pt --root "$ROOT" --split val --max-miou-drop 0.5 \
    --maximize G3.recall --cache "$cache/ce.cache.pt" --out weights/camvid_erfpspnet_ce.rule.json
