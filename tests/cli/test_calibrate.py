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
        err = [x for x in capsys.readouterr().err.splitlines() if "warning" in x and "PROMISE" not in x]
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


@pytest.mark.parametrize("max_pixels", ["20000000", "5000"])   # all pixels, and a seeded random sample
def test_the_same_rule_with_and_without_the_calibration_cache(synthetic_model, tmp_path, max_pixels):
    """The logits cache is a cache: a fresh call and one that reads the file give the same rule
    (the same offsets and figures), the subsample included, and the global RNG plays no part."""
    common = ["--checkpoint", str(synthetic_model / "m.pt"), "--batch-size", "2", "--device", "cpu", "--no-progress",
              "--target", "Car.recall>=0.5", "--max-pixels", max_pixels]
    fresh, cached = tmp_path / "fresh.json", tmp_path / "cached.json"
    torch.manual_seed(1)
    assert cli(["calibrate", *common, "--out", str(fresh)]) == 0
    torch.manual_seed(2)   # another global RNG state: must not matter
    assert cli(["calibrate", *common, "--cache", str(tmp_path / "fresh.cache.pt"), "--out", str(cached)]) == 0
    a, b = (json.loads(p.read_text()) for p in (fresh, cached))
    assert a["offsets"] == b["offsets"] and a["info"]["result"] == b["info"]["result"]


def test_an_export_with_a_baked_rule_refuses_a_second_rule_in_evaluate_and_says_it_applies_one(
        synthetic_model, tmp_path, capsys):
    """evaluate used to add the offsets a second time on a baked export; predict refused already."""
    from iaseg.decision import DecisionRule

    desc = load_description("camvid")
    rule = tmp_path / "r.json"
    rule.write_text(json.dumps(DecisionRule([0.0] * 8 + [0.5, 0.0, 0.0], desc.classes).to_dict()))
    baked = tmp_path / "baked.onnx"
    assert cli(["export", "--checkpoint", str(synthetic_model / "m.pt"), "--out", str(baked),
                "--decision-rule", str(rule)]) == 0
    capsys.readouterr()
    data = ["--dataset", "synthetic", "--option", "length=2", "--option", "seed=0", "--no-progress"]
    assert cli(["evaluate", "--checkpoint", str(baked), "--out", str(tmp_path / "e"), *data,
                "--decision-rule", str(rule)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("iaseg evaluate: error:") and "already applies a decision rule" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "e" / "report.json").exists()
    assert cli(["evaluate", "--checkpoint", str(baked), "--out", str(tmp_path / "e"), *data]) == 0
    assert f"the model applies its baked decision rule in {baked}: Car=+0.5" in capsys.readouterr().out
    assert cli(["evaluate", "--checkpoint", str(synthetic_model / "m.pt"), "--out", str(tmp_path / "e2"), *data,
                "--decision-rule", str(rule)]) == 0
    assert f"applying decision rule {rule}: Car=+0.5" in capsys.readouterr().out
    # predict says so too (images; the video path shares the same Predictor and line)
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "img.png")
    assert cli(["predict", "--checkpoint", str(synthetic_model / "m.pt"), "--input", str(tmp_path / "img.png"),
                "--out", str(tmp_path / "p"), "--decision-rule", str(rule), "--no-progress"]) == 0
    assert f"applying decision rule {rule}: Car=+0.5" in capsys.readouterr().out
    assert cli(["predict", "--checkpoint", str(baked), "--input", str(tmp_path / "img.png"),
                "--out", str(tmp_path / "p2"), "--no-progress"]) == 0
    assert "the model applies its baked decision rule" in capsys.readouterr().out


def _camvid_sequences(root):
    """A CamVid-layout tree: train has sequences SeqA and SeqB, val two more SeqA frames."""
    from tests.helpers.data import write_image, write_label

    frames = {"train": ["SeqA_00001", "SeqA_00002", "SeqB_00001", "SeqB_00002"], "val": ["SeqA_00010", "SeqA_00011"]}
    for split, names in frames.items():
        for i, n in enumerate(names):
            write_image(root / split / f"{n}.png", h=64, w=64, seed=i)
            write_label(root / f"{split}annot" / f"{n}.png", h=64, w=64, values=(0, 3, 8, 9, 11), seed=i)
    return root


def _camvid_checkpoint(path, seed, **data):
    from iaseg.checkpoint import inference_checkpoint, save_checkpoint
    from iaseg.models import build_model

    desc = load_description("camvid")
    torch.manual_seed(seed)
    ckpt = inference_checkpoint(build_model("erfpspnet", desc.num_classes), "erfpspnet", {}, desc, (64, 64), config={
        "data": {"dataset": "camvid", "root": None, "train_split": "train", "options": {}, "val_split": "val",
                 "val_options": {}, **data}})
    save_checkpoint(ckpt, path)
    return str(path)


def test_calibrate_refuses_data_from_a_training_sequence_unless_allowed(tmp_path, capsys):
    root = _camvid_sequences(tmp_path / "camvid")
    model = _camvid_checkpoint(tmp_path / "full.pt", 0)
    args = ["calibrate", "--checkpoint", model, "--root", str(root), "--no-progress", "--batch-size", "2",
            "--target", "Car.recall>=0.5", "--allow-class-drop", "--allow-unmet", "--out", str(tmp_path / "r.json")]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "camvid val shares sequence SeqA and 0 of its 2 images with the model's " \
        "training data" in err and "--allow-seen-data" in err and not (tmp_path / "r.json").exists()
    # the training split itself: sequences and images
    assert cli([*args, "--split", "train"]) == 2
    assert "shares sequences SeqA, SeqB and 4 of its 4 images" in capsys.readouterr().err
    # a sequence the model never saw passes without a word
    unseen = _camvid_checkpoint(tmp_path / "no_a.pt", 0, options={"exclude_sequences": ["SeqA"]})
    assert cli([*args[:2], unseen, *args[3:], "--option", "exclude_sequences=[]"]) == 0  # (its options carry over)
    assert "shares" not in capsys.readouterr().err
    assert load_rule(tmp_path / "r.json").info["calibration"]["seen_data"] is None
    assert cli([*args, "--allow-seen-data"]) == 0
    assert "warning: camvid val shares sequence SeqA" in capsys.readouterr().err
    assert "SeqA" in load_rule(tmp_path / "r.json").info["calibration"]["seen_data"]


def test_calibrate_cross_fits_leave_one_sequence_out_models(tmp_path, capsys):
    """Each model on its own left-out sequence; the pooled logits are those of each model there."""
    from iaseg.decision import CalibrationData, confusion_from_cache, parse_objective

    root = _camvid_sequences(tmp_path / "camvid")
    full = _camvid_checkpoint(tmp_path / "full.pt", 0)
    loso = {s: _camvid_checkpoint(tmp_path / f"no_{s}.pt", i + 1, options={"exclude_sequences": [s]},
                                  val_split="train", val_options={"sequences": [s], "exclude_sequences": []})
            for i, s in enumerate(("SeqA", "SeqB"))}
    out = tmp_path / "cf.json"
    args = ["calibrate", "--checkpoint", full, "--root", str(root), "--no-progress", "--batch-size", "2",
            "--max-miou-drop", "5", "--maximize", "G3.recall", "--family", "single", "--out", str(out)]
    assert cli([*args, "--cross-fit", loso["SeqA"], "--cross-fit", loso["SeqB"]]) == 0
    assert "cross-fitting: 2 models on data they never trained on, 4 images pooled" in capsys.readouterr().out
    rule = load_rule(out)
    cal = rule.info["calibration"]
    assert cal["split"] == "cross-fit" and cal["seen_data"] is None
    assert [(s["checkpoint"], s["split"], s["options"]["sequences"], s["images"]) for s in cal["cross_fit"]] == \
        [(loso["SeqA"], "train", ["SeqA"], 2), (loso["SeqB"], "train", ["SeqB"], 2)]
    parts = [CalibrationData.load(tmp_path / f"cf.cache-{i}.pt") for i in range(2)]
    assert [sorted(p.names) for p in parts] == [["SeqA_00001.png", "SeqA_00002.png"], ["SeqB_00001.png", "SeqB_00002.png"]]
    pooled = confusion_from_cache(parts[0]) + confusion_from_cache(parts[1])
    miou = float(parse_objective("miou", load_description("camvid")).value(pooled))
    assert rule.info["result"]["targets"][0]["before"] == pytest.approx(miou, abs=1e-9)
    # the same parts compare the families out of sample (each sequence held out in turn)
    comp_path = tmp_path / "families.json"
    assert cli([*args, "--cross-fit", loso["SeqA"], "--cross-fit", loso["SeqB"], "--compare-families",
                str(comp_path)]) == 0
    assert "| **mean** | single |" in capsys.readouterr().out
    comp = json.loads(comp_path.read_text())
    assert set(comp["held_out"]) == {"SeqA", "SeqB"} and comp_path.with_suffix(".md").is_file()
    # the full model on val would be seen data: a cross-fit model whose validation data it trained on is refused
    assert cli([*args, "--cross-fit", full]) == 2
    assert "--cross-fit" in capsys.readouterr().err


def test_calibrate_states_a_promise_and_evaluate_checks_it(tmp_path, capsys):
    """The promise in the rule is the block bootstrap of the calibration images' counts; evaluating
    on those same images realises the estimate, which lies in the promised interval."""
    from iaseg.decision import CalibrationData
    from iaseg.decision.cache import per_image_confusions
    from iaseg.decision.promise import rule_promise

    root = _camvid_sequences(tmp_path / "camvid")
    model = _camvid_checkpoint(tmp_path / "m.pt", 3, options={"exclude_sequences": ["SeqA"]})
    out = tmp_path / "r.json"
    common = ["--checkpoint", model, "--root", str(root), "--no-progress", "--batch-size", "2",
              "--option", "exclude_sequences=[]"]
    assert cli(["calibrate", *common, "--max-miou-drop", "5", "--maximize", "G3.recall", "--family", "single",
                "--out", str(out)]) == 0
    printed = [x for x in capsys.readouterr().out.splitlines() if x.startswith("promise: ")]
    rule = load_rule(out)
    promise = rule.info["promise"]
    assert printed == [f"promise: {promise['summary']}"] and promise["images"] == 2 and promise["group"] == "G3"
    data = CalibrationData.load(tmp_path / "r.cache.pt")
    want = rule_promise(per_image_confusions(data).numpy(), per_image_confusions(data, rule.offsets).numpy(),
                        data.names, load_description("camvid"), "G3")
    assert json.loads(json.dumps(want)) == json.loads(json.dumps(promise))
    assert cli(["evaluate", *common, "--out", str(tmp_path / "e"), "--decision-rule", str(out)]) == 0
    captured = capsys.readouterr()
    check = json.loads((tmp_path / "e" / "report.json").read_text())["promise_check"]
    est = promise["new_sequence"]["miou_cost"]["estimate"]
    assert check["miou_cost"]["realised"] == pytest.approx(est, abs=0.05)  # fp16 cache vs fp32 logits
    assert check["group_recall"]["realised"] == pytest.approx(promise["new_sequence"]["group_recall"]["estimate"],
                                                             abs=0.05)
    inside = [check[k]["low"] - 1e-9 <= check[k]["realised"] <= check[k]["high"] + 1e-9
              for k in ("miou_cost", "group_recall_gain")]
    assert check["broken"] == (not all(inside))
    assert ("PROMISE BROKEN" in captured.err) == check["broken"] and ("promise kept" in captured.out) != check["broken"]
    assert f"applying decision rule {out}" in captured.out and "promise: on a new sequence" in captured.out


def test_calibrate_risk_control_writes_the_single_offset_with_its_guarantee(tmp_path, capsys):
    from iaseg.decision import CalibrationData
    from iaseg.decision.risk import control_miss_rate, miss_losses

    root = _camvid_sequences(tmp_path / "camvid")
    model = _camvid_checkpoint(tmp_path / "m.pt", 3, options={"exclude_sequences": ["SeqA"]})
    common = ["calibrate", "--checkpoint", model, "--root", str(root), "--no-progress", "--batch-size", "2",
              "--option", "exclude_sequences=[]"]
    out = tmp_path / "risk.json"
    # an alpha just above the smallest reachable: the offset must be searched, not 0
    cache = tmp_path / "probe.cache.pt"
    assert cli([*common, "--target", "Car.recall>=0.0", "--out", str(tmp_path / "probe.json"),
                "--cache", str(cache)]) == 0
    losses, _ = miss_losses(CalibrationData.load(cache), [6, 8, 9, 10])
    bound = (losses.sum(0) + 1) / 3  # the CRC bound of every grid offset, n = 2 images
    assert bound[0] > bound[-1]
    alpha = float((bound[0] + bound[-1]) / 2)  # reachable, and not by the plain model
    assert cli([*common, "--max-miss-rate", str(alpha), "--cache", str(cache), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rule = load_rule(out)
    want = control_miss_rate(CalibrationData.load(cache), [6, 8, 9, 10], alpha)
    assert want.offset > 0
    g = rule.info["guarantee"]
    assert g["offset"] == want.offset and g["method"] == "crc" and g["group"] == "G3" and g["images"] == 2
    assert rule.offsets.tolist() == pytest.approx([0.0] * 6 + [want.offset, 0.0, want.offset, want.offset, want.offset])
    assert f"expected per-image G3 miss rate <= {alpha:g} for new images exchangeable" in printed
    assert rule.info["family"] == "single"
    assert cli([*common, "--max-miss-rate", "0.0001", "--cache", str(cache), "--out", str(tmp_path / "no.json")]) == 1
    assert "no offset up to the grid's end" in capsys.readouterr().err and not (tmp_path / "no.json").exists()
    assert cli([*common, "--max-miss-rate", "0.3", "--target", "Car.recall>=0.5", "--out", str(out)]) == 2
    assert "--max-miss-rate chooses a single group offset" in capsys.readouterr().err
    assert cli([*common, "--delta", "0.1", "--target", "Car.recall>=0.5", "--out", str(out)]) == 2
    assert "--delta and --risk-group are for --max-miss-rate" in capsys.readouterr().err


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
