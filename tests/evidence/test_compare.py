"""Comparisons of reports: deltas, recomputed group means, undefined values."""
import json
import math

import numpy as np
import pytest

from iaseg.evidence import compare_reports
from iaseg.metrics import build_report

from tests.helpers.compare import DESC, GROUPS, camvid_report


def test_compare_recomputes_group_means_when_groups_differ():
    a, b = camvid_report(1), camvid_report(2)
    moved = {g: list(c) for g, c in GROUPS.items()}
    moved["G3"].remove("Car")
    moved["G2"].append("Car")
    b = build_report(b["confusion_matrix"], DESC.classes, moved)
    comp = compare_reports(a, b, ("A", "B"))["comparison"]
    g3_b = np.mean([b["per_class"][c]["recall"] for c in GROUPS["G3"]])
    assert comp["groups"]["G3"]["recall"]["b"] == pytest.approx(g3_b)  # A's groups, B recomputed
    assert comp["notes"] and "B's group means were recomputed" in comp["notes"][0]


def test_comparison_keeps_undefined_values_undefined(tmp_path):
    groups = {"G1": ["x"], "G2": ["y", "z"]}
    with pytest.warns(UserWarning, match="z"):
        a = build_report([[3, 0, 0], [1, 2, 0], [0, 0, 0]], ["x", "y", "z"], groups)  # z absent
    b = build_report([[3, 0, 0], [0, 2, 1], [0, 0, 4]], ["x", "y", "z"], groups)
    result = compare_reports(a, b, ("A", "B"), tmp_path)
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["per_class"]["z"]["iou"] == {"a": None, "b": 0.8, "delta": None}  # z in B: 4 / (4 + 5 - 4)
    assert math.isnan(result["comparison"]["per_class"]["z"]["iou"]["delta"])
    rows = [line for line in result["markdown"].splitlines() if "| IoU |" in line]
    # Table II columns: G2 (y, z) then G1 (x); rows A, B, delta
    assert rows[0].endswith("| 66.7 | - | 75.0 |") and rows[2].endswith("| 0.0 | - | **+25.0** |")


def test_compare_adds_the_boundary_metrics_of_both_reports(tmp_path):
    import torch

    from iaseg.metrics import BoundaryMetrics, build_report
    from iaseg.evidence.compare import compare_reports

    classes, groups = ["a", "b", "c"], {"G1": ["a"], "G2": ["b"], "G3": ["c"]}
    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[:, 8:24, 8:24] = 2
    target[:, :, :4] = 1
    reports = []
    for shift in (0, 3):
        pred = torch.roll(target, shift, dims=2)
        bm = BoundaryMetrics(3, None, tolerance=1)
        bm.update(pred, target)
        cm = torch.bincount(target.flatten() * 3 + pred.flatten(), minlength=9).view(3, 3)
        rep = build_report(cm, classes, groups)
        rep["boundary"] = bm.result(classes, groups)
        reports.append(rep)
    result = compare_reports(reports[0], reports[1], ["exact", "shifted"], tmp_path)
    rows = result["comparison"]["boundary"]["rows"]
    assert rows["c"]["f"]["a"] == 1.0 and rows["c"]["f"]["b"] < 1.0  # a 3 px shift with a 1 px tolerance
    assert rows["mean"]["f"]["delta"] == pytest.approx(rows["mean"]["f"]["b"] - 1.0)
    md = (tmp_path / "comparison.md").read_text()
    assert "## Boundaries (%)" in md and "trimap IoU d=16" in md
    assert json.loads((tmp_path / "comparison.json").read_text())["boundary"]["widths"] == [2, 4, 8, 16]
