"""The single-G3-offset rule calibrated on CamVid val with the shipped CE weights (matched point,
--max-miou-drop 0.5, --family single: +0.5 on G3; promise in-sample) applied to the 0006R0-out
CE models of the GPU study on 0006R0, which they never saw, read off their G3 offset frontiers
(results/camvid_loso_gpu/ce/seedK/eval_train/frontier.json: the confusion matrix of every G3
offset on 0006R0), and checked against the rule's promise with iaseg's check_promise.

    PYTHONPATH=src python results/rule_transfer/single_offset_on_0006r0.py RULE.json
"""
import json
import sys
from pathlib import Path

import numpy as np

from iaseg.data.description import load_description
from iaseg.decision import load_rule
from iaseg.decision.promise import check_promise
from iaseg.metrics.frontier import load_frontier

root = Path(__file__).resolve().parents[2] / "results" / "camvid_loso_gpu" / "ce"
desc = load_description("camvid")
rule = load_rule(sys.argv[1], desc)
offset = float(rule.offsets[desc.class_index("Car")])
g3 = [desc.class_index(c) for c in desc.groups["G3"]]
rows = {}
for seed in sorted(p.name for p in root.iterdir() if p.name.startswith("seed")):
    f = load_frontier(root / seed / "eval_train" / "frontier.json")
    deltas = np.round(np.asarray(f["deltas"], dtype=np.float64), 4)
    cms = f["sets"]["G3"]["confusions"]
    plain, ruled = cms[int(np.argmin(abs(deltas)))], cms[int(np.argmin(abs(deltas - offset)))]
    check, lines = check_promise(rule.info["promise"], plain, ruled, desc)
    rows[seed] = {k: check[k]["realised"] for k in ("miou_cost", "group_recall", "group_recall_gain")}
    rows[seed]["broken"] = check["broken"]
    # what one G3 offset could have bought there for the same budget (read off the held-out data: an oracle)
    miou = np.array([float(np.nanmean(np.diag(m) / (m.sum(0) + m.sum(1) - np.diag(m)))) for m in cms])
    rec = np.array([float(np.nanmean([m[k, k] / m[k].sum() for k in g3])) for m in cms])
    base = int(np.argmin(abs(deltas)))
    ok = miou >= miou[base] - 0.005
    rows[seed]["oracle_gain_at_0.5"] = 100 * float(rec[ok].max() - rec[base])
    print(f"{seed}: {lines[0]}")
print(json.dumps({"offset": offset, "rows": rows}, indent=2))
