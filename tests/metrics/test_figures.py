import json

import numpy as np
import pytest
from PIL import Image

from iaseg.metrics import (build_report, importance_overlay, plot_class_bars, plot_confusion_matrix, plot_overlays,
                           plot_training_curves, read_metrics_jsonl)
from iaseg.metrics.figures import A_COLOR, B_COLOR, GT_COLOR, boundary


def assert_png(path, min_size=(100, 100)):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= min_size[0] and im.size[1] >= min_size[1]


def small_report(diag):
    m = np.full((4, 4), 5) + np.diag(diag)
    return build_report(m, ["a", "b", "c", "d"], {"G1": ["a", "b"], "G2": ["c", "d"]})


def test_confusion_matrix_and_bar_chart_pngs(tmp_path):
    plot_confusion_matrix([[5, 1, 0], [2, 3, 0], [0, 0, 0]], ["x", "y", "z"], tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    with pytest.raises(ValueError, match="2 class names"):
        plot_confusion_matrix([[1]], ["x", "y"], tmp_path / "bad.png")
    out = plot_class_bars({"CE": small_report([50, 40, 30, 20]), "IAL": small_report([45, 40, 40, 30])},
                          tmp_path / "bars.png", title="t")
    assert out == tmp_path / "bars.png"
    assert_png(out)
    with pytest.raises(ValueError):
        plot_class_bars({}, tmp_path / "none.png")


def test_boundary_of_a_square():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    ring = boundary(mask, 1)
    assert ring.sum() == 16 and not ring[3, 3] and ring[1, 3]
    assert boundary(mask, 2).sum() == 24 and not boundary(mask, 2)[3, 3]
    full = np.ones((3, 3), bool)  # the image border counts as background
    assert boundary(full, 1).sum() == 8


def test_importance_overlay_colours():
    img = np.full((12, 16, 3), 100, np.uint8)
    gt = np.zeros((12, 16), np.int64)
    gt[2:8, 2:10] = 3
    gt[0, 15] = 5                     # a class outside the group: not drawn
    a = np.zeros_like(gt)
    a[3:9, 4:12] = 3
    b = np.zeros_like(gt)
    b[1:11, 11:15] = 4
    before = img.copy()
    out = importance_overlay(img, gt, a, b, class_ids=[3, 4], alpha=0.5, thickness=1)
    assert np.array_equal(img, before) and out.dtype == np.uint8 and out.shape == img.shape
    assert out[11, 0].tolist() == [100, 100, 100] and out[0, 15].tolist() == [100, 100, 100]
    expect_gt = np.rint(0.5 * 100 + 0.5 * np.asarray(GT_COLOR)).tolist()
    assert out[2, 2].tolist() == expect_gt                    # GT only: blended blue
    assert out[5, 4].tolist() == list(A_COLOR)                # A's left edge, inside GT
    assert out[5, 6].tolist() == expect_gt                    # inside A and GT, not an edge
    assert out[5, 11].tolist() == list(B_COLOR)               # B's left edge over A's right edge: B on top
    assert out[6, 13].tolist() == [100, 100, 100]             # inside B only, not an edge
    with pytest.raises(ValueError, match="uint8"):
        importance_overlay(img.astype(np.float32), gt, a, b, [3])
    with pytest.raises(ValueError, match="pred_b"):
        importance_overlay(img, gt, a, b[:5], [3])


def test_plot_overlays(tmp_path):
    img = np.zeros((24, 32, 3), np.uint8)
    img[6:18, 8:24] = (0, 200, 0)  # a quarter of each panel
    out = plot_overlays([(img, "one"), (img, "two"), (img, "three")], tmp_path / "o.png", ("CE", "IAL"), "G3")
    assert_png(out)
    one = plot_overlays([(img, "one")], tmp_path / "o1.png", ("CE", "IAL"), "G3")
    green = [int((np.asarray(Image.open(p).convert("RGB")) == (0, 200, 0)).all(-1).sum()) for p in (one, out)]
    # wide images stack in one column at full width: each panel shows the square, ~1/4 of 700 x 525 px
    assert green[0] == pytest.approx(700 * 525 / 4, rel=0.1) and green[1] == pytest.approx(3 * green[0], rel=0.05)
    with pytest.raises(ValueError):
        plot_overlays([], tmp_path / "x.png", ("CE", "IAL"), "G3")


def test_training_curves_from_metrics_jsonl(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = []
    for epoch in (1, 2, 3):
        val = {"mean": {"precision": 0.5, "recall": 0.4 + 0.05 * epoch, "iou": 0.3 + 0.05 * epoch},
               "groups": {g: {"precision": 0.5, "recall": 0.3 + 0.1 * epoch, "iou": None if g == "G3" and epoch == 1
                              else 0.2 * epoch} for g in ("G1", "G2", "G3")},
               "per_class": {"a": {"precision": 1.0, "recall": 1.0, "iou": 1.0}}}
        lines.append(json.dumps({"epoch": epoch, "train_loss": 1.0 / epoch, "lr": 1e-3, "images_per_s": 3.0,
                                 "dynamic_weights": [1.0, 2.0], "val": val}))
    lines.append('{"epoch": 4, "train_lo')  # interrupted write: skipped
    (run / "metrics.jsonl").write_text("\n".join(lines))
    assert [r["epoch"] for r in read_metrics_jsonl(run)] == [1, 2, 3]
    assert_png(plot_training_curves(run / "metrics.jsonl", tmp_path / "curves.png"))
    flat = tmp_path / "flat.jsonl"
    flat.write_text(json.dumps({"epoch": 1, "loss": 2.0, "val/mean/iou": 0.5, "val/G3/recall": 0.4}) + "\n")
    assert_png(plot_training_curves(flat, tmp_path / "flat.png"))
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        plot_training_curves(tmp_path / "nowhere", tmp_path / "x.png")
    (tmp_path / "bad.jsonl").write_text('{"loss": 1}\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_metrics_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no epochs"):
        read_metrics_jsonl(tmp_path / "empty.jsonl")


def _pixels(path, rgb):
    return int((np.asarray(Image.open(path).convert("RGB")) == rgb).all(-1).sum())


def test_one_colour_per_method_in_every_figure(tmp_path):
    """Bars, training curves and the overlay draw method i in method_color(i) (the overlay's A and
    B outlines too); other runs' colours do not appear."""
    from iaseg.metrics import plot_curves_comparison
    from iaseg.metrics.figures import method_color, method_rgb

    assert method_rgb(0) == A_COLOR and method_rgb(1) == B_COLOR
    assert [method_rgb(i) for i in range(2)] == [(242, 183, 5), (214, 39, 40)] and method_color(0) == "#f2b705"
    runs = {}
    for name, offset in (("CE", 0.0), ("IAL", 0.1)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("\n".join(json.dumps(
            {"epoch": e, "train_loss": 1.0 / e + offset,
             "val": {"mean": {"iou": 0.3 + 0.05 * e + offset}, "groups": {"G2": {"recall": 0.2 + 0.1 * e + offset}}}})
            for e in range(1, 6)))
        runs[name] = tmp_path / name
    curves = plot_curves_comparison(runs, tmp_path / "curves.png")
    bars = plot_class_bars({"CE": small_report([50, 40, 30, 20]), "IAL": small_report([45, 40, 40, 30])},
                           tmp_path / "bars.png")
    for figure in (curves, bars):
        assert _pixels(figure, method_rgb(0)) > 100 and _pixels(figure, method_rgb(1)) > 100, figure
        assert _pixels(figure, method_rgb(2)) == 0, figure   # matplotlib's default first colour is not used


def test_class_bars_with_hatched_series_and_group_means(tmp_path):
    from iaseg.metrics.figures import method_color, method_rgb

    ours, paper = small_report([50, 40, 30, 20]), small_report([45, 40, 40, 30])
    out = plot_class_bars({"ours": ours, "paper": paper}, tmp_path / "p.png", colors=[method_color(1)] * 2,
                          hatched=["paper"], group_means=True)
    assert_png(out, (800, 300))
    assert _pixels(out, method_rgb(1)) > 500 and _pixels(out, method_rgb(0)) == 0
    with pytest.raises(ValueError, match="1 colours for 2 runs"):
        plot_class_bars({"ours": ours, "paper": paper}, tmp_path / "x.png", colors=["red"])
