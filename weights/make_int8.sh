#!/usr/bin/env bash
# The accuracy-checked OpenVINO int8 IRs shipped beside the CE weights of ERF-PSPNet and BiERF-PSPNet (docs/speed.md, "Checked
# int8 as the default"): one per input size, calibrated on 32 seeded CamVid train images (the export default), each
# checked on the 101 val images against the same model in fp32; the export fails (and writes
# nothing) if mean IoU drops by more than 0.5 or G3 recall by more than 1 point.
# Re-run whenever camvid_erfpspnet_ce.pt or camvid_bierfpspnet_ce.pt changes: an IR made from other weights is never chosen.
# Usage: bash weights/make_int8.sh [CAMVID_ROOT]   (default ../shared/data/camvid)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-../shared/data/camvid}
IASEG=${IASEG:-iaseg}
for size in 360x720 360x480; do
  $IASEG export --checkpoint weights/camvid_erfpspnet_ce.pt --out weights/camvid_erfpspnet_ce.int8-$size.xml \
      --size $size --int8 --calib-root "$ROOT" --calib-dataset camvid --val-root "$ROOT" --val-dataset camvid
done
# BiERF-PSPNet at its own sizes (context 176x240 + spatial 360x480, the checkpoint's)
$IASEG export --checkpoint weights/camvid_bierfpspnet_ce.pt --out weights/camvid_bierfpspnet_ce.int8-176x240.xml \
    --int8 --calib-root "$ROOT" --calib-dataset camvid --val-root "$ROOT" --val-dataset camvid
