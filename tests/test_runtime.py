"""Fast inference paths: BN folding, CPU fusion, runners, accuracy helpers."""
import copy

import pytest
import torch
import torch.nn.functional as F
from _speed_helpers import (SIZE, SPATIAL, checkpoint_for, fitted_model, meta_for, random_model,
                            randomise_bn)

from iaseg.inference import (BACKENDS, PRECISIONS, TorchRunner, agreement, confusion_matrix, count_batchnorms,
                             default_precision, fold_batchnorm, fold_conv_bn, fuse_conv_relu,
                             iou_from_confusion, load_runner, machine_info, mean_iou, native_bf16_cpu,
                             openvino_available, runner_from_model)
from iaseg.inference.fold import FoldedDownsampler
from iaseg.inference.fuse import Float32Head, max_pool_2x2
from iaseg.inference.synthetic import model_inputs, structured_scenes
from iaseg.models import example_inputs
from iaseg.models.blocks import Downsampler

MODELS = ["erfpspnet", "bierfpspnet"]


def inputs_for(name, batch=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(t.shape, generator=g, dtype=dtype)
                 for t in example_inputs(name, SIZE, batch=batch, spatial_size=SPATIAL))


# ---------------------------------------------------------------- folding

@pytest.mark.parametrize("name", MODELS)
def test_fold_equals_unfolded_eval_output_in_float64(name):
    model = copy.deepcopy(random_model(name)).double()
    folded = fold_batchnorm(model)
    assert count_batchnorms(model) > 20 and count_batchnorms(folded) == 0
    x = inputs_for(name, dtype=torch.float64)
    with torch.no_grad():
        ref, out = model(*x), folded(*x)
    assert ref.abs().max() > 0.1  # a non-trivial output
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_fold_float32_close_to_float64_reference(name):
    model = random_model(name)
    x = inputs_for(name)
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(*(t.double() for t in x))
        out = fold_batchnorm(model)(*x)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_fold_conv_bn_matches_formula_with_and_without_bias():
    torch.manual_seed(0)
    for bias in (True, False):
        conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=bias).double()
        bn = randomise_bn(torch.nn.BatchNorm2d(6, eps=1e-3)).double()
        x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        expected = (conv(x) - bn.running_mean.view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
        fused = fold_conv_bn(conv, bn)
        assert fused.bias is not None and fused is not conv
        torch.testing.assert_close(fused(x), expected.detach(), rtol=0, atol=1e-12)


def test_fold_conv_bn_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="channels"):
        fold_conv_bn(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(5).eval())


def test_downsampler_fold_keeps_maxpool_channels_exact_with_negative_scales():
    torch.manual_seed(0)
    block = randomise_bn(Downsampler(16, 64)).double()
    with torch.no_grad():  # negative scales on the pooled channels: max-pool does not commute with them
        block.bn.weight[48:] = -torch.rand(16, dtype=torch.float64) - 0.5
    folded = FoldedDownsampler(block)
    x = torch.randn(2, 16, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), block(x), rtol=0, atol=1e-12)
    assert folded.pool_scale.shape == (1, 16, 1, 1) and (folded.pool_scale < 0).all()


def test_fold_copies_unless_inplace():
    model = copy.deepcopy(random_model("erfpspnet"))
    n = count_batchnorms(model)
    fold_batchnorm(model)
    assert count_batchnorms(model) == n
    assert fold_batchnorm(model, inplace=True) is model and count_batchnorms(model) == 0


# ---------------------------------------------------------------- CPU fusion

@pytest.mark.parametrize("name", MODELS)
def test_fused_float32_matches_folded(name):
    folded = fold_batchnorm(random_model(name))
    fused = Float32Head(fuse_conv_relu(copy.deepcopy(folded)).to(memory_format=torch.channels_last))
    x = inputs_for(name)
    with torch.inference_mode():
        ref = folded(*x)
        out = fused(*(t.contiguous(memory_format=torch.channels_last) for t in x))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_fused_modules_fall_back_under_autograd():
    """With gradients on, fused blocks use plain conv + ReLU (no in-place add on a graph)."""
    folded = fold_batchnorm(random_model("erfpspnet"))
    fused = fuse_conv_relu(copy.deepcopy(folded))
    for p in fused.parameters():
        p.requires_grad_(True)
    x = inputs_for("erfpspnet", batch=1)
    out = fused(*x)
    out.sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(out.detach(), folded(*x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 3, 8, 12), (2, 5, 6, 4), (1, 2, 7, 9)])
def test_max_pool_2x2_equals_max_pool2d(shape):
    x = torch.randn(shape)
    torch.testing.assert_close(max_pool_2x2(x), F.max_pool2d(x, 2, 2), rtol=0, atol=0)
    with torch.inference_mode():
        xc = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(max_pool_2x2(xc), F.max_pool2d(x, 2, 2), rtol=0, atol=0)


# ---------------------------------------------------------------- runners

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
    x = [model_inputs(name, images, SPATIAL if name == "bierfpspnet" else None)]
    ref = runner_from_model(model, meta, precision="fp32", fold_bn=False, fuse=False, channels_last=False)
    a = agreement(ref, runner_from_model(model, meta, precision="bf16"), x)
    # measured: 99.9 % (ERF-PSPNet) / 99.7 % (BiERF-PSPNet) at these settings
    assert a["argmax_agreement"] >= 0.99
    assert 0 < a["max_abs_diff"] < 0.5


def test_fp16_runner_runs_on_cpu():
    runner = runner_from_model(random_model("erfpspnet"), meta_for("erfpspnet"), precision="fp16")
    out = runner(*inputs_for("erfpspnet"))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


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
        # without a named backend: OpenVINO where it is installed (tests/test_inference_openvino.py)
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


# ---------------------------------------------------------------- accuracy helpers

def test_agreement_counts_pixels_and_ties():
    a = torch.tensor([[[[2.0, 0.0]], [[1.0, 0.05]]]])  # 1 x 2 classes x 1 x 2; pixel 2 is a near tie
    b = a.clone()
    b[0, 0, 0, 1] = 0.1  # flips pixel 2, diff 0.1
    r = agreement(lambda x: a, lambda x: b, (torch.zeros(1, 3, 1, 2),))
    assert r["argmax_agreement"] == 0.5 and r["pixels"] == 2 and r["images"] == 1
    assert r["max_abs_diff"] == pytest.approx(0.1) and r["mean_abs_diff"] == pytest.approx(0.1 / 4)
    assert r["near_ties"] == 0.5
    same = agreement(lambda x: a, lambda x: a, [(torch.zeros(1),), (torch.zeros(1),)])
    assert same["argmax_agreement"] == 1.0 and same["images"] == 2 and same["max_abs_diff"] == 0
    with pytest.raises(ValueError, match="shapes differ"):
        agreement(lambda x: a, lambda x: a[:, :1], (torch.zeros(1),))


def test_confusion_matrix_orientation_and_iou():
    label = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    conf = confusion_matrix(pred, label, 3, 255)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # rows = ground truth
    iou = iou_from_confusion(conf)
    assert iou.tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert torch.isnan(iou_from_confusion(torch.zeros(2, 2, dtype=torch.int64))).all()


def test_mean_iou_of_a_runner():
    label = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.tensor([[[[5.0, 0.0], [0.0, 0.0]], [[0.0, 5.0], [5.0, 0.0]], [[0.0] * 2] * 2]])
    r = mean_iou(lambda x: logits, [((torch.zeros(1),), label)], 3, 255)
    assert r["miou"] == pytest.approx(100.0)  # class 2 absent from both: left out
    assert r["confusion"].sum() == 3


def test_structured_scenes_are_seeded_and_share_colours():
    a_img, a_lab = structured_scenes(2, (32, 48), 5, seed=3)
    b_img, b_lab = structured_scenes(2, (32, 48), 5, seed=3)
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    assert a_img.shape == (2, 3, 32, 48) and 0 <= a_img.min() and a_img.max() <= 1
    assert a_lab.min() >= 0 and a_lab.max() < 5 and len(a_lab.unique()) >= 3
    c_img, c_lab = structured_scenes(2, (32, 48), 5, seed=4)
    assert not torch.equal(a_lab, c_lab)
    # class colours are a property of the class, not of the seed
    col = lambda img, lab, c: img.permute(0, 2, 3, 1)[lab == c].median(0).values  # noqa: E731
    torch.testing.assert_close(col(a_img, a_lab, 1), col(c_img, c_lab, 1), atol=0.12, rtol=0)
    x = model_inputs("bierfpspnet", a_img, (64, 96))
    assert [tuple(t.shape[-2:]) for t in x] == [(32, 48), (64, 96)]


def test_machine_info_states_the_machine():
    info = machine_info("cpu")
    for key in ("cpu", "cpu_cores", "torch_threads", "torch", "gpu", "cpu_bf16", "onnxruntime", "openvino", "nncf"):
        assert key in info
    assert info["torch"] == torch.__version__ and info["gpu"] is None


def test_specialised_pooling_equals_dynamic_pooling_and_checks_size():
    from iaseg.inference import export_ready, specialise_pooling
    from iaseg.inference.files import complete_metadata

    for name, size in (("erfpspnet", (64, 96)), ("bierfpspnet", (64, 64))):
        model = random_model(name)
        x = inputs_for(name, batch=1) if size == SIZE else (torch.rand(1, 3, *size),)
        with torch.no_grad():
            ref = model(*x)
            torch.testing.assert_close(specialise_pooling(copy.deepcopy(model), size)(*x), ref)
            torch.testing.assert_close(export_ready(model, size)(*x), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="specialised for 64x96"):
        with torch.no_grad():
            specialise_pooling(copy.deepcopy(random_model("erfpspnet")), (64, 96))(torch.rand(1, 3, 64, 64))
    meta = meta_for("bierfpspnet").with_(input_size=(360, 720), spatial_size=None)
    assert complete_metadata(meta).spatial_size == (1024, 2048)
