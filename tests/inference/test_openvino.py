"""OpenVINO backend: fp32 parity with a float64 reference, bf16 agreement, BiERF-PSPNet's two
inputs, IR metadata round trip, NNCF int8, load_runner dispatch, telemetry off; and the accuracy
guard (no OpenVINO needed). Tests needing `openvino` / `nncf` skip when they are not installed."""
import copy
import sys
import warnings

import numpy as np
import pytest
import torch

from iaseg.inference import (AccuracyDropError, accuracy_guard, agreement, guarded_accuracy, load_runner,
                             native_bf16_cpu, runner_from_model, split_accuracy)
from iaseg.inference import openvino as ovb
from iaseg.inference.runners import default_backend
from iaseg.inference.probe import structured_scenes
from iaseg.models import image_inputs
from tests.helpers.speed import SIZE, SPATIAL, camvid, checkpoint_for, fitted_model, meta_for, random_model, spatial_for

MODELS = ["erfpspnet", "bierfpspnet"]
needs_openvino = pytest.mark.skipif(not ovb.openvino_available(), reason="openvino is not installed")
needs_nncf = pytest.mark.skipif(not (ovb.openvino_available() and ovb.nncf_available()),
                                reason="openvino and nncf are not installed")


def inputs_for(name, batch=2, seed=0, size=SIZE, spatial=SPATIAL):
    g = torch.Generator().manual_seed(seed)
    sizes = [size] + ([spatial] if name == "bierfpspnet" else [])
    return tuple(torch.rand(batch, 3, *s, generator=g) for s in sizes)


# ---------------------------------------------------------------- runner

@needs_openvino
@pytest.mark.parametrize("name", MODELS)
def test_fp32_runner_matches_a_float64_reference(name):
    model, meta = random_model(name), meta_for(name)
    runner = runner_from_model(model, meta, backend="openvino", precision="fp32")
    assert (runner.backend, runner.precision, runner.options()["inference_precision"]) == ("openvino", "fp32", "f32")
    assert runner.input_names == (("context", "spatial") if name == "bierfpspnet" else ("image",))
    x = inputs_for(name)
    out = runner(*x)
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(*(t.double() for t in x))
    assert out.dtype == torch.float32 and out.shape == (2, 11, *SIZE)
    assert ref.abs().max() > 0.1
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert (out.argmax(1) == ref.argmax(1)).double().mean() > 0.999


@needs_openvino
def test_runner_from_a_network_takes_any_size_and_batch():
    model, meta = random_model("bierfpspnet"), meta_for("bierfpspnet")
    runner = runner_from_model(model, meta, backend="openvino", precision="fp32")
    assert not runner.fixed_size  # converted again for a new size, like eager
    x = inputs_for("bierfpspnet", batch=1, size=(64, 128), spatial=(96, 160))
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(*(t.double() for t in x))
    torch.testing.assert_close(runner(*x).double(), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert runner(*inputs_for("bierfpspnet", batch=3)).shape == (3, 11, *SIZE)
    with pytest.raises(ValueError, match="takes 2 input"):
        runner(x[0])


@needs_openvino
def test_bf16_runner_agrees_with_fp32_on_a_trained_model():
    model, meta = fitted_model("erfpspnet"), meta_for("erfpspnet")
    images, _ = structured_scenes(4, SIZE, 11, seed=50)
    ref = runner_from_model(model, meta, precision="fp32", fold_bn=False, fuse=False, channels_last=False)
    runner = runner_from_model(model, meta, backend="openvino", precision="bf16")
    assert runner.options()["inference_precision"] == "bf16"
    a = agreement(ref, runner, [(images,)])
    assert a["argmax_agreement"] >= 0.99  # measured 100 % at these settings
    assert 0 < a["max_abs_diff"] < 0.5  # bf16 really ran: not bit-equal to fp32


# ---------------------------------------------------------------- IR files

@needs_openvino
@pytest.mark.parametrize("name", MODELS)
def test_ir_round_trip_keeps_metadata_and_outputs(name, tmp_path):
    model = random_model(name)
    rule = {"name": "offsets", "offsets": [0.0] * 10 + [0.5]}
    meta = meta_for(name).with_(decision_rule=rule, model_options={"dropout": 0.1})
    path = ovb.export_openvino(model, meta, tmp_path / "sub" / "m.xml")
    assert path == tmp_path / "sub" / "m.xml" and path.with_suffix(".bin").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.bin", "m.xml"]  # no temp files left
    assert ovb.read_openvino_metadata(path) == meta
    assert ovb.read_openvino_metadata(str(path)).description == camvid()

    runner = load_runner(path, precision="fp32")
    assert isinstance(runner, ovb.OpenVINORunner) and runner.fixed_size
    assert (runner.model_name, runner.input_size, runner.spatial_size) == (name, SIZE, spatial_for(name))
    assert runner.meta.decision_rule == rule and runner.chosen == ""
    x = inputs_for(name)
    in_memory = runner_from_model(model, meta, backend="openvino", precision="fp32")
    torch.testing.assert_close(runner(*x), in_memory(*x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="exported for"):
        runner(*inputs_for(name, size=(32, 32), spatial=(64, 64)))


@needs_openvino
def test_ir_file_errors_are_clear(tmp_path):
    from iaseg.inference import onnx_bytes

    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")
    path = ovb.export_openvino(model, meta, tmp_path / "m.xml")
    with pytest.raises(ValueError, match="runs on backend 'openvino', not 'onnxruntime'"):
        load_runner(path, backend="onnxruntime")
    with pytest.raises(ValueError, match="holds a fp32 model.*not 'int8'"):
        load_runner(path, precision="int8")
    with pytest.raises(ValueError, match="runs on the CPU"):
        ovb.OpenVINORunner(path, device="cuda")
    with pytest.raises(ValueError, match="fp32 or int8 weights"):
        ovb.export_openvino(model, meta, tmp_path / "b.xml", precision="bf16")
    with pytest.raises(ValueError, match="ends in .xml"):
        ovb.export_openvino(model, meta, tmp_path / "m.ir")
    with pytest.raises(ValueError, match="calibration"):
        ovb.export_openvino(model, meta, tmp_path / "q.xml", precision="int8")
    # an IR without iaseg metadata
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(onnx_bytes(model, meta))
    ovb._ov().save_model(ovb._core().read_model(str(bare)), str(tmp_path / "bare.xml"))
    with pytest.raises(ValueError, match="no iaseg metadata"):
        load_runner(tmp_path / "bare.xml")
    path.with_suffix(".bin").unlink()
    with pytest.raises(FileNotFoundError, match="m.bin are missing"):
        load_runner(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_runner(tmp_path / "absent.xml")


# ---------------------------------------------------------------- int8

@needs_nncf
def test_int8_quantization_of_a_trained_model(tmp_path):
    model, meta = fitted_model("erfpspnet"), meta_for("erfpspnet")
    calib_images, _ = structured_scenes(8, SIZE, 11, seed=7)
    calib = [(calib_images[i:i + 1],) for i in range(8)]
    path = ovb.export_openvino(model, meta, tmp_path / "q.xml", precision="int8", calibration=calib)
    assert ovb.read_openvino_metadata(path) == meta.with_(precision="int8")
    int8 = load_runner(path)
    assert (int8.backend, int8.precision, int8.fixed_size) == ("openvino", "int8", True)
    with pytest.raises(ValueError, match="holds a int8 model"):
        load_runner(path, precision="bf16")

    images, labels = structured_scenes(6, SIZE, 11, seed=60)
    samples = [((images[i:i + 2],), labels[i:i + 2]) for i in range(0, 6, 2)]
    fp32 = runner_from_model(model, meta, precision="fp32", fold_bn=False, fuse=False, channels_last=False)
    a = agreement(fp32, int8, [x for x, _ in samples])
    assert a["argmax_agreement"] >= 0.95 and a["max_abs_diff"] > 1e-3  # measured ~98 %: really int8
    result = guarded_accuracy(fp32, int8, samples, camvid(), max_miou_drop=100, max_top_group_recall_drop=100)
    assert result["passed"] and result["images"] == 6
    assert abs(result["miou_change"]) < 10

    # the same through runner_from_model with BiERF-PSPNet's two inputs (wiring only: random weights)
    bierf = random_model("bierfpspnet")
    x = [image_inputs("bierfpspnet", calib_images[i:i + 2], spatial_size=SPATIAL) for i in range(0, 8, 2)]
    runner = runner_from_model(bierf, meta_for("bierfpspnet"), backend="openvino", precision="int8", calibration=x)
    assert runner.precision == "int8" and runner(*x[0]).shape == (2, 11, *SIZE)
    with pytest.raises(ValueError, match="calibration"):
        runner_from_model(bierf, meta_for("bierfpspnet"), backend="openvino", precision="int8")
    with pytest.raises(ValueError, match="calibration batch has 1 inputs"):
        ovb.quantize_openvino(ovb.openvino_model(bierf, meta_for("bierfpspnet")), [(calib_images[:1],)])


# ---------------------------------------------------------------- dispatch and telemetry

@needs_openvino
def test_load_runner_chooses_openvino_on_cpu_and_says_why(tmp_path):
    ckpt = checkpoint_for(random_model("erfpspnet"), "erfpspnet")
    runner = load_runner(ckpt)
    assert isinstance(runner, ovb.OpenVINORunner)
    assert runner.describe().startswith(f"openvino {runner.precision} on cpu (chosen: openvino is installed")
    assert runner.precision == ("bf16" if native_bf16_cpu() else "fp32")
    # PyTorch-only options or a named backend keep PyTorch
    assert load_runner(ckpt, fold_bn=False).backend == "eager"
    assert load_runner(ckpt, backend="eager").describe() == f"eager {runner.precision} on cpu"
    assert load_runner(ckpt, precision="fp16").backend == "eager"
    meta = meta_for("erfpspnet")
    assert default_backend("cpu", "auto", meta)[0] == "openvino"
    assert default_backend("cuda", "auto", meta) == ("eager", "")
    assert default_backend("cpu", "auto", meta.with_(input_size=None))[0] == "eager"
    assert default_backend("cpu", "auto", meta, torch_options=True)[0] == "eager"


def test_load_runner_keeps_eager_when_openvino_is_absent(monkeypatch):
    monkeypatch.setattr(ovb, "openvino_available", lambda: False)
    runner = load_runner(checkpoint_for(random_model("erfpspnet"), "erfpspnet"))
    assert runner.backend == "eager" and runner.describe().endswith("(chosen: openvino is not installed)")


@needs_openvino
def test_telemetry_package_is_blocked():
    ovb._ov()
    if sys.modules.get("openvino_telemetry", None) is not None:
        pytest.skip("openvino_telemetry was imported before iaseg could block it")
    with pytest.raises(ImportError):
        import openvino_telemetry  # noqa: F401
    import os

    assert os.environ.get("NNCF_CI")


# ---------------------------------------------------------------- accuracy guard

def _confusions():
    """A reference confusion matrix of CamVid's 11 classes (Sky large, as in street scenes, so
    errors moved into it barely change its IoU) and a copy to degrade."""
    ref = np.diag(np.full(11, 1000, dtype=np.int64))
    ref[0, 0] = 100_000
    ref[0, 1] = ref[1, 0] = 100
    return ref, ref.copy()


def _miss_cars(cand, pixels=48):
    """Car pixels predicted as Sky: Car IoU and recall -pixels/10 points, so G3 recall (mean of
    4 classes) -pixels/40 points and mIoU about -pixels/110 points."""
    car = camvid().classes.index("Car")
    cand[car, car] -= pixels
    cand[car, 0] += pixels


def _miou_and_g3_recall(m):
    """float64 numpy reference of split_accuracy."""
    m = m.astype(np.float64)
    tp = np.diag(m)
    iou = tp / (m.sum(0) + m.sum(1) - tp)
    recall = tp / m.sum(1)
    g3 = [camvid().classes.index(c) for c in camvid().groups["G3"]]
    return 100 * iou.mean(), 100 * recall[g3].mean()


def test_split_accuracy_matches_a_numpy_reference():
    ref, cand = _confusions()
    cand[camvid().classes.index("Pedestrian"), 3] += 37  # a G3 class predicted as Road
    for m in (ref, cand):
        got = split_accuracy(torch.from_numpy(m), camvid())
        miou, g3 = _miou_and_g3_recall(m)
        assert got["miou"] == pytest.approx(miou, abs=1e-12) and got["top_group_recall"] == pytest.approx(g3, abs=1e-12)


def test_accuracy_guard_passes_small_changes():
    ref, cand = _confusions()
    _miss_cars(cand)
    result = accuracy_guard(torch.from_numpy(ref), torch.from_numpy(cand), camvid(), max_top_group_recall_drop=2)
    m_ref, g_ref = _miou_and_g3_recall(ref)
    m_cand, g_cand = _miou_and_g3_recall(cand)
    assert result["passed"] and result["top_group"] == "G3"
    assert result["miou_change"] == pytest.approx(m_cand - m_ref, abs=1e-12)
    assert result["top_group_recall_change"] == pytest.approx(g_cand - g_ref, abs=1e-12)
    assert -0.5 < result["miou_change"] < -0.4 and result["top_group_recall_change"] == pytest.approx(-1.2)


def test_accuracy_guard_refuses_a_g3_recall_drop_beyond_one_point():
    ref, cand = _confusions()
    _miss_cars(cand)  # mIoU within 0.5 points, G3 recall -1.2 points
    with pytest.raises(AccuracyDropError, match=r"G3 recall .*-1\.20 points, limit -1\)") as e:
        accuracy_guard(ref, cand, camvid())
    assert not e.value.result["passed"] and "mean IoU" not in str(e.value)
    with pytest.warns(UserWarning, match="G3 recall"):
        result = accuracy_guard(ref, cand, camvid(), allow_drop=True)
    assert result["passed"] is False


def test_accuracy_guard_refuses_a_miou_drop_beyond_half_a_point():
    ref, cand = _confusions()
    building, tree = camvid().classes.index("Building"), camvid().classes.index("Tree")  # G1: G3 unchanged
    cand[building, building] -= 80
    cand[building, tree] += 80
    m_ref, _ = _miou_and_g3_recall(ref)
    m_cand, _ = _miou_and_g3_recall(cand)
    assert m_cand - m_ref < -0.5
    with pytest.raises(AccuracyDropError, match="mean IoU") as e:
        accuracy_guard(ref, cand, camvid())
    assert e.value.result["top_group_recall_change"] == 0
    assert accuracy_guard(ref, cand, camvid(), max_miou_drop=1.5)["passed"]  # the drop is 1.28
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert accuracy_guard(ref, ref, camvid())["passed"]  # no change, no warning


def test_guarded_accuracy_refuses_a_runner_that_misses_cars():
    """A 'quantized' runner constructed to lose a G3 class: the guard must refuse it."""
    images, labels = structured_scenes(4, SIZE, 11, seed=3)
    car = camvid().classes.index("Car")
    onehot = torch.nn.functional.one_hot(labels, 11).permute(0, 3, 1, 2).float()

    def reference(x):
        return onehot.clone()  # perfect predictions

    def worse(x):
        out = reference(x)
        out[:, car] -= 2  # never predicts Car
        return out

    samples = [((images,), labels)]
    assert (labels == car).any()
    ok = guarded_accuracy(reference, reference, samples, camvid())
    assert ok["passed"] and ok["reference"]["miou"] == pytest.approx(100)
    with pytest.raises(AccuracyDropError, match="G3 recall"):
        guarded_accuracy(reference, worse, samples, camvid())
