#!/usr/bin/env bash
# Paper Table II on CamVid: ERF-PSPNet trained with weighted CE and with IAL under identical
# settings, published as slim weights, evaluated on val and compared with the paper.
#
#   ROOT=../shared/data/camvid bash tools/reproduce_camvid.sh             # full protocol (GPU)
#   ROOT=... EPOCHS=60 MILESTONES=[20,40] EXTRA="--set train.amp=bf16 --set train.channels_last=true" \
#       bash tools/reproduce_camvid.sh                                    # the CPU protocol we ran
#
# Re-running resumes an interrupted training (RUN/last.pt) and skips finished ones.
# Variables: ROOT (CamVid, SegNet layout), OUT (runs), WEIGHTS (weights), EPOCHS (300),
# MILESTONES ([100,200]), EXTRA (more `iaseg train` options), IASEG (the command, default `iaseg`).
set -euo pipefail
ROOT=${ROOT:?set ROOT to the CamVid folder (train/, trainannot/, val/, valannot/)}
OUT=${OUT:-runs}
WEIGHTS=${WEIGHTS:-weights}
EPOCHS=${EPOCHS:-300}
MILESTONES=${MILESTONES:-[100,200]}
EXTRA=${EXTRA:-}
IASEG=${IASEG:-iaseg}

for loss in ce ial; do
  run="$OUT/camvid_erfpspnet_$loss"
  resume=()
  if [[ -f "$run/last.pt" ]]; then resume=(--resume); fi
  # shellcheck disable=SC2086  # EXTRA is a list of options
  $IASEG train --config "camvid_erfpspnet_$loss" --root "$ROOT" --out "$run" --epochs "$EPOCHS" \
      --set "optim.milestones=$MILESTONES" $EXTRA "${resume[@]}"
  $IASEG export --checkpoint "$run/best.pt" --format checkpoint --half --out "$WEIGHTS/camvid_erfpspnet_$loss.pt"
  $IASEG evaluate --checkpoint "$WEIGHTS/camvid_erfpspnet_$loss.pt" --root "$ROOT" --split val --out "$run/eval"
done

$IASEG compare "$OUT/camvid_erfpspnet_ce" "$OUT/camvid_erfpspnet_ial" --names CE IAL --paper camvid \
    --checkpoints "$WEIGHTS/camvid_erfpspnet_ce.pt" "$WEIGHTS/camvid_erfpspnet_ial.pt" \
    --root "$ROOT" --split val --images 4 --out "$OUT/camvid_compare"
