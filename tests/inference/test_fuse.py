"""CPU conv + ReLU fusion and the fast max-pool."""
import copy

import pytest
import torch
import torch.nn.functional as F

from iaseg.inference import fold_batchnorm, fuse_conv_relu
import iaseg.inference.fuse as fuse
from iaseg.inference.fuse import Float32Head, FusedConvReLU, max_pool_2x2, mkldnn_bf16_available

from tests.helpers.speed import MODELS, inputs_for, random_model


@pytest.mark.parametrize("name", MODELS)
def test_fused_float32_matches_folded(name):
    folded = fold_batchnorm(random_model(name))
    fused = Float32Head(fuse_conv_relu(copy.deepcopy(folded)).to(memory_format=torch.channels_last))
    x = inputs_for(name)
    with torch.inference_mode():
        ref = folded(*x)
        out = fused(*(t.contiguous(memory_format=torch.channels_last) for t in x))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_bf16_probe_agrees_with_a_real_fused_bf16_call():
    """mkldnn_bf16_available says whether oneDNN's fused convolution takes bf16 here (not on
    AVX2-only CPUs, where it raises)."""
    if not fuse.mkldnn_fusion_available():
        assert not mkldnn_bf16_available()
        return
    x, w = torch.rand(1, 3, 8, 8).to(torch.bfloat16), torch.rand(4, 3, 3, 3).to(torch.bfloat16)
    try:
        torch.ops.mkldnn._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        runs = True
    except RuntimeError:
        runs = False
    assert mkldnn_bf16_available() is runs


@pytest.mark.parametrize("bf16_kernel", [True, False])
def test_fused_bf16_matches_conv_relu_with_or_without_the_onednn_kernel(monkeypatch, bf16_kernel):
    """Where oneDNN cannot take bf16 the fused module runs the generic conv + ReLU (a bf16 runner
    still works on such a CPU, slowly); both give the plain bf16 result."""
    if bf16_kernel and not mkldnn_bf16_available():
        pytest.skip("oneDNN's fused convolution takes no bf16 on this CPU")
    monkeypatch.setattr(fuse, "mkldnn_bf16_available", lambda: bf16_kernel)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).to(torch.bfloat16)
    x = torch.rand(1, 8, 16, 16).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = FusedConvReLU(conv)(x)
        ref = F.relu(conv(x))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=2e-2, atol=2e-2)


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
