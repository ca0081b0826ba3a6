"""Figures of the boundary experiment from the committed reports (in %):
python results/camvid_boundary/summary.py

First every run, then mean ± SD over seeds per setting, with the boundary F of the classes the
paper's Fig. 4 points at (poles, pedestrians, riders = Bicyclist in CamVid). ERF-PSPNet at
360x480 is the study's weighted-CE runs: on the CPU (../camvid_study/ce, the protocol of the other
two settings) and on a GPU (../camvid_study_gpu/ce, the same config, a separate protocol)."""
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "ERF-PSPNet 176x240": HERE.glob("erf176_ce/seed*/eval_full/report.json"),
    "BiERF-PSPNet 176x240 + 360x480": HERE.glob("bierf_ce/seed*/eval_full/report.json"),
    # seeds 0-2, the seeds of the two settings above (the study's CPU seed 3 finished later)
    "ERF-PSPNet 360x480 (CPU)": [HERE.parent / f"camvid_study/ce/seed{s}/eval_val/report.json" for s in range(3)],
    "ERF-PSPNet 360x480 (GPU)": HERE.parent.glob("camvid_study_gpu/ce/seed*/eval_val/report.json"),
}
CLASSES = ("Pole", "Pedestrian", "Bicyclist")


def figures(report: dict) -> dict[str, float]:
    b = report["boundary"]
    out = {"mean IoU": report["mean"]["iou"], "G3 recall": report["groups"]["G3"]["recall"],
           "boundary F": b["boundary_f"]["mean"]["f"], "G3 boundary F": b["boundary_f"]["groups"]["G3"]["f"]}
    out.update({f"{c} boundary F": b["boundary_f"]["per_class"][c]["f"] for c in CLASSES})
    out.update({f"trimap IoU d={d}": v for d, v in zip(b["trimap_iou"]["widths"], b["trimap_iou"]["mean"])})
    return {k: 100 * v for k, v in out.items()}


runs = {name: {p: figures(json.loads(p.read_text())) for p in sorted(paths)} for name, paths in SETTINGS.items()}
keys = list(next(iter(runs["ERF-PSPNet 176x240"].values())))
print("| run | " + " | ".join(keys) + " |")
print("|---|" + "---:|" * len(keys))
for setting in runs.values():
    for path, f in setting.items():
        print(f"| {path.parent.parent.relative_to(HERE.parent)} | " + " | ".join(f"{f[k]:.2f}" for k in keys) + " |")
print()
print("| setting (seeds) | " + " | ".join(keys) + " |")
print("|---|" + "---:|" * len(keys))
for name, setting in runs.items():
    values = np.array([[f[k] for k in keys] for f in setting.values()])
    sd = values.std(0, ddof=1) if len(values) > 1 else np.full(len(keys), np.nan)
    cells = [f"{m:.1f} ± {s:.1f}" if np.isfinite(s) else f"{m:.1f}" for m, s in zip(values.mean(0), sd)]
    print(f"| {name} ({len(values)}) | " + " | ".join(cells) + " |")
