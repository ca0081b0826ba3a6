"""The calibration cache and the fast re-scoring on it, against plain loops."""
import numpy as np
import pytest
import torch
from torch import nn

from iaseg.decision import (CalibrationData, DecisionRule, DecisionRuleError, collect_logits, confusion_from_cache,
                            flip_thresholds, sweep_confusions)

from tests.helpers.decision import reference_confusion, toy_data


def test_confusion_from_cache_matches_plain_loop():
    g = torch.Generator().manual_seed(3)
    z = torch.randint(-3, 4, (60, 4), generator=g).float() / 2  # ties included
    y = torch.randint(0, 4, (60,), generator=g)
    data = CalibrationData(z, y)
    for b in (torch.zeros(4), torch.tensor([0.0, 0.5, -0.5, 1.0]), torch.tensor([0.3, -0.7, 0.1, 0.0])):
        assert np.array_equal(confusion_from_cache(data, b).numpy(), reference_confusion(z, y, b))
    data.CHUNK_ELEMENTS = 7  # several chunks give the same matrix
    assert np.array_equal(confusion_from_cache(data, torch.tensor([0.0, 0.5, -0.5, 1.0])).numpy(),
                          reference_confusion(z, y, torch.tensor([0.0, 0.5, -0.5, 1.0])))


def test_sweep_confusions_match_exact_evaluation():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(300, 4, generator=g, dtype=torch.float64).float()  # no ties
    y = torch.randint(0, 4, (300,), generator=g)
    data = CalibrationData(z, y)
    data.CHUNK_ELEMENTS = 256
    b = torch.tensor([0.1, -0.2, 0.0, 0.3])
    values = {k: b[k] + torch.linspace(-2.013, 2.017, 9) for k in range(4)}
    sweeps = sweep_confusions(data, b, range(4), values)
    for k in range(4):
        t, labels = flip_thresholds(data, b, k)
        assert torch.equal(labels, y)
        for v in values[k]:
            trial = b.clone()
            trial[k] = v
            assert torch.equal(DecisionRule(trial, list("abcd")).decide(z.T[None, :, :, None])[0, :, 0] == k, v > t)
    for k in range(4):
        assert sweeps[k].shape == (9, 4, 4)
        for g_, v in enumerate(values[k]):
            trial = b.clone()
            trial[k] = v
            assert np.array_equal(sweeps[k][g_].numpy(), reference_confusion(z, y, trial)), (k, g_)


def test_calibration_cache_round_trip(tmp_path):
    data = toy_data(500)
    data.info["key"] = {"split": "val"}
    path = data.save(tmp_path / "c" / "rule.cache.pt")
    back = CalibrationData.load(path)
    assert torch.equal(back.logits, data.logits) and torch.equal(back.labels, data.labels)
    assert back.logits.dtype == torch.float16 and back.info == data.info
    (tmp_path / "junk.pt").write_bytes(b"nope")
    with pytest.raises(DecisionRuleError, match="junk.pt cannot be read"):
        CalibrationData.load(tmp_path / "junk.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(DecisionRuleError, match="other.pt is not an iaseg calibration cache"):
        CalibrationData.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="do not match"):
        CalibrationData(torch.zeros(4, 3), torch.zeros(5))


class _Loader(list):
    def __init__(self, batches, n):
        super().__init__(batches)
        self.dataset = range(n)


def test_collect_logits_keeps_labelled_pixels_and_subsamples_deterministically():
    g = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 3, (4, 8, 8), generator=g)
    labels[:, 0] = 255
    images = torch.rand(4, 3, 4, 4, generator=g)
    net = nn.Conv2d(3, 3, 1)  # logits at 4x4, labels at 8x8: upsampled like `iaseg evaluate`
    loader = _Loader([{"image": images[:2], "label": labels[:2]}, {"image": images[2:], "label": labels[2:]}], 4)
    data = collect_logits(net, loader, ("image",), 3, 255, "cpu", progress=False)
    mask = labels != 255
    with torch.no_grad():
        up = nn.functional.interpolate(net(images), size=(8, 8), mode="bilinear", align_corners=False)
    assert data.num_pixels == int(mask.sum()) == data.info["labelled_pixels"]
    assert torch.equal(data.labels.long(), labels[mask])
    assert torch.equal(data.logits, up.permute(0, 2, 3, 1)[mask].half())
    assert not data.info["subsampled"]
    # each pixel's image: the batches carry no paths here, so the names are numbered
    assert torch.equal(data.images.long(), torch.arange(4).view(4, 1, 1).expand(4, 8, 8)[mask])
    assert data.names == [f"image_{i:06d}" for i in range(4)]
    small = collect_logits(net, loader, ("image",), 3, 255, "cpu", max_pixels=50, seed=1, progress=False)
    again = collect_logits(net, loader, ("image",), 3, 255, "cpu", max_pixels=50, seed=1, progress=False)
    assert 0 < small.num_pixels <= 50 and small.info["subsampled"]
    assert torch.equal(small.logits, again.logits) and torch.equal(small.labels, again.labels)
    assert torch.equal(small.images, again.images) and small.images.shape == small.labels.shape
    bad = _Loader([{"image": images[:1], "label": torch.full((1, 8, 8), 7)}], 1)
    with pytest.raises(ValueError, match=r"class ids \[7\] outside 0..2"):
        collect_logits(net, bad, ("image",), 3, 255, "cpu", progress=False)
    empty = _Loader([{"image": images[:1], "label": torch.full((1, 8, 8), 255)}], 1)
    with pytest.raises(ValueError, match="no labelled pixels"):
        collect_logits(net, empty, ("image",), 3, 255, "cpu", progress=False)


def test_per_image_confusions_split_the_cache_matrix_by_image_and_pool_keeps_images_apart():
    from iaseg.decision.cache import per_image_confusions, pool

    from tests.helpers.decision import reference_confusion, toy_data

    parts = []
    for seed, names in ((0, ["S1_001.png", "S1_002.png", "S1_003.png"]), (1, ["S2_001.png", "S2_002.png"])):
        d = toy_data(3000, seed=seed)
        d.images = torch.arange(3000, dtype=torch.int32) % len(names)
        d.info["names"] = names
        parts.append(d)
    b = torch.tensor([0.0, 0.0, 0.0, 0.7, 0.4])
    data = pool(parts, ["a.pt", "b.pt"])
    assert data.names == ["part0/S1_001.png", "part0/S1_002.png", "part0/S1_003.png", "part1/S2_001.png",
                          "part1/S2_002.png"]
    assert data.info["parts"] == [{"source": "a.pt", "images": 3, "pixels": 3000},
                                  {"source": "b.pt", "images": 2, "pixels": 3000}]
    per = per_image_confusions(data, b)
    assert per.shape == (5, 5, 5) and torch.equal(per.sum(0), confusion_from_cache(data, b))
    for i in range(5):  # image 3 is pixel 0, 2, 4, ... of the second part
        part, j = (0, i) if i < 3 else (1, i - 3)
        sel = parts[part].images == j
        want = reference_confusion(parts[part].logits[sel].float(), parts[part].labels[sel].long(), b)
        assert np.array_equal(per[i].numpy(), want)
    with pytest.raises(ValueError, match="image indexes"):
        pool([toy_data(10)])
