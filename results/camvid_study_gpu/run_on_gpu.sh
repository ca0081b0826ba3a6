#!/usr/bin/env bash
# Set-up here: mkdir .gpu; cp run_on_gpu.sh transfer.py .gpu/; python transfer.py pack DIR/camvid .gpu/data;
# echo /.gpu/ >> .git/info/exclude; then the device tool: run `bash .gpu/run_on_gpu.sh` carrying .gpu.
# GPU protocol of the issue-13 study (+ issue-16 boundary runs), one call on one GPU. Priority order:
# A) CE vs IAL paper, seeds 0-4; B) boundary runs (ERF 176x240, BiERF 176+360), seeds 0-2;
# C) leave-one-sequence-out (0006R0) CE vs IAL, seeds 0-2; D) IAL authors_code, seeds 0-2.
# Runs still training at the deadline are stopped and not reported.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
T0=$(date +%s); LIMIT=${LIMIT:-515}; R=${R:-/root/gpu}; D=${D:-/root/camvid}; DEV=${DEV:-cuda}; EPOCHS=${EPOCHS:-60}; EXTRA=${EXTRA:-}
mkdir -p $R
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/driver.log; }
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
pack() {
  (cd $R && tar czf $OUT/gpu_results.tar.gz --exclude='*.pt' --exclude='*.png' --exclude='smoke' . ) 
  [ -n "${1:-}" ] && log "packed: $(ls -la $OUT | tail -n +2 | tr '\n' ' ')"
}
python3 .gpu/transfer.py unpack .gpu/data $D || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
python3 -c "import torch,PIL,numpy,yaml,matplotlib,tqdm; print('torch',torch.__version__,'cuda',torch.version.cuda,torch.cuda.get_device_name(),'PIL',PIL.__version__)" | tee -a $R/gpu.txt
log "smoke"
timeout 150 python3 -m iaseg train --config tiny_synthetic --out $R/smoke --epochs 1 --device $DEV --no-progress > $R/smoke.log 2>&1 \
  || { tail -40 $R/smoke.log; log "SMOKE FAILED"; exit 3; }
tail -2 $R/smoke.log; log "smoke ok"
( while sleep 45; do log "progress: $(for f in $R/*/*/seed*/metrics.jsonl; do [ -f $f ] && printf '%s=%s ' "$(echo $f | awk -F/ '{print $(NF-3)"/"$(NF-2)"/"$(NF-1)}')" "$(grep -c epoch $f)"; done)"; pack; done ) &
MON=$!
sweep() {
  local t=$(left); local name=$1; shift
  if [ $t -lt 90 ]; then log "skip $name: ${t}s left"; return 1; fi
  log "start $name (${t}s left)"
  timeout -k 25 -s TERM $t python3 -m iaseg sweep "$@" --root $D $EXTRA > $R/sweep_$name.log 2>&1; local rc=$?
  log "end $name rc=$rc"; tail -3 $R/sweep_$name.log
}
sweep A --config ce=camvid_study_ce --config ial=camvid_study_ial --seeds 0-4 --out $R/camvid_study --parallel 6
sweep B --config erf176_ce=camvid_boundary_erf176_ce --config bierf_ce=camvid_boundary_bierf_ce --seeds 0-2 --out $R/camvid_boundary --parallel 6 --no-evaluate
EV=()
for run in $R/camvid_boundary/*/seed*; do
  grep -q "\"epoch\": $EPOCHS," $run/metrics.jsonl 2>/dev/null || continue
  timeout 90 python3 -m iaseg evaluate --checkpoint $run/last.pt --split val --root $D --full-resolution --frontier --no-progress --out $run/eval_full > $run/eval_full.log 2>&1 &
  EV+=($!)
done; [ ${#EV[@]} -gt 0 ] && wait "${EV[@]}"; log "boundary evaluations done: ${#EV[@]}"
sweep C --config ce=camvid_loso_ce --config ial=camvid_loso_ial --seeds 0-2 --out $R/camvid_loso --parallel 6
sweep D --config ial_authors=camvid_study_ial_authors --seeds 0-2 --out $R/camvid_study --parallel 3
kill $MON 2>/dev/null
# the median-mIoU BiERF seed's weights (issue 16 ships them), fp16 release file
R=$R python3 - <<'PY' || true
import json, glob, os, statistics, torch
from iaseg.checkpoint import release_checkpoint
runs = []
for r in sorted(glob.glob(os.environ['R'] + '/camvid_boundary/bierf_ce/seed*')):
    p = os.path.join(r, 'eval_full', 'report.json')
    if os.path.exists(p):
        runs.append((json.load(open(p))['mean']['iou'], r))
print('bierf evaluated:', runs)
runs = [x for x in runs if x[0] is not None]
if len(runs) >= 3:
    runs.sort(); r = runs[len(runs) // 2][1]
    torch.save(release_checkpoint(os.path.join(r, 'last.pt')), os.path.join(os.environ['OUT'], 'camvid_bierfpspnet_ce_' + os.path.basename(r) + '.pt'))
PY
pack 1; log "done"
