#!/usr/bin/env bash
# Issue 30's CPU runs, in order: the pilot, then leave-one-sequence-out (paper vs strong recipe, CE,
# paired seeds) and the full-train strong runs whose median seed is shipped. Each stage is an
# `iaseg sweep` (2 runs at a time, 1 thread each, bf16 where the CPU has it natively); finished runs
# are skipped and a run in progress resumes from its last.pt, so after a stop start it again.
#   usage: bash results/camvid_recipe/run_queue.sh RUNS_DIR CAMVID_ROOT
# RUNS_DIR holds the run folders (outside the repository); the collected results are copied here
# with ../collect.sh afterwards.
set -u
RUNS=${1:?usage: run_queue.sh RUNS_DIR CAMVID_ROOT}
ROOT=${2:?usage: run_queue.sh RUNS_DIR CAMVID_ROOT}
IASEG=${IASEG:-iaseg}
sweep() { nice -n 5 "$IASEG" sweep --root "$ROOT" --parallel 2 "$@"; }
pilot() {  # name, --set ...: the strong recipe for 20 epochs, train -> val (CamVid val, in-sequence)
  local name=$1; shift
  local resume=""; [ -f "$RUNS/pilot/$name/last.pt" ] && resume="--resume"
  mkdir -p "$RUNS/pilot"
  nice -n 5 "$IASEG" train --config camvid_strong_ce --root "$ROOT" --out "$RUNS/pilot/$name" $resume \
    --set train.epochs=20 --set train.val_every=5 "$@" > "$RUNS/pilot/$name.console" 2>&1
}
# 0. the pilot: crops 288x384 vs whole 360x480 frames, same augmentation otherwise
[ -f "$RUNS/pilot/crop288x384/metrics.jsonl" ] && grep -q '"epoch": 20' "$RUNS/pilot/crop288x384/metrics.jsonl" || pilot crop288x384 &
[ -f "$RUNS/pilot/full360x480/metrics.jsonl" ] && grep -q '"epoch": 20' "$RUNS/pilot/full360x480/metrics.jsonl" || pilot full360x480 --set "data.augment.crop=[360,480]" &
wait
# 1. 0006R0 left out: strong seeds 0-1 (the paper recipe's seeds 0-1 are results/camvid_loso, trained
#    on a 2-core AVX-512 EPYC with the same configs and code path)
sweep --config strong=camvid_loso_strong_ce --seeds 0-1 --out "$RUNS/loso_0006R0"
# 2-3. the other two train sequences left out, seed 0: the strong recipe first (with stage 1 it gives
#      the three leave-one-sequence-out models that cross-fitted calibration needs), then the paper
#      recipe (one run of each sequence per sweep, so the pair runs side by side)
sweep --config strong=camvid_loso_0001TP_strong_ce --seeds 0 --out "$RUNS/loso_0001TP" &
sweep --config strong=camvid_loso_0016E5_strong_ce --seeds 0 --out "$RUNS/loso_0016E5" &
wait
sweep --config paper=camvid_loso_0001TP_ce --seeds 0 --out "$RUNS/loso_0001TP" &
sweep --config paper=camvid_loso_0016E5_ce --seeds 0 --out "$RUNS/loso_0016E5" &
wait
# 4. 0006R0: the third seed of both recipes
sweep --config paper=camvid_loso_ce --config strong=camvid_loso_strong_ce --seeds 2 --out "$RUNS/loso_0006R0"
# 5. the whole train split, strong recipe: the weights to ship (the median seed, last epoch)
sweep --config strong=camvid_strong_ce --seeds 0-2 --out "$RUNS/strong_full"
