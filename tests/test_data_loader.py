"""Loader helper (collate, seeded shuffling, workers) and augmentation."""
import sys

import numpy as np
import pytest
import torch

from data_helpers import camvid_tree
from iaseg.data import Augment, build_dataset, build_loader, collate, default_num_workers


def _items(n=3, h=8, w=12):
    return [{"image": torch.rand(3, h, w), "label": torch.randint(0, 11, (h, w)), "path": f"p{i}"} for i in range(n)]


def test_collate_stacks_dicts():
    items = _items()
    batch = collate(items)
    assert batch["image"].shape == (3, 3, 8, 12) and batch["label"].dtype == torch.int64
    assert batch["path"] == ["p0", "p1", "p2"]
    assert torch.equal(batch["image"][1], items[1]["image"])
    with pytest.raises(ValueError, match=r"different 'image' shapes .* give the dataset a fixed size"):
        collate(_items(1) + _items(1, h=9))
    with pytest.raises(ValueError, match="empty batch"):
        collate([])


def test_loader_seeded_shuffling_and_workers():
    ds = build_dataset("synthetic", None, "val", size=(32, 48), length=12)

    def order(seed, workers):
        loader = build_loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=seed)
        return [p for batch in loader for p in batch["path"]]

    first = order(0, 0)
    assert sorted(first) == sorted(ds[i]["path"] for i in range(12))
    assert order(0, 0) == first and order(0, 2) == first           # workers do not change the order
    assert order(1, 0) != first
    loader = build_loader(ds, batch_size=5, shuffle=False, num_workers=2, drop_last=True)
    assert loader.persistent_workers and not loader.pin_memory or torch.cuda.is_available()
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["image"].shape == (5, 3, 32, 48)
    assert batches[0]["path"][0] == ds[0]["path"]
    sampler = torch.utils.data.SubsetRandomSampler([3, 5], generator=torch.Generator().manual_seed(0))
    got = [p for b in build_loader(ds, 2, shuffle=True, num_workers=0, sampler=sampler) for p in b["path"]]
    assert sorted(got) == sorted([ds[3]["path"], ds[5]["path"]])
    assert 1 <= default_num_workers() <= 2
    with pytest.raises(ValueError, match="batch_size"):
        build_loader(ds, 0)


def test_loader_spatial_items():
    ds = build_dataset("synthetic", None, "val", size=(24, 32), spatial_size=(48, 64), length=4)
    batch = next(iter(build_loader(ds, 4, num_workers=0)))
    assert batch["spatial"].shape == (4, 3, 48, 64) and batch["image"].shape == (4, 3, 24, 32)


# -- augmentation ---------------------------------------------------------------------------------

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


def test_worker_errors_keep_the_one_line_message(tmp_path):
    from data_helpers import truncate
    from iaseg.data import DatasetError

    root = camvid_tree(tmp_path)
    truncate(root / "train/b.png")
    loader = build_loader(build_dataset("camvid", root, "train"), batch_size=1, num_workers=2)
    with pytest.raises(DatasetError) as info:
        list(loader)
    message = str(info.value)
    del info    # the traceback refers to this frame: a cycle only the slow garbage collector would free
    assert "\n" not in message and message.startswith(str(root / "train/b.png") + ": unreadable or truncated image")
    camvid_tree(root)                                   # repaired: the same (persistent) loader works again
    assert [p for b in loader for p in b["path"]] == [str(root / f"train/{n}.png") for n in "abc"]
