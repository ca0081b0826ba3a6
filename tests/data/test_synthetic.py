"""Synthetic street scenes: determinism, any size, class statistics, colour does not give the class."""
import numpy as np
import pytest
import torch

from iaseg.data import build_dataset, render_scene
from iaseg.data.scene_canvas import BICYCLIST, CAR, PEDESTRIAN, SIGN, VOID
from iaseg.data.synthetic import scene_rng


CAMVID_TRAIN_SHARE = np.array([16.85, 23.26, 0.98, 31.66, 4.49, 9.72, 1.17, 1.13, 5.87, 0.64, 0.29, 3.95]) / 100


def test_deterministic_per_seed_split_index():
    a = build_dataset("synthetic", None, "train", seed=3)
    b = build_dataset("synthetic", None, "train", seed=3)
    for i in (0, 7):
        x, y = a[i], b[i]
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
        assert x["path"] == f"synthetic://train/seed3/{i:06d}"
    assert not torch.equal(a[0]["image"], a[1]["image"])
    assert not torch.equal(a[0]["image"], build_dataset("synthetic", None, "train", seed=4)[0]["image"])
    assert not torch.equal(a[0]["image"], build_dataset("synthetic", None, "val", seed=3)[0]["image"])
    # read order does not matter (generated from (seed, split, index) alone)
    assert torch.equal(build_dataset("synthetic", None, "train", seed=3)[7]["label"], a[7]["label"])


def test_lengths_sizes_and_spatial():
    assert len(build_dataset("synthetic", None, "train")) == 200
    assert len(build_dataset("synthetic", None, "val")) == 50
    ds = build_dataset("synthetic", None, "val", length=3)
    assert len(ds) == 3 and ds.description.name == "camvid"
    item = ds[0]
    assert item["image"].shape == (3, 360, 480) and item["label"].shape == (360, 480)
    for h, w in [(8, 8), (64, 96), (184, 720)]:
        image, label = render_scene(h, w, scene_rng(0, "train", 1))
        assert image.shape == (h, w, 3) and image.dtype == np.uint8 and label.shape == (h, w)
        assert label.max() <= VOID
    two = build_dataset("synthetic", "ignored-root", "train", size=(96, 128), spatial_size=(192, 256), length=2)[1]
    assert two["image"].shape == (3, 96, 128) and two["spatial"].shape == (3, 192, 256)
    # the context image is the spatial image shrunk
    small = torch.nn.functional.interpolate(two["spatial"][None], size=(96, 128), mode="bilinear",
                                            antialias=True, align_corners=False)[0]
    assert (small - two["image"]).abs().mean() < 0.01
    with pytest.raises(ValueError, match="length"):
        build_dataset("synthetic", None, "train", length=0)
    with pytest.raises(ValueError, match="CamVid classes"):
        build_dataset("synthetic", None, "train", description="cityscapes")


def test_class_shares_resemble_camvid():
    counts = np.zeros(12)
    present = np.zeros(12)
    for i in range(40):
        _, label = render_scene(180, 240, scene_rng(0, "train", i))
        c = np.bincount(label.ravel(), minlength=12)
        counts += c
        present += c > 0
    share = counts / counts.sum()
    assert (present > 0).all()                              # every class, void included, appears
    # large classes within a few points of CamVid, small ones within a factor of ~2
    big = CAMVID_TRAIN_SHARE > 0.05
    assert np.abs(share[big] - CAMVID_TRAIN_SHARE[big]).max() < 0.06, share
    ratio = share[~big] / CAMVID_TRAIN_SHARE[~big]
    assert ((ratio > 0.4) & (ratio < 2.5)).all(), share
    # safety-critical objects are small and rare: absent from some images
    for cls in (PEDESTRIAN, BICYCLIST, SIGN):
        assert share[cls] < 0.02
    assert present[BICYCLIST] < 40
    assert present[CAR] >= 30


def test_colour_alone_does_not_separate_classes():
    """Nearest class-mean colour, fitted on some images, classifies few pixels of others right."""
    def pixels(indices):
        xs, ys = [], []
        for i in indices:
            image, label = render_scene(120, 160, scene_rng(1, "train", i))
            keep = label != VOID
            xs.append(image[keep].astype(np.float64))
            ys.append(label[keep])
        return np.concatenate(xs), np.concatenate(ys)

    x, y = pixels(range(10))
    means = np.stack([x[y == c].mean(0) if (y == c).any() else np.full(3, 1e9) for c in range(11)])
    xt, yt = pixels(range(10, 20))
    pred = ((xt[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    accuracy = (pred == yt).mean()
    g3 = np.isin(yt, [SIGN, CAR, PEDESTRIAN, BICYCLIST])
    g3_recall = (pred[g3] == yt[g3]).mean()
    assert accuracy < 0.6, accuracy
    assert g3_recall < 0.3, g3_recall
