"""Label maps at the image's size without resizing every class: equal to PyTorch's bilinear
resize of the logits followed by argmax (and by a rule's offsets), ties included."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iaseg.inference.labels import argmax_classes, argmax_decision, resize_logits, upsample_argmax


def reference(z, size, offsets=None):
    """Today's path: resize_logits (bilinear, align_corners=False), then argmax or argmax(z + b)."""
    r = F.interpolate(torch.from_numpy(z)[None], size=size, mode="bilinear", align_corners=False)
    if offsets is not None:
        r = r + torch.from_numpy(offsets).view(1, -1, 1, 1)
    return r.argmax(1)[0].numpy()


def test_resize_logits_is_float32_bilinear_and_a_no_op_at_the_same_size():
    x = torch.rand(1, 3, 4, 6, dtype=torch.float16)
    assert resize_logits(x, (4, 6)).dtype == torch.float32
    torch.testing.assert_close(resize_logits(x, (4, 6)), x.float(), rtol=0, atol=0)
    torch.testing.assert_close(resize_logits(x, (8, 12)),
                               F.interpolate(x.float(), size=(8, 12), mode="bilinear", align_corners=False))


def test_argmax_decision_is_the_first_maximum_over_classes():
    z = torch.tensor([[[[0.0, 2.0]], [[1.0, 2.0]], [[0.5, 1.0]]]])  # 1 x 3 x 1 x 2, a tie at the second pixel
    assert argmax_decision(z).tolist() == [[[1, 0]]]


def logits(rng, c, h, w, kind):
    z = rng.standard_normal((c, h, w)).astype(np.float32)
    if kind == "smooth":  # segment-like regions: few boundaries, as a trained network gives
        z = F.avg_pool2d(torch.from_numpy(z)[None], 7, 1, 3, count_include_pad=False)[0].numpy() * 6
    elif kind == "ties":  # small integers: many exact ties, first maximum must win
        z = rng.integers(0, 3, (c, h, w)).astype(np.float32)
    return z


@pytest.mark.parametrize("h, w, H, W", [(45, 60, 360, 720), (36, 48, 36, 72), (64, 64, 48, 80), (64, 64, 30, 40),
                                        (23, 31, 100, 37), (8, 8, 64, 64), (1, 5, 7, 9), (17, 17, 17, 17)])
@pytest.mark.parametrize("kind", ["noise", "smooth", "ties"])
def test_equals_resize_then_argmax(h, w, H, W, kind):
    rng = np.random.default_rng(h * 1000 + W)
    z = logits(rng, 11, h, w, kind)
    got = upsample_argmax(z, (H, W))
    assert got.dtype == np.uint8 and got.shape == (H, W)
    ref = reference(z, (H, W))
    if kind != "ties":
        assert np.array_equal(got, ref)
        return
    # exact mathematical ties between two classes: PyTorch's kernel rounds its weights on its own
    # (values off by a few ulp), so either class may win there; everywhere else: equal
    r = F.interpolate(torch.from_numpy(z)[None], size=(H, W), mode="bilinear", align_corners=False)[0].numpy()
    ys, xs = np.nonzero(got != ref)
    assert ys.size < 0.01 * got.size  # integer logits in 0..2 over 11 classes: ties are common
    assert np.all(np.abs(r[got[ys, xs], ys, xs] - r[ref[ys, xs], ys, xs]) < 1e-5)


@pytest.mark.parametrize("kind", ["noise", "smooth"])
def test_offsets_equal_a_rule_applied_after_resizing(kind):
    rng = np.random.default_rng(3)
    z = logits(rng, 11, 30, 40, kind)
    b = rng.normal(0, 1.5, 11).astype(np.float32)
    got = upsample_argmax(z, (90, 100), b)
    assert np.array_equal(got, reference(z, (90, 100), b))
    assert not np.array_equal(got, upsample_argmax(z, (90, 100)))  # the offsets matter here


def test_argmax_classes_is_torch_argmax_with_first_maximum_on_ties():
    rng = np.random.default_rng(4)
    z = rng.integers(0, 2, (12, 9, 13)).astype(np.float32)
    assert np.array_equal(argmax_classes(z), torch.from_numpy(z).argmax(0).numpy())
    with pytest.raises(ValueError, match="257 classes"):
        argmax_classes(np.zeros((257, 2, 2), np.float32))


def test_shipped_weights_on_camvid_frames_give_todays_masks(camvid_root):
    """The shipped CE weights through their default runner (the checked int8 IR) on CamVid val
    frames brought to 360x720: the fast label maps equal resize-then-argmax on every pixel."""
    from pathlib import Path

    from iaseg.data.base import image_to_tensor
    from iaseg.data.io import read_image, resize_image
    from iaseg.inference import load_runner

    weights = Path(__file__).resolve().parents[2] / "weights" / "camvid_erfpspnet_ce.pt"
    if not weights.is_file():
        pytest.skip("shipped weights absent")
    runner = load_runner(weights)
    for path in sorted((camvid_root / "val").iterdir())[:3]:
        frame = resize_image(read_image(path), (360, 720))
        z = runner(image_to_tensor(resize_image(frame, runner.input_size))[None]).float()
        got = upsample_argmax(z[0].numpy(), (360, 720))
        assert np.array_equal(got, reference(z[0].numpy(), (360, 720)))
