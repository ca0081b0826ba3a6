"""Runners: every backend and precision against the plain model; loading; errors."""
import pytest
import torch

from iaseg.inference import (BACKENDS, PRECISIONS, TorchRunner, agreement, count_batchnorms, default_precision,
                             load_runner, native_bf16_cpu, openvino_available, runner_from_model)
from iaseg.inference.probe import structured_scenes
from iaseg.models import image_inputs

from tests.helpers.speed import (MODELS, SIZE, SPATIAL, checkpoint_for, fitted_model, inputs_for, meta_for,
                                 random_model)


@pytest.mark.parametrize("name", MODELS)
def test_eager_runner_fp32_variants_match_plain_model(name):
    model = random_model(name)
    x = inputs_for(name)
    with torch.no_grad():
        ref = model(*x)
    for kw in [{}, {"fold_bn": False, "fuse": False}, {"channels_last": False}, {"fuse": False}]:
        runner = runner_from_model(model, meta_for(name), precision="fp32", **kw)
        out = runner(*x)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert not model.training and count_batchnorms(model) > 0  # the caller's model is untouched


@pytest.mark.parametrize("name", MODELS)
def test_bf16_runner_agrees_with_fp32_on_a_trained_model(name):
    model = fitted_model(name)
    meta = meta_for(name)
    images, _ = structured_scenes(4, SIZE, 11, seed=50)
    x = [image_inputs(name, images, spatial_size=SPATIAL if name == "bierfpspnet" else None)]
    ref = runner_from_model(model, meta, precision="fp32", fold_bn=False, fuse=False, channels_last=False)
    a = agreement(ref, runner_from_model(model, meta, precision="bf16"), x)
    # measured: 99.9 % (ERF-PSPNet) / 99.7 % (BiERF-PSPNet) at these settings
    assert a["argmax_agreement"] >= 0.99
    assert 0 < a["max_abs_diff"] < 0.5


def test_fp16_runner_runs_on_cpu():
    runner = runner_from_model(random_model("erfpspnet"), meta_for("erfpspnet"), precision="fp16")
    x = inputs_for("erfpspnet")
    out = runner(*x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    ref = runner_from_model(random_model("erfpspnet"), meta_for("erfpspnet"), precision="fp32")(*x)
    # logits of magnitude ~1: fp16 stays within 1e-2 (measured 1e-3)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-2)


def test_compile_backend_wiring_with_aot_eager():
    model = random_model("erfpspnet")
    runner = runner_from_model(model, meta_for("erfpspnet"), backend="compile", precision="fp32",
                               compile_backend="aot_eager")
    assert runner.backend == "compile" and not runner.fuse
    x = inputs_for("erfpspnet")
    with torch.no_grad():
        torch.testing.assert_close(runner(*x), model(*x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compile_backend_with_inductor(request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("inductor compilation takes ~15 s: run with -m slow")
    model = random_model("erfpspnet")
    runner = runner_from_model(model, meta_for("erfpspnet"), backend="compile", precision="fp32")
    x = inputs_for("erfpspnet")
    with torch.no_grad():
        torch.testing.assert_close(runner(*x), model(*x), rtol=1e-4, atol=1e-4)


def test_load_runner_from_checkpoint_dict_and_file(tmp_path):
    from iaseg.checkpoint import save_checkpoint

    ckpt = checkpoint_for(random_model("bierfpspnet"), "bierfpspnet")
    save_checkpoint(ckpt, tmp_path / "m.pt")
    for source in (ckpt, tmp_path / "m.pt", str(tmp_path / "m.pt")):
        runner = load_runner(source, precision="fp32")
        assert runner.model_name == "bierfpspnet" and runner.description.name == "camvid"
        assert runner.input_names == ("context", "spatial") and runner.input_size == SIZE
        # without a named backend: OpenVINO where it is installed (tests/inference/test_openvino.py)
        assert runner.num_classes == 11 and runner.backend == ("openvino" if openvino_available() else "eager")
        out = runner(*inputs_for("bierfpspnet", batch=1))
        assert out.shape == (1, 11, *SIZE)


def test_default_precision_follows_the_hardware():
    assert default_precision("cpu") == ("bf16" if native_bf16_cpu() else "fp32")
    assert default_precision("cuda") == "fp16"
    assert default_precision("cpu", "onnxruntime") == "fp32"
    assert default_precision("cpu", "openvino") == default_precision("cpu")
    runner = load_runner(checkpoint_for(random_model("erfpspnet"), "erfpspnet"), backend="eager")
    assert runner.precision == default_precision("cpu") and runner.fold_bn and runner.channels_last


def test_runner_errors_are_clear():
    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")
    runner = runner_from_model(model, meta, precision="fp32")
    with pytest.raises(ValueError, match="takes 1 input"):
        runner(*inputs_for("bierfpspnet"))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        runner(torch.zeros(1, 4, 64, 64))
    with pytest.raises(ValueError, match="int8 runs on backend 'onnxruntime'"):
        runner_from_model(model, meta, precision="int8")
    with pytest.raises(ValueError, match="unknown backend"):
        runner_from_model(model, meta, backend="tensorrt")
    with pytest.raises(ValueError, match="unknown precision"):
        runner_from_model(model, meta, precision="fp8")
    with pytest.raises(ValueError, match="calibration"):
        runner_from_model(model, meta, backend="onnxruntime", precision="int8")
    with pytest.raises(ValueError, match="cuda_graphs needs device 'cuda'"):
        TorchRunner(model, meta, cuda_graphs=True)
    with pytest.raises(ValueError, match="fuse=True needs fold_bn=True"):
        TorchRunner(model, meta, fold_bn=False, fuse=True)
    assert set(BACKENDS) == {"eager", "compile", "onnxruntime", "torchscript", "openvino"}
    assert set(PRECISIONS) == {"fp32", "bf16", "fp16", "int8"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_fp16_runner(cuda_graphs):
    model = random_model("erfpspnet")
    runner = runner_from_model(model, meta_for("erfpspnet"), precision="fp16", device="cuda", cuda_graphs=cuda_graphs)
    x = inputs_for("erfpspnet")
    for _ in range(2):  # the second call replays the graph
        out = runner(*x)
    with torch.no_grad():
        ref = model(*x)
    assert (out.cpu().argmax(1) == ref.argmax(1)).float().mean() > 0.9


FORMATS = {"onnx": ".onnx", "torchscript": ".ts", "openvino": ".xml"}


def _export(fmt, model, meta, path):
    from iaseg.inference import export_onnx, export_torchscript

    if fmt == "openvino":
        from iaseg.inference.openvino import export_openvino

        return export_openvino(model, meta, path)
    return (export_onnx if fmt == "onnx" else export_torchscript)(model, meta, path)


def _damage(path, fmt, how):
    """Flip 64 bytes in the middle of the weights (the file still parses), or cut it in half."""
    weights = path.with_suffix(".bin") if fmt == "openvino" else path
    data = bytearray(weights.read_bytes())
    mid = len(data) // 2
    if how == "flipped":
        data[mid:mid + 64] = bytes(255 - b for b in data[mid:mid + 64])
    else:
        del data[mid:]
    weights.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each format exported twice from one random ERF-PSPNet: with its metadata, and with a
    5-class description that does not fit its 11 output channels."""
    from iaseg.data.description import DatasetDescription

    root = tmp_path_factory.mktemp("exported")
    model = random_model("erfpspnet")
    five = DatasetDescription("five", tuple("abcde"), tuple((i, i, i) for i in range(5)), 255,
                              {"G1": ("a", "b"), "G2": ("c", "d", "e")})
    files = {}
    for fmt, suffix in FORMATS.items():
        if fmt == "openvino" and not openvino_available():
            continue
        files[fmt] = _export(fmt, model, meta_for("erfpspnet"), root / f"good{suffix}")
        files[fmt, "five"] = _export(fmt, model, meta_for("erfpspnet").with_(description=five), root / f"five{suffix}")
    return files


def _copy(src, dst):
    import shutil

    for suffix in (".bin", ".ts.json") if src.suffix in (".xml", ".ts") else ():
        side = src.with_suffix(suffix) if suffix == ".bin" else src.with_name(src.name + ".json")
        if side.exists():
            shutil.copy(side, dst.with_suffix(suffix) if suffix == ".bin" else dst.with_name(dst.name + ".json"))
    shutil.copy(src, dst)
    return dst


# (fault, expected message after "<file>: "); a damaged OpenVINO IR names its .xml and .bin
FAULTS = [
    ("flipped", "its weights do not match the checksum recorded at export (the file is damaged: export it again)"),
    ("five", "its iaseg metadata lists 5 classes but the model outputs 11 channels (the metadata does not belong "
             "to this model: export it again)"),
    ("truncated", None),  # each runtime says it its own way, in one line naming the file
]


@pytest.mark.parametrize("fault, message", FAULTS, ids=[f for f, _ in FAULTS])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_exported_files_are_checked_at_load(exported, tmp_path, fmt, fault, message):
    if fmt not in exported:
        pytest.skip("openvino is not installed")
    good = exported[fmt]
    assert load_runner(good, precision="fp32").num_classes == 11
    path = _copy(exported[fmt, "five"] if fault == "five" else good, tmp_path / f"m{FORMATS[fmt]}")
    if fault != "five":
        _damage(path, fmt, fault)
    with pytest.raises(ValueError) as info:
        load_runner(path, precision="fp32")
    text = str(info.value)
    name = f"{path} ({path.with_suffix('.bin').name})" if fmt == "openvino" and fault == "flipped" else str(path)
    if message is None:
        assert text.startswith(str(path)) and "\n" not in text.strip()
    else:
        assert text == f"{name}: {message}"


def _onnx_without_checksum(src, dst, version=None, accuracy_entry=True):
    """An exported ONNX file with one weight altered and its checksum entry removed; `version`
    and `accuracy_entry` rewrite its metadata as an older iaseg would have written it."""
    import json as _json

    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(src))
    init = proto.graph.initializer[0]
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 1.0
    init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    props = [p for p in proto.metadata_props if p.key != "iaseg.weights_sha256"]
    for p in props:
        if p.key == "iaseg" and version is not None:
            d = _json.loads(p.value)
            d["format_version"] = version
            if not accuracy_entry:
                d.pop("accuracy_check")
            p.value = _json.dumps(d)
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    onnx.save(proto, str(dst))
    return dst


@pytest.mark.parametrize("version, accuracy_entry, refused", [
    (None, True, True),      # as written now (format 2)
    (1, True, True),         # format 1 written after checksums came in (it has the accuracy_check entry)
    (1, False, False),       # format 1 from before checksums: nothing to check against, accepted as documented
])
def test_an_onnx_file_without_its_checksum_is_refused_when_its_version_records_one(
        exported, tmp_path, version, accuracy_entry, refused):
    path = _onnx_without_checksum(exported["onnx"], tmp_path / "m.onnx", version, accuracy_entry)
    if not refused:
        assert load_runner(path, precision="fp32").num_classes == 11
        return
    with pytest.raises(ValueError) as info:
        load_runner(path, precision="fp32")
    assert str(info.value) == (f"{path}: its checksum entry iaseg.weights_sha256 is missing, though its metadata says "
                               "it was written by an iaseg that records one (the file was altered: export it again)")
