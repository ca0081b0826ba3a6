import csv
import json
import math
import os
import warnings

import numpy as np
import pytest
import torch

from iaseg.data import load_description
from iaseg.metrics import (ConfusionMatrix, ReportError, UndefinedMetricWarning, build_report, class_metrics,
                           delta_pct, display_groups, find_report, format_table2_md, format_table5_md,
                           format_table_md, load_report, pct, report_csv, report_markdown, report_to_json,
                           summarize, write_report)


def reference_matrix(pred, target, c, ignore):
    """Float64/numpy reference: count (gt, pred) pairs one pixel at a time via np.add.at."""
    p, t = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = t != ignore
    m = np.zeros((c, c), np.int64)
    np.add.at(m, (t[keep], p[keep]), 1)
    return m


def nan_equal(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


# -- confusion matrix ---------------------------------------------------------------------------

def test_orientation_rows_are_ground_truth():
    # GT 0 is predicted 1 twice: class 0 has high precision / low recall, class 1 the opposite;
    # a transposed matrix would swap them.
    target = torch.tensor([[0, 0, 0, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.update(pred, target)
    assert cm.matrix.tolist() == [[1, 2], [0, 1]] and cm.matrix.dtype == torch.int64
    assert cm.precision().tolist() == pytest.approx([1.0, 1 / 3])
    assert cm.recall().tolist() == pytest.approx([1 / 3, 1.0])
    assert cm.iou().tolist() == pytest.approx([1 / 3, 1 / 3])
    assert cm.precision().dtype == torch.float64


def test_random_batches_match_numpy_reference_and_metric_formulas():
    g = torch.Generator().manual_seed(0)
    c, ignore = 5, 255
    cm = ConfusionMatrix(c, ignore)
    ref = np.zeros((c, c), np.int64)
    for _ in range(3):
        target = torch.randint(0, c, (2, 7, 9), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.2] = ignore
        pred = torch.randint(0, c, (2, 7, 9), generator=g).to(torch.uint8)  # any integer dtype
        cm.update(pred, target)
        ref += reference_matrix(pred, target, c, ignore)
    np.testing.assert_array_equal(cm.matrix.numpy(), ref)
    tp, gt, pr = np.diag(ref).astype(float), ref.sum(1), ref.sum(0)
    np.testing.assert_allclose(cm.precision().numpy(), tp / pr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cm.recall().numpy(), tp / gt, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cm.iou().numpy(), tp / (gt + pr - tp), rtol=0, atol=1e-15)


def test_ignored_pixels_do_not_count_whatever_the_prediction():
    cm = ConfusionMatrix(3, ignore_index=11)
    target = torch.tensor([[11, 11, 2, 0]])
    cm.update(torch.tensor([[0, 2, 2, 0]]), target)
    assert cm.matrix.sum().item() == 2
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    no_ignore = ConfusionMatrix(3)  # without ignore_index every target must be a class
    with pytest.raises(ValueError, match="target value 11"):
        no_ignore.update(torch.tensor([[0, 2, 2, 0]]), target)


def test_bad_inputs_raise():
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match="prediction value 3"):
        cm.update(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="prediction value -1"):
        cm.update(torch.tensor([0, -1]), torch.tensor([255, 255]))  # even on ignored pixels
    with pytest.raises(ValueError, match="target value 7"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 7]))
    with pytest.raises(TypeError, match="integer class ids"):
        cm.update(torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.tensor([0, 1]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="is a class id"):
        ConfusionMatrix(3, ignore_index=2)
    assert cm.matrix.sum() == 0  # failed updates add nothing


def test_absent_classes_give_nan_not_zero():
    cm = ConfusionMatrix(4, ignore_index=255)
    # class 2: in GT, never predicted; class 3: predicted, never in GT; class 1: absent from both
    cm.update(torch.tensor([0, 0, 3]), torch.tensor([0, 2, 0]))
    p, r, iou = cm.precision(), cm.recall(), cm.iou()
    assert math.isnan(p[1]) and math.isnan(r[1]) and math.isnan(iou[1])
    assert math.isnan(p[2]) and r[2] == 0 and iou[2] == 0
    assert p[3] == 0 and math.isnan(r[3]) and iou[3] == 0


def test_reset_merge_iadd_device_and_all_reduce_without_process_group():
    a, b = ConfusionMatrix(3, 255, device="cpu"), ConfusionMatrix(3, 255)
    assert a.matrix.device.type == "cpu" and a.matrix.sum() == 0
    a.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    b.update(torch.tensor([2, 2]), torch.tensor([1, 2]))
    total = a.matrix + b.matrix
    a += b
    assert torch.equal(a.matrix, total)
    assert a.all_reduce() is a and torch.equal(a.matrix, total)  # no process group: unchanged
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(ConfusionMatrix(4, 255))
    a.reset()
    assert a.matrix.sum() == 0 and "pixels=0" in repr(a)


def test_class_metrics_accepts_arrays_and_lists():
    m = [[3, 1], [0, 0]]
    out = class_metrics(np.array(m))
    assert out["precision"].tolist() == [1.0, 0.0] and math.isnan(out["recall"][1])
    assert torch.equal(class_metrics(m)["iou"].nan_to_num(-1), out["iou"].nan_to_num(-1))
    with pytest.raises(ValueError, match="square"):
        class_metrics([[1, 2, 3]])


# -- summaries and group means ------------------------------------------------------------------

def test_group_means_against_hand_computed_values():
    # rows = GT: a: 6 px (4 right, 2 -> b); b: 4 px (3 right, 1 -> c); c: 2 px (2 right)
    m = [[4, 2, 0], [0, 3, 1], [0, 0, 2]]
    report = build_report(m, ["a", "b", "c"], {"low": ["a"], "high": ["b", "c"]})
    # precision: a 4/4, b 3/5, c 2/3; recall: a 4/6, b 3/4, c 2/2; IoU: a 4/6, b 3/6, c 2/3
    assert report["per_class"]["b"] == pytest.approx({"precision": 3 / 5, "recall": 3 / 4, "iou": 3 / 6})
    assert report["groups"]["low"] == pytest.approx({"precision": 1.0, "recall": 4 / 6, "iou": 4 / 6})
    assert report["groups"]["high"] == pytest.approx(
        {"precision": (3 / 5 + 2 / 3) / 2, "recall": (3 / 4 + 1) / 2, "iou": (3 / 6 + 2 / 3) / 2})
    assert report["mean"] == pytest.approx(
        {"precision": (1 + 3 / 5 + 2 / 3) / 3, "recall": (4 / 6 + 3 / 4 + 1) / 3, "iou": (4 / 6 + 3 / 6 + 2 / 3) / 3})
    assert report["confusion_matrix"] == m
    assert report["meta"] == {"classes": ["a", "b", "c"], "groups": {"low": ["a"], "high": ["b", "c"]},
                              "pixels": 12}
    assert list(report["groups"]) == ["low", "high"]  # least -> most important, as given


def test_undefined_classes_are_left_out_of_means_with_a_warning():
    m = [[2, 0, 0], [1, 1, 0], [0, 0, 0]]  # class c absent from GT and prediction
    with pytest.warns(UndefinedMetricWarning, match=r"precision: c; recall: c; iou: c"):
        report = build_report(m, ["a", "b", "c"], {"G1": ["a"], "G2": ["b", "c"]})
    assert math.isnan(report["per_class"]["c"]["iou"])
    assert report["groups"]["G2"]["recall"] == pytest.approx(0.5)      # b only
    assert report["mean"]["precision"] == pytest.approx((2 / 3 + 1) / 2)
    with pytest.warns(UndefinedMetricWarning):
        all_nan = summarize({"x": {"precision": None, "recall": None, "iou": None}}, {"G": ["x"]})
    assert math.isnan(all_nan["groups"]["G"]["iou"]) and math.isnan(all_nan["mean"]["recall"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarize({"x": {"precision": None, "recall": 1, "iou": 1}}, {"G": ["x"]}, warn=False)


def test_build_report_validates_its_inputs():
    with pytest.raises(ValueError, match="does not match 3 class names"):
        build_report([[1, 0], [0, 1]], ["a", "b", "c"], {"G": ["a"]})
    with pytest.raises(ValueError, match="non-negative integer"):
        build_report([[1, -1], [0, 1]], ["a", "b"], {"G": ["a"]})
    with pytest.raises(ValueError, match="no values.*'z'"):
        build_report([[1, 0], [0, 1]], ["a", "b"], {"G": ["a", "z"]})


# Paper Table II per-class values (%, columns in the paper's order) and Table V group means.
CAMVID_GROUPS = {"G1": ["Sky", "Building", "Tree"], "G2": ["Pole", "Road", "Sidewalk", "Fence"],
                 "G3": ["Sign", "Car", "Pedestrian", "Bicyclist"]}
CAMVID_ORDER = CAMVID_GROUPS["G3"] + CAMVID_GROUPS["G2"] + CAMVID_GROUPS["G1"]
CAMVID_TABLE2 = {
    "CE": {"precision": [33.0, 86.2, 47.8, 69.4, 35.9, 93.8, 83.3, 39.9, 94.5, 85.6, 76.7],
           "recall": [34.0, 79.9, 63.7, 47.2, 42.6, 97.1, 81.9, 25.3, 94.2, 82.3, 80.5],
           "iou": [20.1, 70.9, 37.6, 39.1, 24.2, 91.2, 70.3, 18.3, 89.3, 72.3, 64.7]},
    "IAL": {"precision": [31.0, 83.1, 39.3, 65.6, 31.3, 94.1, 81.1, 34.1, 94.8, 86.2, 76.6],
            "recall": [47.0, 83.4, 69.1, 42.7, 40.6, 96.4, 83.3, 27.3, 93.0, 79.5, 78.7],
            "iou": [23.0, 71.3, 33.5, 34.9, 21.5, 90.9, 69.7, 17.8, 88.5, 70.6, 63.4]},
}
# Table V, CamVid: (G3, G2, G1, Mean)
CAMVID_TABLE5 = {
    "CE": {"precision": [59.1, 63.2, 85.6, 67.8], "recall": [56.2, 61.7, 85.7, 66.2], "iou": [41.9, 51.0, 75.4, 54.3]},
    "IAL": {"precision": [54.8, 60.2, 85.9, 65.2], "recall": [60.6, 61.9, 83.7, 67.4], "iou": [40.7, 50.0, 74.2, 53.2]},
}


def _per_class(table, order):
    return {c: {k: table[k][i] for k in ("precision", "recall", "iou")} for i, c in enumerate(order)}


def _table5(summary):
    return {k: [summary["groups"][g][k] for g in ("G3", "G2", "G1")] + [summary["mean"][k]]
            for k in ("precision", "recall", "iou")}


@pytest.mark.parametrize("loss", ["CE", "IAL"])
def test_summarize_reproduces_paper_table5_camvid(loss):
    got = _table5(summarize(_per_class(CAMVID_TABLE2[loss], CAMVID_ORDER), CAMVID_GROUPS))
    if loss == "CE":  # the worked example: G3 = mean of Sign, Car, Pedestrian, Bicyclist
        assert got["precision"][0] == pytest.approx((33.0 + 86.2 + 47.8 + 69.4) / 4)  # 59.1
        assert got["recall"][0] == pytest.approx((34.0 + 79.9 + 63.7 + 47.2) / 4)     # 56.2
    for metric, expected in CAMVID_TABLE5[loss].items():
        for value, reported in zip(got[metric], expected):
            if (loss, metric, reported) == ("CE", "iou", 54.3):
                # The paper's mean IoU is the mean of the unrounded per-class IoUs; the mean of the
                # rounded Table II values is 598.0 / 11 = 54.36 -> 54.4. Rounding each of 11 values
                # moves their mean by up to 0.05, so 54.3 is consistent with Table II.
                assert value == pytest.approx(598.0 / 11)
                assert abs(value - reported) <= 0.05 + 0.05
                continue
            # "rounds to the reported value" (x.x5 ties either way: floats are inexact)
            assert abs(value - reported) <= 0.05 + 1e-9, (loss, metric, value, reported)


def test_summarize_reproduces_paper_table5_cityscapes():
    groups = {"G1": ["road", "building", "wall", "vegetation", "terrain", "sky"],
              "G2": ["car", "sidewalk", "fence", "pole", "person"],
              "G3": ["traffic light", "traffic sign", "rider", "truck", "bus", "train", "motorcycle", "bicycle"]}
    order = groups["G3"] + groups["G2"] + groups["G1"]  # Table III then Table IV columns
    ce = {"precision": [72.8, 81.8, 61.3, 73.1, 69.6, 64.5, 46.5, 77.7, 94.1, 84.1, 65.4, 70.0, 71.4,
                        98.7, 92.9, 63.6, 94.3, 73.9, 94.2],
          "recall": [62.0, 73.4, 50.3, 62.2, 72.2, 22.4, 34.3, 77.0, 95.4, 88.5, 47.2, 65.4, 87.7,
                     98.1, 94.0, 41.5, 94.7, 68.3, 97.6],
          "iou": [50.4, 63.1, 38.2, 50.6, 54.9, 19.9, 24.6, 63.0, 90.0, 75.8, 37.7, 51.0, 64.9,
                  96.8, 87.7, 33.6, 89.6, 55.0, 92.1]}
    ial = {"precision": [63.5, 73.6, 61.4, 72.6, 70.0, 78.7, 51.6, 76.2, 93.0, 81.1, 63.7, 65.1, 69.4,
                         98.9, 93.4, 64.4, 94.4, 70.0, 94.9],
           "recall": [68.9, 78.4, 47.6, 61.5, 76.7, 46.0, 34.1, 79.7, 96.1, 89.6, 47.5, 67.0, 88.6,
                      97.5, 93.0, 45.8, 93.6, 65.4, 97.1],
           "iou": [49.4, 61.2, 36.6, 49.9, 57.7, 40.8, 25.8, 63.8, 89.5, 74.2, 37.4, 49.3, 63.7,
                   96.5, 87.3, 36.5, 88.7, 51.0, 92.3]}
    reported = {
        "CE": {"precision": [68.4, 77.0, 86.3, 76.3], "recall": [56.7, 76.9, 82.4, 70.1], "iou": [45.6, 63.9, 75.8, 60.0]},
        "IAL": {"precision": [68.4, 74.5, 86.0, 75.6], "recall": [61.6, 77.8, 82.17, 72.3], "iou": [48.2, 62.8, 75.4, 60.6]},
    }
    for loss, table in (("CE", ce), ("IAL", ial)):
        got = _table5(summarize(_per_class(table, order), groups))
        for metric in ("precision", "recall", "iou"):
            for value, rep in zip(got[metric], reported[loss][metric]):
                if rep == 82.17:
                    # IAL G1 recall is printed "82.17" in Table V; Table IV gives 492.4 / 6 = 82.07,
                    # i.e. 82.1: a typo in the paper.
                    assert value == pytest.approx(492.4 / 6)
                    continue
                # Means of 5-19 rounded values: within 0.05 (rounding of the mean) + 0.05 (rounding of
                # the per-class values) of the paper. The tight cases: CE G2 recall 76.84 vs 76.9 and
                # CE mean IoU 1138.9 / 19 = 59.94 vs 60.0.
                assert abs(value - rep) <= 0.1 + 1e-9, (loss, metric, value, rep)
    assert _table5(summarize(_per_class(ce, order), groups))["iou"][3] == pytest.approx(1138.9 / 19)


# -- report files -------------------------------------------------------------------------------

@pytest.fixture
def camvid_report():
    desc = load_description("camvid")
    rng = np.random.default_rng(0)
    m = rng.integers(0, 50, (11, 11)) + np.diag(rng.integers(200, 900, 11))
    fence = desc.class_index("Fence")
    m[:, fence] = 0  # Fence never predicted -> precision undefined
    with pytest.warns(UndefinedMetricWarning, match="Fence"):
        return build_report(torch.as_tensor(m), desc.classes, {g: list(c) for g, c in desc.groups.items()},
                            meta={"split": "test", "checkpoint": "runs/x/best.pt", "decision_rule": None})


def test_json_round_trip_keeps_nan(tmp_path, camvid_report):
    paths = write_report(camvid_report, tmp_path / "eval")
    assert set(paths) == {"json", "md", "csv", "png"} and all(p.is_file() for p in paths.values())
    raw = json.loads(paths["json"].read_text())
    assert raw["per_class"]["Fence"]["precision"] is None  # NaN -> null: strict JSON
    assert list(raw["per_class"]) == list(load_description("camvid").classes)
    assert all(0 <= v <= 1 for c in raw["per_class"].values() for v in c.values() if v is not None)
    loaded = load_report(paths["json"])
    assert nan_equal(loaded, camvid_report)
    assert math.isnan(loaded["per_class"]["Fence"]["precision"])
    assert loaded["meta"]["decision_rule"] is None  # meta values are not touched
    assert nan_equal(load_report(tmp_path), camvid_report)  # run folder -> eval/report.json
    assert report_to_json(loaded) == paths["json"].read_text()


def test_load_report_finds_reports_in_run_folders(tmp_path, camvid_report):
    with pytest.raises(ReportError, match="no report.json"):
        find_report(tmp_path)
    with pytest.raises(ReportError, match="no such"):
        find_report(tmp_path / "missing")
    old, new = tmp_path / "eval_val" / "report.json", tmp_path / "eval_test" / "report.json"
    for p in (old, new):
        p.parent.mkdir()
        p.write_text(report_to_json(camvid_report))
    os.utime(old, (1_000_000, 1_000_000))
    assert find_report(tmp_path) == new  # latest eval_*/report.json
    (tmp_path / "report.json").write_text(report_to_json(camvid_report))
    assert find_report(tmp_path) == tmp_path / "report.json"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match="bad.json"):
        load_report(bad)
    bad.write_text('{"per_class": {}}')
    with pytest.raises(ReportError, match="not an iaseg report"):
        load_report(bad)


def _table_after(lines, heading):
    i = lines.index(heading)
    start = next(j for j in range(i, len(lines)) if lines[j].startswith("|"))
    end = next((j for j in range(start, len(lines)) if not lines[j].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:end]]


def test_markdown_has_table2_and_table5_layout(camvid_report):
    lines = report_markdown(camvid_report).splitlines()
    t2 = _table_after(lines, "## Per class (%)")
    assert len(t2) == 6  # group row, separator, class row, precision, recall, IoU
    assert t2[0] == ["Group", "G3", "", "", "", "G2", "", "", "", "G1", "", ""]
    assert t2[2] == ["Class", "SignSymbol", "Car", "Pedestrian", "Bicyclist", "Pole", "Road", "Pavement", "Fence",
                     "Sky", "Building", "Tree"]
    assert [r[0] for r in t2[3:]] == ["Precision", "Recall", "IoU"]
    pc = camvid_report["per_class"]
    assert t2[4][2] == f"{100 * pc['Car']['recall']:.1f}"
    assert t2[3][8] == "-"  # Fence precision undefined
    t5 = _table_after(lines, "## Group means (%)")
    assert t5[0] == ["Group", "G3", "G2", "G1", "Mean"]
    assert t5[4] == ["IoU"] + [pct(camvid_report["groups"][g]["iou"]) for g in ("G3", "G2", "G1")] \
        + [pct(camvid_report["mean"]["iou"])]
    assert any("split: test" in line for line in lines) and any("Fence" in line and "undefined" in line for line in lines)


def test_csv_rows(camvid_report):
    rows = list(csv.DictReader(report_csv(camvid_report).splitlines()))
    assert [r["kind"] for r in rows] == ["class"] * 11 + ["group"] * 3 + ["mean"]
    fence = next(r for r in rows if r["name"] == "Fence")
    assert fence["precision"] == "" and fence["group"] == "G2" and fence["predicted_pixels"] == "0"
    car = next(r for r in rows if r["name"] == "Car")
    assert float(car["recall"]) == camvid_report["per_class"]["Car"]["recall"]
    assert int(car["gt_pixels"]) == sum(camvid_report["confusion_matrix"][8])
    assert float(rows[-1]["iou"]) == pytest.approx(camvid_report["mean"]["iou"])


def test_table_helpers():
    assert pct(0.5678) == "56.8" and pct(None) == "-" and pct(float("nan")) == "-"
    assert delta_pct(0.012) == "**+1.2**" and delta_pct(-0.0301) == "**-3.0**" and delta_pct(0.0001) == "0.0"
    assert delta_pct(float("nan")) == "-"
    assert format_table_md(["a", "b"], [["x|y", "1"]]).splitlines() == ["| a | b |", "|:---|---:|", "| x\\|y | 1 |"]
    with pytest.raises(ValueError):
        format_table_md(["a", "b"], [["x"]])
    assert display_groups(["a", "b", "c"], {"G1": ["b"], "G2": ["c"]}) == [("G2", ["c"]), ("G1", ["b"]),
                                                                             ("(other)", ["a"])]
    t2 = format_table2_md([("G2", ["c"]), ("G1", ["a", "b"])],
                          [("A", [("Recall", {"a": "1.0", "b": "2.0", "c": "3.0"})]),
                           ("B", [("Recall", {"a": "4.0", "b": "5.0", "c": "6.0"})])]).splitlines()
    assert t2[0] == "| Group |  | G2 | G1 |  |" and t2[2] == "| Class |  | c | a | b |"
    assert t2[3] == "| A | Recall | 3.0 | 1.0 | 2.0 |" and t2[4] == "| B | Recall | 6.0 | 4.0 | 5.0 |"
    t5 = format_table5_md(["G2", "G1"], [("", [("IoU", {"G1": "1", "G2": "2", "Mean": "3"})])]).splitlines()
    assert t5[0] == "| Group | G2 | G1 | Mean |" and t5[2] == "| IoU | 2 | 1 | 3 |"
