"""The shared blocks: single-value BatchNorm, the authors' pyramid pooling windows, SAME pooling."""
import torch

from iaseg.models.blocks import BatchNorm2d, same_avg_pool, tf_bin_pool, tf_pool_window


def test_single_value_batchnorm_uses_running_stats_and_keeps_them():
    bn = BatchNorm2d(3).train()
    bn.running_mean.fill_(0.5)
    bn.running_var.fill_(4.0)
    x = torch.randn(1, 3, 1, 1)
    y = bn(x)
    torch.testing.assert_close(y, (x - 0.5) / torch.sqrt(torch.tensor(4.0 + bn.eps)))
    assert torch.all(bn.running_mean == 0.5) and torch.all(bn.running_var == 4.0)
    # two values per channel is ordinary batch norm (running stats move)
    bn(torch.randn(2, 3, 1, 1))
    assert not torch.all(bn.running_mean == 0.5)


def test_tf_pool_windows_match_spec_table():
    # spec section 1.4: (kernel, stride) for 45x90 and 45x60 feature maps
    assert [tf_pool_window(45, n) for n in (2, 4, 8)] == [(23, 22), (12, 11), (10, 5)]
    assert [tf_pool_window(90, n) for n in (2, 4, 8)] == [(45, 45), (24, 22), (13, 11)]
    assert [tf_pool_window(60, n) for n in (2, 4, 8)] == [(30, 30), (15, 15), (11, 7)]


def test_tf_bin_pool_against_float64_reference():
    x = torch.rand(1, 2, 45, 60, dtype=torch.float64)
    y = tf_bin_pool(x, 8)
    assert y.shape == (1, 2, 8, 8)
    (kh, sh), (kw, sw) = tf_pool_window(45, 8), tf_pool_window(60, 8)
    for i in range(8):
        for j in range(8):
            ref = x[..., i * sh:i * sh + kh, j * sw:j * sw + kw].mean(dim=(-2, -1))
            torch.testing.assert_close(y[..., i, j], ref)


def test_same_avg_pool_divides_by_valid_cells():
    x = torch.rand(1, 1, 45, 90, dtype=torch.float64)
    y = same_avg_pool(x, 8)
    assert y.shape == (1, 1, 6, 12)
    torch.testing.assert_close(y[0, 0, -1, -1], x[0, 0, 40:45, 88:90].mean())
    torch.testing.assert_close(y[0, 0, 0, 0], x[0, 0, :8, :8].mean())


def test_downsampler_keeps_the_autocast_dtype_and_fp32_values():
    from iaseg.models.blocks import Downsampler

    torch.manual_seed(0)
    d = Downsampler(3, 16).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = d(x)
    # the pool branch follows the conv's bf16, so the trunk after it stays in bf16 (no fp32 promotion)
    assert y.dtype == torch.bfloat16
    ref = d.double()(x.double())
    assert d.float()(x).dtype == torch.float32
    torch.testing.assert_close(y.double(), ref, atol=0.05, rtol=0.02)


def test_upsample_logits_is_fp32_nchw_under_autocast_and_plain_otherwise():
    import torch.nn.functional as F

    from iaseg.models.blocks import upsample_logits

    y = torch.randn(2, 11, 6, 8).bfloat16().contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        up = upsample_logits(y, (48, 64))
    assert up.dtype == torch.float32 and up.is_contiguous()
    ref = F.interpolate(y.double(), size=(48, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up.double(), ref, atol=1e-6, rtol=1e-6)  # fp32 maths on the bf16 logits
    z = torch.randn(2, 11, 6, 8)
    assert torch.equal(upsample_logits(z, (48, 64)), F.interpolate(z, size=(48, 64), mode="bilinear",
                                                                   align_corners=False))
    assert upsample_logits(y, (48, 64)).dtype == torch.bfloat16   # no autocast: the input's dtype
