"""Export: ONNX and TorchScript round trips with metadata, parity, dynamic batch; int8; the CLI."""
import json
import os
import stat

import numpy as np
import onnx
import pytest
import torch
from _speed_helpers import SIZE, SPATIAL, camvid, checkpoint_for, fitted_model, meta_for, random_model, spatial_for

from iaseg import cli
from iaseg.checkpoint import save_checkpoint
from iaseg.inference import (ModelMetadata, agreement, export_onnx, export_torchscript, load_runner, load_torchscript,
                             mean_iou, onnx_bytes, parity_check, quantize_int8, read_onnx_metadata, runner_from_model)
from iaseg.inference.files import torchscript_sidecar
from iaseg.inference.probe import structured_scenes
from iaseg.models import image_inputs

MODELS = ["erfpspnet", "bierfpspnet"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name in MODELS:
        paths[name] = root / f"{name}.pt"
        save_checkpoint(checkpoint_for(random_model(name), name), paths[name])
    return paths


def batch_inputs(name, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [SIZE] + ([SPATIAL] if name == "bierfpspnet" else [])
    return tuple(torch.rand(batch, 3, *s, generator=g) for s in sizes)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_round_trip_metadata_parity_and_dynamic_batch(name, tmp_path, checkpoints):
    model, meta = random_model(name), meta_for(name)
    opset = 17 if name == "erfpspnet" else 20  # both ends of the supported range
    path = export_onnx(model, meta, tmp_path / "m.onnx", opset=opset)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == opset
    names = ["context", "spatial"] if name == "bierfpspnet" else ["image"]
    assert [i.name for i in proto.graph.input] == names and proto.graph.output[0].name == "logits"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == list(camvid().classes) and props["model_name"] == name
    assert json.loads(props["palette"])[0] == list(camvid().palette[0])
    assert json.loads(props["groups"]) == {k: list(v) for k, v in camvid().groups.items()}
    assert json.loads(props["input_size"]) == list(SIZE)
    assert read_onnx_metadata(path) == meta
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # shareable, unlike 0600 temp files

    runner = load_runner(path)  # the file alone
    assert (runner.backend, runner.precision, runner.model_name) == ("onnxruntime", "fp32", name)
    assert runner.description == camvid() and runner.input_names == tuple(names)
    x = batch_inputs(name, 3)  # exported at batch 1, run at batch 3
    with torch.no_grad():
        ref = model(*x)
    out = runner(*x)
    assert out.shape == (3, 11, *SIZE) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)

    result = parity_check(checkpoints[name], path)
    assert result["argmax_agreement"] >= 0.999 and result["max_abs_diff"] < 1e-4 and result["precision"] == "fp32"


@pytest.mark.parametrize("name", MODELS)
def test_torchscript_round_trip_metadata_parity_and_dynamic_batch(name, tmp_path, checkpoints):
    model, meta = random_model(name), meta_for(name)
    path = export_torchscript(model, meta, tmp_path / "m.ts")
    sidecar = json.loads(torchscript_sidecar(path).read_text())
    assert sidecar["model_name"] == name and sidecar["description"]["classes"] == list(camvid().classes)
    module, loaded = load_torchscript(path)
    assert loaded == meta
    runner = load_runner(path)
    assert (runner.backend, runner.precision) == ("torchscript", "fp32")
    x = batch_inputs(name, 3)
    with torch.no_grad():
        torch.testing.assert_close(runner(*x), model(*x), rtol=1e-4, atol=1e-5)
    result = parity_check(checkpoints[name], path)
    assert result["argmax_agreement"] >= 0.999 and result["max_abs_diff"] < 1e-4


def test_torchscript_metadata_falls_back_to_the_sidecar(tmp_path):
    from iaseg.inference import trace_torchscript
    from iaseg.inference.files import quiet_jit

    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")
    path = tmp_path / "bare.ts"
    with quiet_jit():
        torch.jit.save(trace_torchscript(model, meta), str(path))
    with pytest.raises(ValueError, match="no iaseg metadata"):
        load_torchscript(path)
    torchscript_sidecar(path).write_text(json.dumps(meta.to_dict()))
    assert load_torchscript(path)[1] == meta


def test_exported_files_check_input_size_and_metadata(tmp_path):
    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")
    runner = load_runner(export_onnx(model, meta, tmp_path / "m.onnx"))
    with pytest.raises(ValueError, match="exported for image 64x64, got 64x128"):
        runner(torch.zeros(1, 3, 64, 128))
    for opset in (13, 21):
        with pytest.raises(ValueError, match="opset 17 to 20"):
            onnx_bytes(model, meta, opset=opset)
    with pytest.raises(ValueError, match="input size"):
        onnx_bytes(model, meta.with_(input_size=None))
    with pytest.raises(ValueError, match="onnxruntime"):
        load_runner(tmp_path / "m.onnx", backend="eager")
    with pytest.raises(ValueError, match="holds a fp32 model"):
        load_runner(tmp_path / "m.onnx", precision="int8")
    bare = onnx.load(str(tmp_path / "m.onnx"))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="no iaseg metadata"):
        read_onnx_metadata(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="no iaseg metadata"):
        load_runner(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="no iaseg metadata"):
        ModelMetadata.from_dict({"model_name": "x"})


def test_metadata_json_round_trip():
    meta = meta_for("bierfpspnet").with_(model_options={"final_relu": False, "bins": (0, 2)})
    back = ModelMetadata.from_json(meta.to_json())
    assert back.model_options == {"final_relu": False, "bins": [0, 2]}
    assert back.with_(model_options=meta.model_options) == meta and back.input_names == ("context", "spatial")


def _structured_inputs(name, n, seed):
    images, labels = structured_scenes(n, SIZE, 11, seed=seed)
    return [image_inputs(name, images[i:i + 1], spatial_size=spatial_for(name)) for i in range(n)], labels


# honest bounds measured on briefly trained networks (fp32 mIoU ~33 / ~43 on these scenes):
# ERF-PSPNet int8 agrees on 99.0 % of pixels, BiERF-PSPNet on 93.3 % (its weakly trained logits
# have small margins); mIoU moves by < 0.2 / ~5 points.
INT8_BOUNDS = {"erfpspnet": (0.98, 1.0), "bierfpspnet": (0.90, 8.0)}


@pytest.mark.parametrize("name", MODELS)
def test_int8_runs_and_stays_within_its_accuracy_bound(name, tmp_path):
    model, meta = fitted_model(name), meta_for(name)
    calib, _ = _structured_inputs(name, 8, seed=7)
    path = quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", calib)
    int8 = load_runner(path)
    assert int8.precision == "int8" and read_onnx_metadata(path).precision == "int8"
    assert path.stat().st_size < 0.5 * len(onnx_bytes(model, meta))  # int8 weights
    val, labels = _structured_inputs(name, 8, seed=50)
    val = [tuple(torch.cat(p) for p in zip(*val[i:i + 4])) for i in (0, 4)]
    fp32 = runner_from_model(model, meta, precision="fp32", fold_bn=False, fuse=False, channels_last=False)
    a = agreement(fp32, int8, val)
    min_agree, max_miou_change = INT8_BOUNDS[name]
    assert a["argmax_agreement"] >= min_agree
    samples = list(zip(val, [labels[:4], labels[4:]]))
    delta = mean_iou(int8, samples, 11, 11)["miou"] - mean_iou(fp32, samples, 11, 11)["miou"]
    assert abs(delta) <= max_miou_change


def test_int8_from_a_checkpoint_runner_and_errors(tmp_path):
    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")
    calib = [batch_inputs("erfpspnet", 1, seed=s) for s in range(2)]
    runner = runner_from_model(model, meta, backend="onnxruntime", precision="int8", calibration=calib)
    assert runner.precision == "int8" and runner(*batch_inputs("erfpspnet", 2)).shape == (2, 11, *SIZE)
    with pytest.raises(ValueError, match="no inputs"):
        quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", [])
    with pytest.raises(ValueError, match="calibration method"):
        quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", calib, method="kl")


# ---------------------------------------------------------------- CLI

def _write_scene_folder(root, n, seed, with_labels=False):
    from PIL import Image

    images, labels = structured_scenes(n, (48, 64), 11, seed=seed)  # resized to the export size on read
    (root / "img").mkdir(parents=True)
    if with_labels:
        (root / "lab").mkdir()
    for i in range(n):
        arr = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(root / "img" / f"{i:03d}.png")
        if with_labels:
            Image.fromarray(labels[i].numpy().astype(np.uint8), mode="L").save(root / "lab" / f"{i:03d}.png")
    return root / "img", (root / "lab" if with_labels else None)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_cli_writes_and_checks(fmt, tmp_path, checkpoints, capsys):
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts")
    rc = cli.main(["export", "--checkpoint", str(checkpoints["bierfpspnet"]), "--format", fmt, "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "context 64x64, spatial 128x128" in text and "OK (>= 99.9%)" in text and "max |logit diff|" in text
    assert load_runner(out).spatial_size == SPATIAL


def test_export_cli_size_override_and_int8_with_labels(tmp_path, checkpoints, capsys):
    calib, _ = _write_scene_folder(tmp_path / "calib", 3, seed=1)
    val, lab = _write_scene_folder(tmp_path / "val", 2, seed=2, with_labels=True)
    out = tmp_path / "q.onnx"
    rc = cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(out), "--size", "64x96",
                   "--int8", "--calib-root", str(calib), "--val-root", str(val), "--val-labels", str(lab)])
    text = capsys.readouterr().out
    assert rc == 0, text
    runner = load_runner(out)
    assert runner.precision == "int8" and runner.input_size == (64, 96)
    assert "int8 vs fp32 on 2 validation images" in text and "mean IoU on 2 labelled images" in text


def test_export_cli_errors(tmp_path, checkpoints, capsys):
    ck = str(checkpoints["erfpspnet"])
    cases = [
        (["--format", "torchscript", "--int8", "--calib-root", str(tmp_path)], "--int8 needs --format onnx"),
        (["--int8"], "--calib-root"),
        (["--opset", "13"], "opset 17 to 20"),
        (["--spatial-size", "128x128"], "single input"),
        (["--int8", "--calib-root", str(tmp_path / "none")], "not found"),
    ]
    for extra, message in cases:
        rc = cli.main(["export", "--checkpoint", ck, "--out", str(tmp_path / "x.onnx"), *extra])
        assert rc == 2 and message in capsys.readouterr().err
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.onnx")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_export_cli_fails_when_parity_is_below_the_bound(tmp_path, checkpoints, capsys):
    rc = cli.main(["export", "--checkpoint", str(checkpoints["erfpspnet"]), "--out", str(tmp_path / "m.onnx"),
                   "--min-agreement", "100.001"])
    assert rc == 1 and "FAILED" in capsys.readouterr().out


# ---------------------------------------------------------------- inputs for calibration / validation

def test_read_label_maps_raw_values_and_resizes(tmp_path):
    from PIL import Image

    from iaseg.data import DatasetDescription, DatasetError
    from iaseg.inference.images import read_label

    d = camvid().to_dict()
    d["label_map"] = {7: 0, 8: 1, 26: 2, 0: 11}  # raw ids -> class ids or void
    meta = ModelMetadata("erfpspnet", DatasetDescription.from_dict(d), (2, 4))
    raw = np.array([[7, 7, 8, 8, 26, 26, 0, 0]] * 4, dtype=np.uint8)  # 4 x 8, resized to 2 x 4
    Image.fromarray(raw, mode="L").save(tmp_path / "l.png")
    assert read_label(tmp_path / "l.png", meta).tolist() == [[0, 1, 2, 11]] * 2
    plain = meta.with_(description=camvid(), input_size=(4, 8))
    raw = np.array([[11, 7, 8, 8, 3, 3, 0, 0]] * 4, dtype=np.uint8)
    Image.fromarray(raw, mode="L").save(tmp_path / "m.png")
    lab = read_label(tmp_path / "m.png", plain)
    assert lab[0].tolist() == [11, 7, 8, 8, 3, 3, 0, 0] and lab.dtype == torch.int64
    raw[0, 0] = 200  # neither a class nor void: refused, as the datasets do
    Image.fromarray(raw, mode="L").save(tmp_path / "m.png")
    with pytest.raises(DatasetError, match=r"m\.png: label values \[200\]"):
        read_label(tmp_path / "m.png", plain)


def test_image_folder_inputs_for_both_models(tmp_path):
    from iaseg.inference.images import folder_inputs, image_files, labelled_folder_samples

    images, labels = _write_scene_folder(tmp_path, 3, seed=0, with_labels=True)
    assert [p.name for p in image_files(images)] == ["000.png", "001.png", "002.png"]
    xs = folder_inputs(images, meta_for("bierfpspnet"), count=2)
    assert len(xs) == 2 and [tuple(t.shape) for t in xs[0]] == [(1, 3, *SIZE), (1, 3, *SPATIAL)]
    assert all(0 <= t.min() and t.max() <= 1 for t in xs[0])
    samples = labelled_folder_samples(images, labels, meta_for("erfpspnet"))
    assert len(samples) == 3 and samples[0][1].shape == (1, *SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        image_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        image_files(tmp_path / "missing")


def test_dataset_samples_accept_tuples_dicts_and_uint8(monkeypatch):
    import iaseg.data
    from iaseg.inference.images import dataset_samples

    class Fake:
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    img8 = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    items = [(img8, torch.zeros(32, 32, dtype=torch.int64)), {"image": torch.rand(3, 64, 64), "label": None}]
    calls = []
    monkeypatch.setattr(iaseg.data, "build_dataset", lambda name, root, split: calls.append((name, root, split))
                        or Fake(items), raising=False)
    out = dataset_samples("camvid", "/data", "val", meta_for("erfpspnet"))
    assert calls == [("camvid", "/data", "val")] and len(out) == 2
    (x0,), y0 = out[0]
    assert x0.shape == (1, 3, *SIZE) and x0.max() == 1.0 and y0.shape == (1, *SIZE)
    assert out[1][1] is None


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
