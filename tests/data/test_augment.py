"""Augmentation: image, label and spatial image stay aligned; flips and colour; kornia missing."""
import sys

import numpy as np
import pytest
import torch

from iaseg.data import Augment, build_dataset

from tests.helpers.data import camvid_tree


def _coded(h=48, w=64, classes=8):
    """An image whose red channel encodes the label (blocks), so alignment can be checked."""
    label = torch.from_numpy(np.kron(np.arange(12).reshape(3, 4) % classes, np.ones((h // 3, w // 4), dtype=np.int64)))
    image = torch.stack([label.float() / 10, torch.rand(h, w), torch.rand(h, w)])
    return image, label


def test_augment_keeps_image_and_label_aligned():
    pytest.importorskip("kornia")   # optional dependency (iaseg[augment])
    torch.manual_seed(0)
    aug = Augment(scale=(0.6, 1.8), hflip=0.5, brightness=0, contrast=0, saturation=0, hue=0, ignore_index=255,
                  generator=torch.Generator().manual_seed(1))
    image, label = _coded()
    seen_pad = False
    for _ in range(12):
        out_img, out_lab = aug(image, label)
        assert out_img.shape == image.shape and out_lab.shape == label.shape and out_lab.dtype == torch.int64
        valid = out_lab != 255
        seen_pad |= bool((~valid).any())
        assert set(out_lab[valid].unique().tolist()) <= set(label.unique().tolist())
        # away from block edges (3x3 neighbourhood of one label) the image code must equal the label
        lab = out_lab[None, None].float()
        same = (torch.nn.functional.max_pool2d(lab, 3, 1, 1) == -torch.nn.functional.max_pool2d(-lab, 3, 1, 1))[0, 0]
        interior = valid & same
        interior[0, :] = interior[-1, :] = interior[:, 0] = interior[:, -1] = False
        assert interior.sum() > 0.5 * valid.sum()
        code = (out_img[0][interior] * 10).round().long()
        assert torch.equal(code, out_lab[interior])
    assert seen_pad                                                    # zoom-out pads with ignore


def test_augment_flip_and_colour():
    pytest.importorskip("kornia")   # optional dependency (iaseg[augment])
    image, label = _coded()
    flip = Augment(scale=None, hflip=1.0, brightness=0, contrast=0, saturation=0, hue=0)
    out_img, out_lab = flip(image, label)
    assert torch.equal(out_lab, label.flip(-1)) and torch.allclose(out_img, image.flip(-1))
    colour = Augment(scale=None, hflip=0.0, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05,
                     generator=torch.Generator().manual_seed(0))
    out_img, out_lab = colour(image, label)
    assert torch.equal(out_lab, label) and not torch.allclose(out_img, image)
    assert 0 <= float(out_img.min()) and float(out_img.max()) <= 1
    batch_img, batch_lab = colour(image[None].repeat(2, 1, 1, 1), label[None].repeat(2, 1, 1))
    assert batch_img.shape == (2, 3, 48, 64) and not torch.allclose(batch_img[0], batch_img[1])
    with pytest.raises(ValueError, match="scale"):
        Augment(scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="do not match"):
        flip(image, label[:10])


def test_dataset_augment_option(tmp_path):
    pytest.importorskip("kornia")   # optional dependency (iaseg[augment])
    ds = build_dataset("synthetic", None, "train", size=(48, 64), length=2, augment=True)
    assert isinstance(ds.augment, Augment) and ds.augment.ignore_index == 11
    torch.manual_seed(0)
    a = ds[0]
    plain = build_dataset("synthetic", None, "train", size=(48, 64), length=2)[0]
    assert a["image"].shape == plain["image"].shape and not torch.equal(a["image"], plain["image"])
    # with a spatial image, geometry is shared: shrinking the spatial image gives the context image
    ds = build_dataset("synthetic", None, "train", size=(48, 64), spatial_size=(96, 128), length=2,
                       augment={"scale": (0.5, 2.0), "hflip": 0.5})
    for i in range(2):
        it = ds[i]
        small = torch.nn.functional.interpolate(it["spatial"][None], size=(48, 64), mode="bilinear",
                                                antialias=True, align_corners=False)[0]
        assert (small - it["image"]).abs().max() < 1e-5
    root = camvid_tree(tmp_path)
    custom = build_dataset("camvid", root, "train", augment=lambda im, lab: (im * 0, lab * 0))
    assert float(custom[0]["image"].sum()) == 0 and int(custom[0]["label"].sum()) == 0
    with pytest.raises(ValueError, match=r"unknown augment option\(s\) \['rotate'\]"):
        build_dataset("synthetic", None, "train", augment={"rotate": 10})
    with pytest.raises(ValueError, match="augment must be"):
        build_dataset("synthetic", None, "train", augment="yes")
    assert build_dataset("synthetic", None, "train", augment=False).augment is None


def test_missing_kornia_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia", None)
    with pytest.raises(ImportError, match="pip install kornia"):
        build_dataset("synthetic", None, "train", augment=True)
    build_dataset("synthetic", None, "train")[0]                   # no augmentation: no kornia needed


def test_crop_is_a_window_of_the_zoomed_image_aligned_with_its_label():
    pytest.importorskip("kornia")
    image, label = _coded(48, 64)
    # no zoom: the output is an exact window of the input
    plain = Augment(scale=None, crop=(24, 32), hflip=0, brightness=0, contrast=0, saturation=0, hue=0,
                    generator=torch.Generator().manual_seed(3))
    seen = set()
    for _ in range(6):
        out_img, out_lab = plain(image, label)
        assert out_img.shape == (3, 24, 32) and out_lab.shape == (24, 32)
        hits = [(t, l) for t in range(48 - 24 + 1) for l in range(64 - 32 + 1)
                if torch.equal(label[t:t + 24, l:l + 32], out_lab)
                and torch.allclose(image[:, t:t + 24, l:l + 32], out_img, atol=1e-6)]
        assert hits, "the crop is not a window of the input"
        seen.add(hits[0])
    assert len(seen) > 1                                                  # the window moves
    # zoom in and out: labels stay aligned with the image code, padding gets the ignore label
    zoom = Augment(scale=(0.4, 2.0), crop=(24, 40), hflip=0.5, brightness=0, contrast=0, saturation=0, hue=0,
                   generator=torch.Generator().manual_seed(5))
    pads = 0
    for _ in range(16):
        out_img, out_lab = zoom(image, label)
        assert out_img.shape == (3, 24, 40) and out_lab.shape == (24, 40)
        valid = out_lab != 255
        pads += int((~valid).any())
        lab = out_lab[None, None].float()
        same = (torch.nn.functional.max_pool2d(lab, 3, 1, 1) == -torch.nn.functional.max_pool2d(-lab, 3, 1, 1))[0, 0]
        interior = valid & same
        interior[0, :] = interior[-1, :] = interior[:, 0] = interior[:, -1] = False
        code = (out_img[0][interior] * 10).round().long()
        assert torch.equal(code, out_lab[interior])
    assert pads > 0                                                       # scale 0.4 leaves padded bands
    with pytest.raises(ValueError, match="crop"):
        Augment(crop=(4, 32))
    with pytest.raises(ValueError, match="crop"):
        Augment(crop=(24,))


def test_blur_changes_the_image_only_and_draws_the_same_with_the_same_seed():
    pytest.importorskip("kornia")
    image, label = _coded()
    kw = dict(scale=None, hflip=0, brightness=0, contrast=0, saturation=0, hue=0, blur=1.0, blur_sigma=(1.0, 1.0))
    out_img, out_lab = Augment(**kw)(image, label)
    assert torch.equal(out_lab, label) and not torch.allclose(out_img, image)
    # a 3x3 .. 7x7 Gaussian keeps the mean of a constant image and smooths noise
    assert float(out_img[1].std()) < float(image[1].std())
    flat = torch.full((3, 16, 16), 0.5)
    assert torch.allclose(Augment(**kw)(flat, label[:16, :16])[0], flat, atol=1e-6)
    a = Augment(**{**kw, "blur": 0.5, "blur_sigma": (0.3, 1.5)}, generator=torch.Generator().manual_seed(2))
    b = Augment(**{**kw, "blur": 0.5, "blur_sigma": (0.3, 1.5)}, generator=torch.Generator().manual_seed(2))
    batch = image[None].repeat(4, 1, 1, 1)
    assert torch.equal(a(batch, label[None].repeat(4, 1, 1))[0], b(batch, label[None].repeat(4, 1, 1))[0])
    with pytest.raises(ValueError, match="blur"):
        Augment(blur=1.5)


def test_dataset_crops_share_the_window_between_spatial_and_context_images():
    pytest.importorskip("kornia")
    ds = build_dataset("synthetic", None, "train", size=(48, 64), length=2, augment={"crop": [32, 48], "scale": [0.5, 2.0]})
    item = ds[0]
    assert item["image"].shape == (3, 32, 48) and item["label"].shape == (32, 48)
    # with a spatial image at twice the size the crop is taken there; the context is the same window
    ds = build_dataset("synthetic", None, "train", size=(48, 64), spatial_size=(96, 128), length=2,
                       augment={"crop": (64, 96), "scale": (0.5, 2.0)})
    item = ds[1]
    assert item["spatial"].shape == (3, 64, 96) and item["image"].shape == (3, 32, 48)
    assert item["label"].shape == (32, 48)
    small = torch.nn.functional.interpolate(item["spatial"][None], size=(32, 48), mode="bilinear",
                                            antialias=True, align_corners=False)[0]
    assert (small - item["image"]).abs().max() < 1e-5
