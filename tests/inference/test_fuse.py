"""CPU conv + ReLU fusion and the fast max-pool."""
import copy

import pytest
import torch
import torch.nn.functional as F

from iaseg.inference import fold_batchnorm, fuse_conv_relu
from iaseg.inference.fuse import Float32Head, max_pool_2x2

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
