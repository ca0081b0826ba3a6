"""`iaseg evaluate`: report files, one-line errors."""
import json

import numpy as np
import pytest
import torch

from iaseg.checkpoint import load_checkpoint
from iaseg.cli import main as cli


def test_evaluate_cli_writes_reports(tiny_run, tmp_path):
    assert cli(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(tmp_path / "ev"),
                "--no-progress"]) == 0
    for name in ("report.json", "report.md", "report.csv", "confusion_matrix.png"):
        assert (tmp_path / "ev" / name).is_file()
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert list(report["per_class"])[:2] == ["Sky", "Building"]
    assert report["meta"]["split"] == "val"
    # the numbers follow from the confusion matrix (float64, undefined classes left out)
    m = np.asarray(report["confusion_matrix"], dtype=np.float64)
    assert m.sum() == report["meta"]["pixels"] > 0
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (m.sum(0) + m.sum(1) - tp)
        recall = tp / m.sum(1)
    g3 = [list(report["per_class"]).index(c) for c in report["meta"]["groups"]["G3"]]
    for reported, expected in ((report["mean"]["iou"], iou), (report["groups"]["G3"]["recall"], recall[g3])):
        defined = expected[~np.isnan(expected)]
        assert reported == (pytest.approx(defined.mean(), abs=1e-12) if defined.size else None)


def test_evaluate_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_text("garbage")
    assert cli(["evaluate", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "x.pt" in err and len(err.splitlines()) == 1


def test_published_weights_need_root_for_real_datasets(tiny_run, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_run / "best.pt")
    ckpt["config"]["data"].update(dataset="camvid", root=None)
    path = tmp_path / "camvid_like.pt"
    torch.save(ckpt, path)
    assert cli(["evaluate", "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "give --root DIR" in err and len(err.splitlines()) == 1


def test_frontier_offsets_reproduce_evaluate_with_a_decision_rule(tiny_run, tmp_path):
    """frontier.json at offset d equals `iaseg evaluate --decision-rule` with d on the group."""
    from iaseg.decision import DecisionRule
    from iaseg.metrics.frontier import load_frontier
    from iaseg.metrics.per_image import load_per_image

    ckpt = str(tiny_run / "best.pt")
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "f"), "--no-progress",
                "--frontier", "G3", "--frontier-offsets=-0.5:1.5:0.25"]) == 0
    front = load_frontier(tmp_path / "f" / "frontier.json")
    classes = front["classes"]
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    g3 = [classes.index(c) for c in report["meta"]["groups"]["G3"]]
    assert front["deltas"] == [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    m0 = front["sets"]["G3"]["confusions"][2]
    assert np.array_equal(m0, np.asarray(report["confusion_matrix"]))  # offset 0 = plain argmax
    for k in (1, 4, 8):
        offsets = torch.zeros(len(classes))
        offsets[g3] = front["deltas"][k]
        DecisionRule(offsets, classes).save(tmp_path / f"rule{k}.json")
        assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / f"r{k}"), "--no-progress",
                    "--decision-rule", str(tmp_path / f"rule{k}.json")]) == 0
        ruled = json.loads((tmp_path / f"r{k}" / "report.json").read_text())
        assert np.array_equal(front["sets"]["G3"]["confusions"][k], np.asarray(ruled["confusion_matrix"])), k
    # per-image counts sum to the report's matrix; boundary metrics are in the report
    counts = load_per_image(tmp_path / "f" / "per_image.npz")
    assert np.array_equal(counts.total, np.asarray(report["confusion_matrix"]))
    assert len(counts.names) == report["meta"]["images"]
    assert set(report["boundary"]) == {"boundary_f", "trimap_iou"}
    assert report["boundary"]["trimap_iou"]["widths"] == [2, 4, 8, 16]
    assert "## Boundaries (%)" in (tmp_path / "f" / "report.md").read_text()


def test_evaluate_option_and_frontier_errors(tiny_run, tmp_path, capsys):
    ckpt = str(tiny_run / "best.pt")
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--frontier", "G9"]) == 2
    assert "--frontier 'G9': no such group" in capsys.readouterr().err
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--option", "novalue"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--frontier-offsets", "1:0:0.1"]) == 2
    assert "STOP >= START" in capsys.readouterr().err
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--no-progress",
                "--option", "length=3"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["meta"]["images"] == 3


def test_evaluate_exported_files_and_backends(tiny_run, tmp_path, capsys):
    """An ONNX export scores like its checkpoint (fp32); a named backend is recorded."""
    ckpt = str(tiny_run / "best.pt")
    assert cli(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "m.onnx")]) == 0
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "exact"), "--no-progress"]) == 0
    assert cli(["evaluate", "--checkpoint", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "onnx"),
                "--no-progress", "--dataset", "synthetic", "--option", "length=8", "--option", "seed=0"]) == 0
    exact = json.loads((tmp_path / "exact" / "report.json").read_text())
    onnx = json.loads((tmp_path / "onnx" / "report.json").read_text())
    assert exact["meta"]["path"] == "exact fp32 eager" and onnx["meta"]["path"].startswith("onnxruntime fp32")
    cm_a, cm_b = np.asarray(exact["confusion_matrix"]), np.asarray(onnx["confusion_matrix"])
    assert cm_a.sum() == cm_b.sum() and np.trace(cm_b) >= 0.999 * np.trace(cm_a)  # fp32 runtimes agree
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "e"), "--no-progress",
                "--backend", "eager", "--precision", "fp32"]) == 0
    assert json.loads((tmp_path / "e" / "report.json").read_text())["meta"]["path"].startswith("eager fp32")
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "x"), "--precision", "bf16"]) == 2
    assert "--precision is for a non-exact --backend" in capsys.readouterr().err


def test_a_checkpoint_with_nan_weights_is_refused(tiny_run, tmp_path, capsys):
    from iaseg.checkpoint import save_checkpoint

    ckpt = load_checkpoint(tiny_run / "last.pt")
    ckpt["model"] = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
                     for k, v in ckpt["model"].items()}
    save_checkpoint(ckpt, tmp_path / "nan.pt")
    assert cli(["evaluate", "--checkpoint", str(tmp_path / "nan.pt"), "--out", str(tmp_path / "ev"),
                "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"iaseg evaluate: error: checkpoint {tmp_path / 'nan.pt'} holds non-finite weights (")
    assert "\n" not in err and not (tmp_path / "ev" / "report.json").exists()


def test_0_and_2_loader_workers_give_identical_reports(tiny_run, tmp_path):
    """Every file evaluate writes is the same with and without worker processes (the date of the
    run aside): the order of images, their per-image counts, the frontier, the boundary scores."""
    for workers in (0, 2):
        assert cli(["evaluate", "--checkpoint", str(tiny_run / "last.pt"), "--out", str(tmp_path / f"w{workers}"),
                    "--no-progress", "--workers", str(workers), "--batch-size", "3", "--frontier"]) == 0
    a, b = tmp_path / "w0", tmp_path / "w2"
    reports = [json.loads((d / "report.json").read_text()) for d in (a, b)]
    for r in reports:
        r["meta"].pop("date")
    assert reports[0] == reports[1] and reports[0]["meta"]["images"] == 8
    for name in ("report.csv", "per_image.npz", "frontier.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.skipif(not __import__("iaseg.inference", fromlist=["openvino_available"]).openvino_available(),
                    reason="openvino is not installed")
def test_an_exported_ir_is_scored_in_fp32_unless_amp_is_asked(tiny_run, tmp_path, monkeypatch):
    """On a CPU with native bf16 (faked here) an fp32 .xml would run bf16 by load_runner's 'auto':
    evaluate scores it fp32, as a checkpoint, and bf16 only with --amp bf16."""
    import iaseg.inference.openvino as ov

    monkeypatch.setattr(ov, "native_bf16_cpu", lambda: True)
    xml = tmp_path / "m.xml"
    assert cli(["export", "--checkpoint", str(tiny_run / "best.pt"), "--format", "openvino", "--out", str(xml)]) == 0
    data = ["--dataset", "synthetic", "--option", "length=2", "--no-progress"]
    assert cli(["evaluate", "--checkpoint", str(xml), "--out", str(tmp_path / "a"), *data]) == 0
    meta = json.loads((tmp_path / "a" / "report.json").read_text())["meta"]
    assert meta["path"].startswith("openvino fp32") and "bf16" not in meta["path"]
    assert cli(["evaluate", "--checkpoint", str(xml), "--out", str(tmp_path / "b"), *data, "--amp", "bf16"]) == 0
    assert json.loads((tmp_path / "b" / "report.json").read_text())["meta"]["path"].startswith("openvino bf16")


def test_an_exported_file_of_a_shipped_dataset_needs_no_dataset_option(tiny_run, tmp_path, capsys):
    """The tiny model's classes are CamVid's (description 'camvid'): its ONNX export is scored on a
    CamVid tree given only --root."""
    from tests.helpers.data import camvid_tree

    onnx = tmp_path / "m.onnx"
    assert cli(["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(onnx)]) == 0
    camvid_tree(tmp_path / "camvid", "val", names=("a", "b"), h=32, w=32)
    assert cli(["evaluate", "--checkpoint", str(onnx), "--root", str(tmp_path / "camvid"), "--out",
                str(tmp_path / "e"), "--no-progress"]) == 0
    meta = json.loads((tmp_path / "e" / "report.json").read_text())["meta"]
    assert (meta["dataset"], meta["images"]) == ("camvid", 2)


def test_undefined_metrics_are_one_note_line_without_a_source_location(tiny_run, tmp_path, capsys):
    """Two images miss classes: the means leave them out, and the console says so in one line
    (no warning class, file name or line number)."""
    assert cli(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(tmp_path / "e"),
                "--no-progress", "--option", "length=2"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "undefined per-class values" in line]
    assert len(notes) == 1 and notes[0].startswith("iaseg evaluate: note: undefined per-class values (no ground-truth")
    assert "UndefinedMetricWarning" not in err and ".py:" not in err


def test_max_images_scores_a_seeded_subset_and_says_which(tiny_run, tmp_path, capsys):
    from iaseg.metrics.per_image import load_per_image

    args = ["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--no-progress", "--option", "length=6"]
    assert cli([*args, "--out", str(tmp_path / "all")]) == 0
    capsys.readouterr()
    assert cli([*args, "--out", str(tmp_path / "sub"), "--max-images", "2", "--subset-seed", "5"]) == 0
    picked = sorted(np.random.default_rng(5).choice(6, size=2, replace=False).tolist())
    names = [f"synthetic://val/seed0/{i:06d}" for i in picked]
    assert f"val: 2 of 6 images (at most 2 drawn at random with seed 5): {names[0][-6:]}, {names[1][-6:]}" \
        in capsys.readouterr().out
    meta = json.loads((tmp_path / "sub" / "report.json").read_text())["meta"]
    assert meta["images"] == 2 and meta["subset"]["images"] == names
    full = load_per_image(tmp_path / "all" / "per_image.npz")
    part = load_per_image(tmp_path / "sub" / "per_image.npz")
    assert list(part.names) == [full.names[i] for i in picked]
    np.testing.assert_array_equal(part.counts, full.counts[picked])  # the same images, scored the same


def page_explorer(html_path):
    """The explorer's data as the page holds it (the JSON block its script reads)."""
    import re

    text = html_path.read_text()
    return json.loads(re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', text,
                                re.S).group(1).replace("<\\/", "</"))


def test_report_html_explorer_equals_evaluate_with_the_rule_it_names(tiny_run, tmp_path, capsys):
    """report.html is written; at an offset of its explorer, the numbers it shows are the ones
    `iaseg evaluate --decision-rule` writes for the rule of the command it shows (run here)."""
    import shlex

    ckpt = str(tiny_run / "best.pt")
    data = ["--no-progress", "--option", "length=3"]
    assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "ev"), *data]) == 0
    page = tmp_path / "ev" / "report.html"
    html = page.read_text()
    assert "<table" in html and "Operating-point explorer" in html and "data:image/png;base64," in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    explorer = page_explorer(page)
    assert explorer["set"] == "G3" and len(explorer["deltas"]) == 101 and explorer["labels"][explorer["start"]] == "0"
    plain = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert explorer["points"][explorer["start"]]["mean"]["iou"] == plain["mean"]["iou"]
    for k in (60, 100):
        command = shlex.split(explorer["command"].replace("{offset}", explorer["labels"][k]))
        assert command[:2] == ["iaseg", "calibrate"]
        rule = tmp_path / command[command.index("--out") + 1]
        command[command.index("--out") + 1] = str(rule)
        assert cli(command[1:]) == 0
        assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / f"r{k}"), *data,
                    "--decision-rule", str(rule)]) == 0
        ruled = json.loads((tmp_path / f"r{k}" / "report.json").read_text())
        shown = explorer["points"][k]
        assert shown["mean"] == {m: ruled["mean"][m] for m in ("precision", "recall", "iou")}, k
        for g, values in ruled["groups"].items():
            assert shown["groups"][g] == {m: values[m] for m in ("precision", "recall", "iou")}, (k, g)
        for c, values in ruled["per_class"].items():
            assert shown["classes"][c] == {m: None if values[m] is None else values[m]
                                           for m in ("precision", "recall", "iou")}, (k, c)
    assert shown["groups"]["G3"]["recall"] > plain["groups"]["G3"]["recall"]  # +4 on G3 buys its recall
