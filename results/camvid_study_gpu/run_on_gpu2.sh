#!/usr/bin/env bash
# Second GPU call of the issue-13 study (2026-11-27): the parts run_on_gpu.sh never reached, with
# the training code of the first call (a618c4f: `git archive a618c4f src | tar -x -C .gpu/a618`),
# so every GPU run shares one code path, the same data (transfer.py) and the same configs.
# All at once, one GPU:
#   C) leave-one-sequence-out CE vs IAL `paper`, seeds 0-2 (train without 0006R0, evaluated on it);
#   D) IAL `authors_code`, seeds 0-2 (pairs with the first call's CE/IAL seeds 0-2);
#   W) CE seed 0 and IAL seed 4 again (the median-mIoU seeds of the first call, whose weights were
#      not brought back), to ship their last-epoch weights (fp16 release files to $OUT).
# Then, with this commit's code (src/), the leave-one-sequence-out CE runs' decision rule: calibrated
# on val (the matched operating point) and evaluated on 0006R0, as results/camvid_study/loso_rule.sh.
# Runs still training at the deadline are stopped and not reported.
# Set-up here: mkdir -p .gpu/a618; git archive a618c4f src | tar -x -C .gpu/a618;
#   cp results/camvid_study_gpu/run_on_gpu2.sh .gpu/; python results/camvid_study_gpu/transfer.py pack DIR/camvid .gpu/data
#   (weights/ moved out of the working tree for the call: the tree that travels is at most 64 MiB)
set -u
export PYTHONUNBUFFERED=1
A=$PWD/.gpu/a618/src; H=$PWD/src
T0=$(date +%s); LIMIT=${LIMIT:-540}; R=${R:-/root/gpu}; D=${D:-/root/camvid}; EXTRA=${EXTRA:-}
mkdir -p $R
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/driver.log; }
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
pack() { (cd $R && tar czf $OUT/gpu_results.tar.gz --exclude='*.pt' --exclude='*.png' --exclude='*.tmp*' .); }
if [ "${SKIP_UNPACK:-}" != 1 ]; then python3 .gpu/transfer.py unpack .gpu/data $D || exit 1; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,PIL; print('torch',torch.__version__,'cuda',torch.version.cuda,torch.cuda.is_available() and torch.cuda.get_device_name(),'PIL',PIL.__version__)"; } 2>&1 | tee $R/gpu.txt
( while sleep 45; do log "progress: $(for f in $R/*/*/seed*/metrics.jsonl; do [ -f $f ] && printf '%s=%s ' "$(echo $f | awk -F/ '{print $(NF-3)"/"$(NF-2)"/"$(NF-1)}')" "$(grep -c epoch $f)"; done)"; pack; done ) &
MON=$!
sweep() {
  local t=$(left); local name=$1; shift
  log "start $name (${t}s left)"
  PYTHONPATH=$A timeout -k 20 -s TERM $t python3 -m iaseg sweep "$@" --root $D $EXTRA > $R/sweep_$name.log 2>&1; local rc=$?
  log "end $name rc=$rc"; tail -2 $R/sweep_$name.log
}
sweep C --config ce=camvid_loso_ce --config ial=camvid_loso_ial --seeds 0-2 --out $R/camvid_loso --parallel 6 & PC=$!
sweep D --config ial_authors=camvid_study_ial_authors --seeds 0-2 --out $R/camvid_study --parallel 3 & PD=$!
sweep W_ce --config ce=camvid_study_ce --seeds 0 --out $R/rerun_ce --parallel 1 & PW1=$!
sweep W_ial --config ial=camvid_study_ial --seeds 4 --out $R/rerun_ial --parallel 1 & PW2=$!
wait $PC
RULE=()
for run in $R/camvid_loso/ce/seed*; do
  [ -f $run/eval_train/report.json ] || continue
  ( PYTHONPATH=$H timeout -s TERM $(left) python3 -m iaseg calibrate --checkpoint $run/last.pt --root $D --split val \
        --option 'exclude_sequences=[]' --max-miou-drop 0.5 --maximize G3.recall --out $run/rule_val.json --no-progress \
    && PYTHONPATH=$H timeout -s TERM $(left) python3 -m iaseg evaluate --checkpoint $run/last.pt --root $D --split train \
        --option 'sequences=[0006R0]' --option 'exclude_sequences=[]' --decision-rule $run/rule_val.json \
        --out $run/eval_train_rule --no-progress ) > $run/rule.log 2>&1 &
  RULE+=($!)
done
[ ${#RULE[@]} -gt 0 ] && wait "${RULE[@]}"; log "loso rules done: $(ls $R/camvid_loso/ce/seed*/eval_train_rule/report.json 2>/dev/null | wc -l)"
wait $PD $PW1 $PW2
kill $MON 2>/dev/null
for run in $R/rerun_ce/ce/seed0 $R/rerun_ial/ial/seed4; do
  [ -f $run/eval_val/report.json ] || continue
  name=camvid_erfpspnet_$(basename $(dirname $run))_$(basename $run).pt
  PYTHONPATH=$A python3 -c "import sys, torch; from iaseg.checkpoint import release_checkpoint; torch.save(release_checkpoint(sys.argv[1]), sys.argv[2])" \
      $run/last.pt $OUT/$name && log "released $name"
done
pack; log "done: $(ls -la $OUT | tail -n +2 | tr '\n' ' ')"
