"""Pixel statistics, ENet and median-frequency weights, the JSON cache, and a check against the
CamVid numbers in shared/data/camvid/README.md."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.losses import (class_frequencies, compute_class_weights, count_class_pixels, dataset_class_stats,
                          enet_weights, median_frequency_weights)


IGN = 255
A = torch.tensor([[0, 0, 1], [1, 255, 255]])          # 6 px: class0 2, class1 2, void 2
B = np.array([[2, 2], [0, 255]], dtype=np.uint8)      # 4 px: class0 1, class2 2, void 1


def test_count_class_pixels_by_hand():
    s = count_class_pixels([A, B], num_classes=4, ignore_index=IGN)
    assert s == {"counts": [3, 2, 2, 0], "void": 3, "total": 10, "images": 2,
                 "image_pixels_with_class": [10, 6, 4, 0], "image_labelled_pixels_with_class": [7, 4, 3, 0]}


def test_count_class_pixels_accepts_item_kinds_and_batches():
    expected = count_class_pixels([A, B], 4, IGN)
    items = [{"label": A, "image": torch.zeros(3, 2, 3)}, (None, Image.fromarray(B))]
    assert count_class_pixels(items, 4, IGN) == expected
    batch = torch.stack([A[:, :2], torch.as_tensor(B, dtype=torch.long)])       # N x H x W = 2 images
    s = count_class_pixels([batch], 4, IGN)
    assert s["images"] == 2 and s["total"] == 8

    class DS(torch.utils.data.Dataset):   # map-style, no __iter__: indexed
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"label": [A, torch.as_tensor(B)][i]}

    assert count_class_pixels(DS(), 4, IGN, progress=True) == expected


def test_count_class_pixels_negative_ignore_index():
    s = count_class_pixels([torch.where(A == IGN, -1, A), B.astype(np.int16) * (B != IGN) - (B == IGN)], 4, -1)
    assert s == count_class_pixels([A, B], 4, IGN)


def test_count_class_pixels_rejects_bad_values():
    with pytest.raises(ValueError, match=r"label map 1: values \[4, 7\] are outside \[0, 4\)"):
        count_class_pixels([A, torch.tensor([[4, 7, 0]])], 4, IGN)
    with pytest.raises(ValueError, match=r"values \[-1\]"):
        count_class_pixels([torch.tensor([[-1, 0]])], 4, IGN)
    with pytest.raises(ValueError, match="ignore_index 2 is a class id"):
        count_class_pixels([A], 4, 2)
    with pytest.raises(ValueError, match="integer class ids"):
        count_class_pixels([A.float()], 4, IGN)
    with pytest.raises(ValueError, match="without a 'label' entry"):
        count_class_pixels([{"mask": A}], 4, IGN)


def test_class_frequencies_void_in_denominator_by_default():
    s = count_class_pixels([A, B], 4, IGN)
    assert class_frequencies(s) == [0.3, 0.2, 0.2, 0.0]
    assert class_frequencies(s, include_void=False) == pytest.approx([3 / 7, 2 / 7, 2 / 7, 0.0])
    with pytest.raises(ValueError, match="no labelled pixels"):
        class_frequencies(count_class_pixels([], 4, IGN))


def test_enet_weights():
    w = enet_weights([0.3, 0.0, 1.0])
    torch.testing.assert_close(w, torch.tensor([1 / math.log(1.32), 1 / math.log(1.02), 1 / math.log(2.02)]))
    torch.testing.assert_close(enet_weights(torch.tensor([0.5]), a=1.12), torch.tensor([1 / math.log(1.62)]))
    with pytest.raises(ValueError, match="a must be > 1"):
        enet_weights([0.1], a=1.0)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        enet_weights([1.5])


def test_median_frequency_weights_by_hand_and_unseen_class():
    s = count_class_pixels([A, B], 4, IGN)
    # freq = counts / pixels of the images containing the class: [0.3, 2/6, 0.5]; median 2/6
    with pytest.warns(UserWarning, match=r"classes \[3\] never appear"):
        w = median_frequency_weights(s)
    torch.testing.assert_close(w, torch.tensor([(1 / 3) / 0.3, 1.0, (1 / 3) / 0.5, 0.0]))
    s3 = count_class_pixels([A, B], 3, IGN)
    # labelled pixels only: [3/7, 2/4, 2/3], median 1/2
    torch.testing.assert_close(median_frequency_weights(s3, include_void=False),
                               torch.tensor([0.5 / (3 / 7), 1.0, 0.5 / (2 / 3)]))


def test_compute_class_weights_methods():
    s = count_class_pixels([A, B], 3, IGN)
    torch.testing.assert_close(compute_class_weights(s), enet_weights(class_frequencies(s)))
    torch.testing.assert_close(compute_class_weights(s, "enet", a=1.12, include_void=False),
                               enet_weights(class_frequencies(s, include_void=False), a=1.12))
    torch.testing.assert_close(compute_class_weights(s, "median"), median_frequency_weights(s))
    torch.testing.assert_close(compute_class_weights(s, "none"), torch.ones(3))
    with pytest.raises(ValueError, match=r"unknown class-weight method 'inverse'; choose one of \['enet', 'median', 'none'\]"):
        compute_class_weights(s, "inverse")


class CountingDataset(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.labels, self.reads = labels, 0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.reads += 1
        return {"label": self.labels[i]}


def test_dataset_class_stats_cache(tmp_path):
    ds = CountingDataset([A, torch.as_tensor(B)])
    cache = tmp_path / "run" / "class_stats.json"
    key = {"dataset": "toy", "root": "/data/toy", "split": "train", "size": len(ds)}
    s = dataset_class_stats(ds, 4, IGN, cache=cache, cache_key=key, progress=False)
    assert s == count_class_pixels([A, B], 4, IGN) and ds.reads == 2
    on_disk = json.loads(cache.read_text())
    assert on_disk["key"] == {**key, "num_classes": 4, "ignore_index": IGN} and on_disk["stats"] == s
    assert not list(cache.parent.glob("*.tmp"))
    # same key: read from the cache, the dataset is not touched
    assert dataset_class_stats(ds, 4, IGN, cache=cache, cache_key=dict(key), progress=False) == s and ds.reads == 2
    # another split, or another num_classes: recomputed and rewritten
    dataset_class_stats(ds, 4, IGN, cache=cache, cache_key={**key, "split": "val"}, progress=False)
    assert ds.reads == 4 and json.loads(cache.read_text())["key"]["split"] == "val"
    s3 = dataset_class_stats(ds, 3, IGN, cache=cache, cache_key={**key, "split": "val"}, progress=False)
    assert len(s3["counts"]) == 3 and ds.reads == 6
    # a corrupt cache is recomputed with a warning
    cache.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        assert dataset_class_stats(ds, 3, IGN, cache=cache, cache_key=key, progress=False) == s3
    # no cache: just counts
    assert dataset_class_stats(ds, 4, IGN, cache=None, progress=False) == s


# ENet list (void excluded) and median list from shared/data/camvid/README.md.
README_ENET = [5.6035, 4.2953, 33.5736, 3.3355, 15.4856, 8.7387, 31.5420, 32.0120, 12.8288, 38.0141, 43.9074]
README_MEDIAN = [0.2793, 0.2017, 4.7865, 0.1490, 1.0000, 0.4217, 3.8467, 1.9736, 0.7889, 6.3747, 8.8587]


def test_camvid_weights_match_readme(camvid_root: Path):
    files = sorted((camvid_root / "trainannot").glob("*.png"))
    assert len(files) == 367
    stats = count_class_pixels((np.asarray(Image.open(f)) for f in files), num_classes=11, ignore_index=11)
    assert stats["counts"][0] == 10_682_767 and stats["void"] == 2_503_995 and stats["total"] == 367 * 360 * 480
    enet = compute_class_weights(stats, "enet", include_void=False)
    torch.testing.assert_close(enet, torch.tensor(README_ENET), rtol=0, atol=1e-3)
    # the README's median list uses all pixels of the images containing a class (void included)
    median = compute_class_weights(stats, "median")
    torch.testing.assert_close(median, torch.tensor(README_MEDIAN), rtol=0, atol=1e-3)
    # the authors' convention (void in the denominator): spec section 6.1 recomputed these as
    # "about [5.79, 4.44, 34.0, 3.45, 15.9, 9.02, 32.0, 32.5, 13.2, 38.4, 44.1]"
    assert sum(class_frequencies(stats)) == pytest.approx(1 - 2_503_995 / stats["total"])
    authors = compute_class_weights(stats, "enet")
    spec = torch.tensor([5.79, 4.44, 34.0, 3.45, 15.9, 9.02, 32.0, 32.5, 13.2, 38.4, 44.1])
    torch.testing.assert_close(authors, spec, rtol=3e-3, atol=0)
