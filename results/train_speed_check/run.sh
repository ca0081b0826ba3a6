#!/bin/bash
# issue 18: short CamVid check of the fast training path (fast dropout masks + bf16 trunk, main)
# against the previous path (pinned checkout 8092bfd = torch bernoulli masks, fp32 trunk):
# ERF-PSPNet 176x240, weighted CE, 6 epochs, seeds 0 and 1, val mIoU at epoch 6.
C=configs/camvid_boundary_erf176_ce.yaml
S="--set train.epochs=6 --set train.val_every=6 --set data.root=data/camvid --no-progress"
run() { $1 train --config $C --out runs/dropcheck/$2 --set train.seed=$3 $S > runs/dropcheck/$2.log 2>&1; }
run OLD/bin/iaseg old_s0 0 & run NEW/bin/iaseg new_s0 0 & wait
run OLD/bin/iaseg old_s1 1 & run NEW/bin/iaseg new_s1 1 & wait
echo done
