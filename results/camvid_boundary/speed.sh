#!/usr/bin/env bash
# CPU speed of the three settings of the boundary experiment, batch 1, 2 threads, every backend
# (speed does not depend on the weights: seeded random init, CamVid's 11 classes). Run with the
# machine otherwise idle; JSON into results/camvid_boundary/speed/.
# Usage: bash results/camvid_boundary/speed.sh   (IASEG=path/to/iaseg to use another install)
set -euo pipefail
cd "$(dirname "$0")/../.."
IASEG=${IASEG:-iaseg}
OUT=results/camvid_boundary/speed
mkdir -p $OUT
common="--backend all --no-compile --threads 2 --num-classes 11"
$IASEG benchmark --model erfpspnet --size 176x240 $common --json $OUT/erf176.json
$IASEG benchmark --model bierfpspnet --size 176x240 --spatial-size 360x480 $common --json $OUT/bierf176_360.json
$IASEG benchmark --model erfpspnet --size 360x480 $common --json $OUT/erf360.json
