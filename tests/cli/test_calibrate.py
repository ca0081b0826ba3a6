"""`iaseg calibrate`: argument errors, and calibrate then evaluate with the rule."""
import json
import math

import pytest
import torch

from iaseg.cli import main as cli
from iaseg.data.description import load_description
from iaseg.decision import load_rule


def test_calibrate_cli_argument_errors(tmp_path, capsys):
    assert cli(["calibrate", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "r.json")]) == 2
    assert "at least one --target" in capsys.readouterr().err
    assert cli(["calibrate", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "r.txt"),
                "--target", "G3.recall>=0.5"]) == 2
    assert "is a .json file" in capsys.readouterr().err
    assert cli(["calibrate", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "r.json"),
                "--target", "G3.recall>=0.5"]) == 2
    assert "x.pt not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    """A random-weight ERF-PSPNet checkpoint recording 4 synthetic images as its data, and its ONNX export."""
    from iaseg.checkpoint import inference_checkpoint, save_checkpoint
    from iaseg.models import build_model

    root = tmp_path_factory.mktemp("synthetic_model")
    desc = load_description("camvid")
    torch.manual_seed(0)
    model = build_model("erfpspnet", desc.num_classes)
    ckpt = inference_checkpoint(model, "erfpspnet", {}, desc, (64, 64), config={
        "data": {"dataset": "synthetic", "root": None, "options": {"length": 4, "seed": 0}}})
    save_checkpoint(ckpt, root / "m.pt")
    assert cli(["export", "--checkpoint", str(root / "m.pt"), "--out", str(root / "m.onnx")]) == 0
    return root


def test_calibrate_evaluate_end_to_end(synthetic_model, tmp_path, capsys):
    desc = load_description("camvid")
    common = ["--checkpoint", str(synthetic_model / "m.pt"), "--batch-size", "2", "--device", "cpu", "--no-progress"]
    rule_path = tmp_path / "rule" / "rule.json"
    assert cli(["calibrate", *common, "--target", "Car.recall>=0.5", "--out", str(rule_path)]) == 0
    out = capsys.readouterr().out
    assert "Car.recall>=0.5" in out
    for suffix in (".json", ".md", ".png", ".cache.pt", ".html"):
        assert rule_path.with_name("rule" + suffix).is_file(), suffix
    page = rule_path.with_name("rule.html").read_text()  # the before/after tables and the trade-off figure
    assert "<title>Decision rule rule.json</title>" in page and "data:image/png;base64," in page
    assert "Car.recall&gt;=0.5" in page
    rule = load_rule(rule_path, desc)
    after = rule.info["result"]["targets"][0]["after"]
    assert after >= 0.5
    # a second call with other (conflicting) targets reuses the cache and writes nothing
    bad = tmp_path / "rule" / "bad.json"
    assert cli(["calibrate", *common, "--target", "Sky.recall>=0.999", "--target", "Sky.precision>=0.999",
                "--cache", str(rule_path.with_name("rule.cache.pt")), "--out", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "using cached logits" in captured.out
    assert "Sky.precision>=0.999 not reachable" in captured.err and not bad.exists()
    # evaluating with the rule gives the calibrated recall (fp16 cache vs fp32 logits: tiny gaps)
    assert cli(["evaluate", *common, "--split", "val", "--out", str(tmp_path / "eval"),
                "--decision-rule", str(rule_path)]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["per_class"]["Car"]["recall"] == pytest.approx(after, abs=0.01)


def test_calibrate_matched_operating_point(synthetic_model, tmp_path, capsys):
    """--max-miou-drop with --maximize G3.recall: the most G3 recall for at most that much mean IoU,
    against confusion matrices computed directly from the cached logits."""
    from iaseg.decision import CalibrationData, confusion_from_cache, parse_objective

    desc = load_description("camvid")
    rule_path = tmp_path / "m.json"
    assert cli(["calibrate", "--checkpoint", str(synthetic_model / "m.pt"), "--batch-size", "2", "--device", "cpu",
                "--no-progress", "--max-miou-drop", "2", "--maximize", "G3.recall", "--out", str(rule_path)]) == 0
    out = capsys.readouterr().out
    data = CalibrationData.load(rule_path.with_name("m.cache.pt"))
    miou, g3 = parse_objective("miou", desc), parse_objective("G3.recall", desc)
    base = confusion_from_cache(data)
    rule = load_rule(rule_path, desc)
    got = confusion_from_cache(data, torch.as_tensor(rule.offsets))
    floor = float(miou.value(base)) - 0.02
    assert f"target mean.iou>={math.floor(1e6 * floor) / 1e6:g}" in out
    assert float(miou.value(got)) >= floor - 1e-6 and float(g3.value(got)) >= float(g3.value(base))
    # no class of the objective's group loses more than --max-class-drop (2 points) of recall
    from iaseg.metrics.confusion import class_metrics

    before, after = class_metrics(base)["recall"], class_metrics(got)["recall"]
    for k in g3.classes:
        if torch.isfinite(before[k]) and before[k] > 0.02:
            assert after[k] >= before[k] - 0.02 - 1e-6, desc.classes[k]
    assert "keeping each class of the objective within --max-class-drop 2 points" in out
    assert rule.info["result"]["targets"][0]["target"].startswith("mean.iou>=")
    assert cli(["calibrate", "--checkpoint", str(synthetic_model / "m.pt"), "--max-miou-drop", "-1",
                "--out", str(tmp_path / "x.json")]) == 2
    assert "--max-miou-drop -1" in capsys.readouterr().err


def _recalls(line):
    """'recall of the targeted classes (...): A 31.2 -> 5.9, B - -> -' -> {A: (31.2, 5.9), B: (None, None)}."""
    out = {}
    for item in line.split(": ", 1)[1].split(", "):
        name, before, _, after = item.rsplit(" ", 3)
        out[name] = tuple(None if v == "-" else float(v) for v in (before, after))
    return out


def test_calibrate_refuses_a_rule_that_lowers_a_class_of_a_recall_target(synthetic_model, tmp_path, capsys):
    """G3.recall>=0.3 is met by pushing Car up while SignSymbol falls from 31.2 to 5.9 recall."""
    common = ["--checkpoint", str(synthetic_model / "m.pt"), "--batch-size", "2", "--device", "cpu", "--no-progress",
              "--target", "G3.recall>=0.3", "--cache", str(tmp_path / "c.pt")]
    rule = tmp_path / "rule.json"
    assert cli(["calibrate", *common, "--out", str(rule)]) == 1
    captured = capsys.readouterr()
    line = next(x for x in captured.out.splitlines() if x.startswith("recall of the targeted classes"))
    recalls = _recalls(line)
    assert list(recalls) == ["SignSymbol", "Car", "Pedestrian", "Bicyclist"]  # every class of G3
    assert recalls["SignSymbol"] == (31.2, 5.9) and recalls["Bicyclist"] == (None, None)
    assert captured.err.strip() == (
        "iaseg calibrate: the rule lowers SignSymbol recall by 25.3 points (31.2 -> 5.9), more than "
        "--max-class-drop 2; no rule written (--target 'SignSymbol.recall>=0.291' keeps it, --allow-class-drop "
        "writes it)")
    assert not rule.exists()
    # "before" is plain argmax: evaluate's per-class recall on the same images
    assert cli(["evaluate", "--checkpoint", str(synthetic_model / "m.pt"), "--out", str(tmp_path / "plain"),
                "--no-progress"]) == 0
    per_class = json.loads((tmp_path / "plain" / "report.json").read_text())["per_class"]
    for name, (before, _) in recalls.items():
        if before is not None:
            assert 100 * per_class[name]["recall"] == pytest.approx(before, abs=0.051)
    # the hint works: with the floor as a target the rule keeps SignSymbol
    assert cli(["calibrate", *common, "--target", "SignSymbol.recall>=0.291", "--out", str(rule)]) == 0
    assert _recalls(next(x for x in capsys.readouterr().out.splitlines()
                         if x.startswith("recall of the targeted")))["SignSymbol"][1] >= 29.1
    # a larger --max-class-drop, or --allow-class-drop, writes the rule and records the recalls
    assert cli(["calibrate", *common, "--out", str(rule), "--max-class-drop", "25.4"]) == 0
    assert cli(["calibrate", *common, "--out", str(rule), "--allow-class-drop"]) == 0
    assert "written anyway (--allow-class-drop)" in capsys.readouterr().err
    info = load_rule(rule).info
    assert info["class_recall"]["SignSymbol"]["after"] == pytest.approx(0.059, abs=5e-4)
    assert info["class_recall"]["Bicyclist"] == {"before": None, "after": None}
    assert info["calibration"]["split"] == "val" and info["calibration"]["options"] == {"length": 4, "seed": 0}
    assert info["class_drop_allowed"] is True and info["max_class_drop"] == 2.0


def test_evaluate_warns_on_the_split_the_rule_was_calibrated_on(synthetic_model, tmp_path, capsys):
    ckpt = str(synthetic_model / "m.pt")
    rule = tmp_path / "rule.json"
    assert cli(["calibrate", "--checkpoint", ckpt, "--no-progress", "--target", "Car.recall>=0.5",
                "--out", str(rule)]) == 0
    capsys.readouterr()
    cases = [([], f"iaseg evaluate: warning: {rule} was calibrated on synthetic val, the data evaluated here"),
             (["--option", "length=3"], "(with other dataset options: check that the images do not overlap)"),
             (["--split", "test"], None)]
    for extra, warning in cases:
        assert cli(["evaluate", "--checkpoint", ckpt, "--out", str(tmp_path / "e"), "--no-progress",
                    "--decision-rule", str(rule), *extra]) == 0
        err = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
        assert (warning in err[0] and len(err) == 1) if warning else err == []


def test_calibrate_and_evaluate_take_exports_and_run_folders(synthetic_model, tmp_path, capsys):
    """The ONNX export calibrates like its checkpoint (same cached pixels, fp32 runtimes agree)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes((synthetic_model / "m.pt").read_bytes())
    common = ["--no-progress", "--target", "G3.recall>=0.3", "--allow-class-drop"]
    assert cli(["calibrate", "--checkpoint", str(run), *common, "--out", str(tmp_path / "pt.json")]) == 0
    assert f"using {run / 'best.pt'}" in capsys.readouterr().out
    assert cli(["calibrate", "--checkpoint", str(synthetic_model / "m.onnx"), *common, "--dataset", "synthetic",
                "--option", "length=4", "--option", "seed=0", "--out", str(tmp_path / "onnx.json")]) == 0
    pt, onnx = load_rule(tmp_path / "pt.json"), load_rule(tmp_path / "onnx.json")
    assert pt.info["calibration"]["path"] == "exact fp32 eager"
    assert onnx.info["calibration"]["path"].startswith("onnxruntime fp32")
    assert onnx.info["calibration"]["checkpoint"] == str(synthetic_model / "m.onnx")
    for name, values in pt.info["class_recall"].items():
        if values["before"] is not None:
            assert onnx.info["class_recall"][name]["before"] == pytest.approx(values["before"], abs=0.01)
    assert cli(["evaluate", "--checkpoint", str(run), "--out", str(tmp_path / "e"), "--no-progress"]) == 0
    assert f"using {run / 'best.pt'}" in capsys.readouterr().out
    assert json.loads((tmp_path / "e" / "report.json").read_text())["meta"]["checkpoint"] == str(run / "best.pt")


@pytest.mark.parametrize("extra, message", [
    (["--max-class-drop", "-1"], "--max-class-drop must be >= 0"),
    (["--checkpoint", "EMPTY"], "a folder without best.pt"),
    (["--checkpoint", "BAKED"], "applies a decision rule already"),
])
def test_calibrate_bad_options_are_one_line(synthetic_model, tmp_path, capsys, extra, message):
    if "BAKED" in extra:
        from iaseg.decision import DecisionRule

        desc = load_description("camvid")
        (tmp_path / "r.json").write_text(json.dumps(DecisionRule([0.5] * desc.num_classes, desc.classes).to_dict()))
        assert cli(["export", "--checkpoint", str(synthetic_model / "m.pt"), "--out", str(tmp_path / "baked.onnx"),
                    "--decision-rule", str(tmp_path / "r.json")]) == 0
        capsys.readouterr()
    (tmp_path / "empty").mkdir()
    extra = [{"EMPTY": str(tmp_path / "empty"), "BAKED": str(tmp_path / "baked.onnx")}.get(e, e) for e in extra]
    args = ["calibrate", "--checkpoint", str(synthetic_model / "m.pt"), "--no-progress", "--target", "Car.recall>=0.5",
            "--dataset", "synthetic", "--out", str(tmp_path / "x.json"), *extra]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_calibrate_on_named_images_caches_them_apart(synthetic_model, tmp_path, capsys):
    """--images: the logits of the listed images only (fewer labelled pixels than all 4), said on
    stdout; the same cache file with other images is recomputed, not reused."""
    common = ["calibrate", "--checkpoint", str(synthetic_model / "m.pt"), "--batch-size", "2", "--device", "cpu",
              "--no-progress", "--target", "Car.recall>=0.5", "--split", "val", "--allow-unmet", "--allow-class-drop"]
    cache = tmp_path / "c.pt"
    assert cli([*common, "--out", str(tmp_path / "all.json"), "--cache", str(cache)]) == 0
    from iaseg.decision import CalibrationData

    every = CalibrationData.load(cache).info["labelled_pixels"]
    capsys.readouterr()
    assert cli([*common, "--out", str(tmp_path / "one.json"), "--cache", str(cache), "--images", "000002"]) == 0
    out = capsys.readouterr()
    assert "val: 1 of 4 images (1 listed by --images): 000002" in out.out
    assert "made for other settings; recomputing it" in out.err
    one = CalibrationData.load(cache)
    assert 0 < one.info["labelled_pixels"] < every and one.info["key"]["subset"]["images"] == ["000002"]
    subset = json.loads((tmp_path / "one.json").read_text())["info"]["calibration"]["subset"]
    assert subset == {"max_images": None, "images": ["000002"], "seed": None}  # the rule says which images


def test_calibrate_offset_writes_the_given_rule(synthetic_model, tmp_path, capsys):
    """--offset NAME=VALUE: a group's classes (or one class) get VALUE, nothing else is read."""
    desc = load_description("camvid")
    ckpt = ["calibrate", "--checkpoint", str(synthetic_model / "m.pt")]
    assert cli([*ckpt, "--offset", "G3=0.75", "--offset", "car=-0.5", "--out", str(tmp_path / "r.json")]) == 0
    rule = load_rule(tmp_path / "r.json", desc)
    expected = torch.zeros(desc.num_classes)
    expected[[desc.classes.index(c) for c in desc.groups["G3"]]] = 0.75
    expected[desc.classes.index("Car")] = -0.5  # later items win
    assert torch.equal(rule.offsets, expected) and rule.info["offsets_given"] == {"G3": 0.75, "Car": -0.5}
    capsys.readouterr()
    for bad, message in ((["--offset", "G3=x"], "--offset 'G3=x': expected NAME=VALUE with a number"),
                         (["--offset", "G9=1"], "unknown group or class 'G9'"),
                         (["--offset", "G3=1", "--target", "G3.recall>=0.5"], "--offset writes the given offsets")):
        assert cli([*ckpt, *bad, "--out", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x.json").exists()
