#!/usr/bin/env python
"""Run from the repository root: `python benchmarks/evaluate_page_overhead.py`.

Overhead of evaluate's always-on OffsetSweep (+ overlay picker) on CamVid val images: the
evaluate_loader pass with and without them, alternated, CPU time of this process."""
import os
import time
from pathlib import Path

import torch

from iaseg.data import build_dataset, build_loader
from iaseg.data.subset import subset
from iaseg.engine.evaluator import evaluate_loader
from iaseg.inference.open import load_model
from iaseg.metrics.frontier import OffsetSweep, DEFAULT_DELTAS
from iaseg.metrics.html import OverlayPicker
torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("IASEG_CAMVID", REPO.parent / "shared" / "data" / "camvid"))
device = torch.device("cpu")
model, meta, ckpt = load_model(str(REPO / "weights" / "camvid_erfpspnet_ce.pt"), device)
desc = meta.description
ds = subset(build_dataset("camvid", CAMVID, "val", size=meta.input_size), max_images=16)
loader = build_loader(ds, batch_size=8, shuffle=False, num_workers=0)
g3 = desc.group_indices()[-1]
res = {"plain": [], "sweep+overlays": []}
for rep in range(2):
    for kind in res:
        obs = []
        if kind != "plain":
            sw = OffsetSweep(desc.num_classes, desc.ignore_index, {"G3": g3}, DEFAULT_DELTAS)
            ov = OverlayPicker(desc)
            obs = [lambda b, l, p, t: sw.update(l, t), ov.update]
        t0 = time.process_time()
        evaluate_loader(model, loader, meta.input_names, desc.num_classes, desc.ignore_index, device,
                        progress=False, observers=obs)
        res[kind].append(time.process_time() - t0)
print({k: [round(v, 1) for v in vs] for k, vs in res.items()})
print("ratio (min/min):", round(min(res["sweep+overlays"]) / min(res["plain"]), 3))
