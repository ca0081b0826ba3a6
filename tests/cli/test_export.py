"""`iaseg export`: formats, sizes, int8 with labels, errors, parity bound, baked rules."""
import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from iaseg import cli
from iaseg.checkpoint import load_checkpoint, model_from_checkpoint
from iaseg.inference import load_runner, read_openvino_metadata
from iaseg.inference.checked_int8 import checkpoint_weights_digest

from tests.helpers.speed import SIZE, SPATIAL, batch_inputs, write_scene_folder


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_cli_writes_and_checks(fmt, tmp_path, checkpoints, capsys):
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts")
    rc = cli.main(["export", "--checkpoint", str(checkpoints["bierfpspnet"]), "--format", fmt, "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "context 64x64, spatial 128x128" in text and "OK (>= 99.9%)" in text and "max |logit diff|" in text
    assert load_runner(out).spatial_size == SPATIAL


def test_export_cli_size_override_and_int8_with_labels(tmp_path, checkpoints, capsys):
    calib, _ = write_scene_folder(tmp_path / "calib", 3, seed=1)
    val, lab = write_scene_folder(tmp_path / "val", 2, seed=2, with_labels=True)
    out = tmp_path / "q.onnx"
    rc = cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(out), "--size", "64x96",
                   "--int8", "--calib-root", str(calib), "--val-root", str(val), "--val-labels", str(lab)])
    text = capsys.readouterr().out
    assert rc == 0, text
    runner = load_runner(out)
    assert runner.precision == "int8" and runner.input_size == (64, 96)
    assert "int8 vs fp32 on 2 validation images" in text and "accuracy on 2 labelled images: mean IoU fp32" in text


@pytest.mark.skipif(not __import__("iaseg.inference", fromlist=["openvino_available"]).openvino_available(),
                    reason="openvino is not installed")
def test_export_cli_openvino_fp32_and_guarded_int8(tmp_path, checkpoints, capsys):
    from iaseg.inference.accuracy import AccuracyDropError  # noqa: F401 (the guard's error type exists)

    out = tmp_path / "m.xml"
    rc = cli.main(["export", "--checkpoint", str(checkpoints["bierfpspnet"]), "--format", "openvino", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file() and out.with_suffix(".bin").is_file()
    assert "openvino IR, fp32" in text and "OK (>= 99.9%)" in text  # parity in fp32, not the CPU's bf16
    runner = load_runner(out)
    assert runner.backend == "openvino" and runner.spatial_size == SPATIAL
    calib, _ = write_scene_folder(tmp_path / "calib", 3, seed=1)
    val, lab = write_scene_folder(tmp_path / "val", 2, seed=2, with_labels=True)
    ckpt = tmp_path / "ce.pt"  # a copy: an int8 IR beside the shared fixture would change other tests
    shutil.copy(checkpoints["erfpspnet"], ckpt)
    q = tmp_path / "ce.int8.xml"  # the name that makes it load_runner(ckpt)'s default if its check passes
    args = ["export", "--checkpoint", str(ckpt), "--format", "openvino", "--out", str(q),
            "--int8", "--calib-root", str(calib), "--val-root", str(val), "--val-labels", str(lab)]
    rc = cli.main(args)
    text = capsys.readouterr().out
    assert "accuracy on 2 labelled images: mean IoU fp32" in text
    # the guard either passes (file kept, exit 0) or fails (files removed, exit 1), never in between
    if rc == 0:
        assert q.is_file() and load_runner(q).precision == "int8"
        assert f"iaseg predict/load_runner on {ckpt} now run this int8 IR by default" in text
        assert load_runner(ckpt).precision == "int8"
    else:
        assert rc == 1 and "guard FAILED" in text and not q.exists() and not q.with_suffix(".bin").exists()
        assert cli.main(args + ["--allow-accuracy-drop"]) == 0 and q.is_file()
        text = capsys.readouterr().out
        assert "kept because of --allow-accuracy-drop" in text and "not a default for the checkpoint" in text
        assert load_runner(ckpt).precision != "int8"
    record = read_openvino_metadata(q).accuracy_check  # the guard's figures travel in the IR
    assert record["passed"] is (rc == 0) and record["images"] == 2 and record["data"] == f"folder {val}"
    assert record["checkpoint_weights"] == checkpoint_weights_digest(model_from_checkpoint(ckpt)[0])


def test_export_cli_errors(tmp_path, checkpoints, capsys):
    ck = str(checkpoints["erfpspnet"])
    cases = [
        (["--int8", "--calib-root", str(tmp_path)], "--int8 needs --format onnx", "x.ts"),
        (["--int8"], "--calib-root", "x.onnx"),
        (["--opset", "13"], "opset 17 to 20", "x.onnx"),
        (["--spatial-size", "128x128"], "single input", "x.onnx"),
        (["--int8", "--calib-root", str(tmp_path / "none")], "not found", "x.onnx"),
    ]
    for extra, message, name in cases:
        rc = cli.main(["export", "--checkpoint", ck, "--out", str(tmp_path / name), *extra])
        assert rc == 2 and message in capsys.readouterr().err
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.onnx")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_export_cli_fails_when_parity_is_below_the_bound_and_leaves_no_file(tmp_path, checkpoints, capsys):
    old = tmp_path / "m.onnx"
    old.write_bytes(b"an older export")
    rc = cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(old),
                   "--min-agreement", "100.001"])
    text = capsys.readouterr().out
    assert rc == 1 and "FAILED" in text and f"nothing written to {old}" in text
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and old.read_bytes() == b"an older export"


def test_export_cli_leaves_no_file_when_it_crashes(tmp_path, checkpoints, monkeypatch):
    import iaseg.inference

    def broken(*args, **kwargs):
        raise RuntimeError("runtime crashed")

    monkeypatch.setattr(iaseg.inference, "parity_check", broken)
    with pytest.raises(RuntimeError, match="runtime crashed"):
        cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(tmp_path / "m.ts")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, kind", [("m.ts", "torchscript"), ("m.onnx", "onnxruntime"), ("M.ONNX", "onnxruntime")])
def test_export_cli_takes_the_format_from_the_extension(name, kind, tmp_path, checkpoints, capsys):
    out = tmp_path / name
    assert cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(out)]) == 0
    assert load_runner(out).backend == kind
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ([name, name + ".json"] if kind == "torchscript" else [name])  # no staging folder left


@pytest.mark.parametrize("extra, out, message", [
    (["--format", "onnx"], "m.ts", "--format onnx contradicts --out m.ts, whose extension means torchscript; use .onnx"),
    (["--format", "torchscript"], "m.onnx", "--format torchscript contradicts --out m.onnx, whose extension means onnx"),
    (["--format", "openvino"], "m.pt", "--format openvino contradicts --out m.pt, whose extension means checkpoint"),
    (["--format", "checkpoint"], "m.xml", "contradicts --out m.xml, whose extension means openvino; use .pt"),
    ([], "m.bin", "cannot tell the format from '.bin'"),
    (["--format", "onnx"], "model", "cannot tell the format from 'a name without extension'"),
])
def test_export_cli_refuses_a_format_the_extension_contradicts(extra, out, message, tmp_path, checkpoints, capsys):
    rc = cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(tmp_path / "o" / out), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before anything is written


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_cli_bakes_a_decision_rule(fmt, tmp_path, checkpoints, capsys):
    from iaseg.decision import DecisionRule

    ck = checkpoints["erfpspnet"]
    desc = load_runner(ck).description
    offsets = torch.linspace(-1.0, 1.5, desc.num_classes)
    rule_path = tmp_path / "rule.json"
    rule_path.write_text(json.dumps(DecisionRule(offsets, desc.classes).to_dict()))
    out = tmp_path / ("r.onnx" if fmt == "onnx" else "r.ts")
    rc = cli.main(["export", "--checkpoint", str(ck), "--format", fmt, "--out", str(out),
                   "--decision-rule", str(rule_path)])
    assert rc == 0 and "OK (>= 99.9%)" in capsys.readouterr().out  # parity against logits + offsets
    runner = load_runner(out)
    assert runner.meta.decision_rule["offsets"] == pytest.approx(offsets.tolist())
    if fmt == "onnx":
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(props["iaseg.decision_rule"])["classes"] == list(desc.classes)
    x = batch_inputs("erfpspnet", 2)
    plain = load_runner(ck, backend="eager", precision="fp32", fold_bn=False, channels_last=False, fuse=False)
    logits = plain(*x).float()
    baked = runner(*x).float()
    assert torch.allclose(baked, logits + offsets.view(1, -1, 1, 1), atol=1e-4)
    assert (baked.argmax(1) != logits.argmax(1)).any()  # the rule changes decisions here
    # running the baked file with the rule again would apply it twice
    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(np.zeros((SIZE[0], SIZE[1], 3), np.uint8)).save(img)
    rc = cli.main(["predict", "--checkpoint", str(out), "--input", str(img), "--out", str(tmp_path / "p"),
                   "--decision-rule", str(rule_path)])
    assert rc == 2 and "already applies a decision rule" in capsys.readouterr().err
    rc = cli.main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "y.onnx"),
                   "--decision-rule", str(tmp_path / "missing.json")])
    assert rc == 2 and "--decision-rule" in capsys.readouterr().err


def test_release_weights_are_slim_and_evaluate_like_the_training_checkpoint(tiny_run, tmp_path, capsys):
    weights = tmp_path / "w" / "tiny.pt"
    assert cli.main(["export", "--checkpoint", str(tiny_run / "best.pt"), "--format", "checkpoint", "--half",
                "--out", str(weights)]) == 0
    assert "OK (>= 99.0%)" in capsys.readouterr().out
    slim = torch.load(weights, weights_only=True)
    full = load_checkpoint(tiny_run / "best.pt")
    assert "optimizer" not in slim and "rng" not in slim
    assert all(v.dtype == torch.float16 for v in slim["model"].values() if v.is_floating_point())
    assert slim["config"]["data"]["root"] is None and slim["config"]["loss"] == full["config"]["loss"]
    assert slim["classes"] == full["classes"] and slim["groups"] == full["groups"]
    assert slim["epoch"] == full["epoch"]
    assert weights.stat().st_size < 0.5 * (tiny_run / "best.pt").stat().st_size
    reports = {}
    for name, ckpt in (("full", tiny_run / "best.pt"), ("slim", weights)):
        assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / name), "--no-progress"]) == 0
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    m_full = np.array(reports["full"]["confusion_matrix"])
    m_slim = np.array(reports["slim"]["confusion_matrix"])
    assert m_full.sum() == m_slim.sum()
    assert np.abs(m_full - m_slim).sum() / 2 <= 0.01 * m_full.sum()  # fp16 weights flip < 1% of pixels


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_a_checkpoint_with_nan_weights_is_not_exported_and_no_parity_is_printed(checkpoints, tmp_path, capsys,
                                                                               suffix):
    from iaseg.checkpoint import save_checkpoint

    ckpt = load_checkpoint(checkpoints["erfpspnet"])
    ckpt["model"] = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
                     for k, v in ckpt["model"].items()}
    save_checkpoint(ckpt, tmp_path / "nan.pt")
    out = tmp_path / "out" / f"m{suffix}"
    assert cli.main(["export", "--checkpoint", str(tmp_path / "nan.pt"), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"iaseg export: error: checkpoint {tmp_path / 'nan.pt'} holds non-finite weights (")
    assert "parity" not in captured.out and not out.exists() and not list((tmp_path / "out").iterdir())
