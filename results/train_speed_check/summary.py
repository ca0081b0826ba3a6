"""Print the table of README.md from the four runs' metrics.jsonl (last epoch's validation)."""
import json
from pathlib import Path

here = Path(__file__).parent
res = {}
for run in ("old_s0", "new_s0", "old_s1", "new_s1"):
    last = [json.loads(line) for line in open(here / run / "metrics.jsonl")][-1]
    v = last["val"]
    res[run] = (100 * v["mean"]["iou"], 100 * v["groups"]["G3"]["recall"], last["train_loss"])
    print(f"{run}: val mIoU {res[run][0]:.1f}  G3 recall {res[run][1]:.1f}  epoch-6 train loss {res[run][2]:.3f}")
for path in ("old", "new"):
    m = [sum(res[f"{path}_s{s}"][i] for s in (0, 1)) / 2 for i in range(3)]
    print(f"{path} mean of 2 seeds: mIoU {m[0]:.2f}  G3 recall {m[1]:.1f}  train loss {m[2]:.3f}")
for s in (0, 1):
    d = [res[f"new_s{s}"][i] - res[f"old_s{s}"][i] for i in range(3)]
    print(f"seed {s} new - old: mIoU {d[0]:+.1f}  G3 recall {d[1]:+.1f}  train loss {d[2]:+.3f}")
