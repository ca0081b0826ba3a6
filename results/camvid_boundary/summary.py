"""Per-run figures of the boundary experiment from the committed reports (in %):
python results/camvid_boundary/summary.py"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
print("| run | mean IoU | G3 recall | boundary F | mean trimap IoU |")
print("|---|---:|---:|---:|---|")
for report in sorted(HERE.glob("*/seed*/eval_full/report.json")):
    r = json.loads(report.read_text())
    b = r["boundary"]
    trimap = " / ".join(f"{100 * v:.1f}" for v in b["trimap_iou"]["mean"])
    widths = "/".join(map(str, b["trimap_iou"]["widths"]))
    run = report.parent.parent.relative_to(HERE)
    print(f"| {run} | {100 * r['mean']['iou']:.2f} | {100 * r['groups']['G3']['recall']:.2f} | "
          f"{100 * b['boundary_f']['mean']['f']:.2f} | {trimap} (d = {widths} px) |")
