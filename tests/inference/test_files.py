"""Exported files: ONNX and TorchScript round trips with metadata, parity, dynamic batch; int8."""
import json
import os
import stat

import onnx
import pytest
import torch

from iaseg.inference import (ModelMetadata, agreement, export_onnx, export_torchscript, load_runner, load_torchscript,
                             mean_iou, onnx_bytes, parity_check, quantize_int8, read_onnx_metadata, runner_from_model)
from iaseg.inference.files import torchscript_sidecar

from tests.helpers.speed import (MODELS, SIZE, batch_inputs, camvid, fitted_model, meta_for, random_model,
                                 structured_inputs)


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


# honest bounds measured on briefly trained networks (fp32 mIoU ~33 / ~43 on these scenes):
# ERF-PSPNet int8 agrees on 99.0 % of pixels, BiERF-PSPNet on 93.3 % (its weakly trained logits
# have small margins); mIoU moves by < 0.2 / ~5 points.
INT8_BOUNDS = {"erfpspnet": (0.98, 1.0), "bierfpspnet": (0.90, 8.0)}


@pytest.mark.parametrize("name", MODELS)
def test_int8_runs_and_stays_within_its_accuracy_bound(name, tmp_path):
    model, meta = fitted_model(name), meta_for(name)
    calib, _ = structured_inputs(name, 8, seed=7)
    path = quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", calib)
    int8 = load_runner(path)
    assert int8.precision == "int8" and read_onnx_metadata(path).precision == "int8"
    assert path.stat().st_size < 0.5 * len(onnx_bytes(model, meta))  # int8 weights
    val, labels = structured_inputs(name, 8, seed=50)
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
    fp32 = runner_from_model(model, meta, backend="onnxruntime", precision="fp32")
    a = agreement(fp32, runner, [batch_inputs("erfpspnet", 2)])
    # logits with a spread of ~0.6: int8 moves them by 0.005 on average (measured), argmax 99.8 %
    assert a["mean_abs_diff"] < 0.05 and a["argmax_agreement"] > 0.95
    with pytest.raises(ValueError, match="no inputs"):
        quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", [])
    with pytest.raises(ValueError, match="calibration method"):
        quantize_int8(onnx_bytes(model, meta), tmp_path / "q.onnx", calib, method="kl")
