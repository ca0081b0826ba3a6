"""BatchNorm folding: exact in float64, close in float32."""
import copy

import pytest
import torch

from iaseg.inference import count_batchnorms, fold_batchnorm, fold_conv_bn
from iaseg.inference.fold import FoldedDownsampler
from iaseg.models.blocks import Downsampler

from tests.helpers.speed import MODELS, inputs_for, random_model, randomise_bn


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
