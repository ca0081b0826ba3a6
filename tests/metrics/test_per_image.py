import os

import numpy as np
import pytest
import torch

from iaseg.metrics import ConfusionMatrix
from iaseg.data.sequences import frame_key
from iaseg.metrics.per_image import (PerImageConfusion, PerImageCounts, load_per_image, save_per_image,
                                     sequence_blocks)

CLASSES = ["a", "b", "c", "d"]


def pixel_loop_confusion(pred, target, c, ignore):
    """Reference: a plain loop over the pixels of one image."""
    m = np.zeros((c, c), np.int64)
    for gt, p in zip(target.reshape(-1).tolist(), pred.reshape(-1).tolist()):
        if gt != ignore:
            m[gt, p] += 1
    return m


def random_batches(seed=0, c=4, ignore=255, batches=3):
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(batches):
        n = 2 + b
        target = torch.randint(0, c, (n, 6, 7), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.25] = ignore
        pred = torch.randint(0, c, (n, 6, 7), generator=g)
        names = [f"/data/val/0016E5_{100 * b + i:05d}.png" for i in range(n)]
        out.append((pred, target, names))
    return out


# -- accumulator --------------------------------------------------------------------------------

def test_per_image_counts_match_numpy_and_sum_to_the_confusion_matrix():
    c, ignore = 4, 255
    acc, cm = PerImageConfusion(c, ignore), ConfusionMatrix(c, ignore)
    refs, names = [], []
    for pred, target, batch_names in random_batches(c=c, ignore=ignore):
        acc.update(pred, target, batch_names)
        cm.update(pred, target)
        refs += [pixel_loop_confusion(pred[i], target[i], c, ignore) for i in range(pred.shape[0])]
        names += [os.path.basename(n) for n in batch_names]
    counts = acc.counts
    assert counts.shape == (9, c, c) and counts.dtype == np.int64 and len(acc) == 9
    assert acc.names == names  # paths reduced to file names, update order kept
    np.testing.assert_array_equal(counts, np.stack(refs))
    np.testing.assert_array_equal(counts.sum(0), cm.matrix.numpy())
    # ignored pixels are nowhere: the counts hold exactly the non-ignored pixels
    total_valid = sum(int((t != ignore).sum()) for _, t, _ in random_batches(c=c, ignore=ignore))
    assert counts.sum() == total_valid


def test_per_image_accumulator_validates_like_the_confusion_matrix():
    acc = PerImageConfusion(3, ignore_index=255)
    assert acc.counts.shape == (0, 3, 3)
    with pytest.raises(ValueError, match="2 image names for a batch"):
        acc.update(torch.zeros(3, 2, 2, dtype=torch.long), torch.zeros(3, 2, 2, dtype=torch.long), ["x", "y"])
    with pytest.raises(ValueError, match="outside the class ids"):
        acc.update(torch.full((1, 2, 2), 3), torch.zeros(1, 2, 2, dtype=torch.long), ["x"])
    with pytest.raises(ValueError, match="is a class id"):
        PerImageConfusion(3, ignore_index=1)


# -- file -----------------------------------------------------------------------------------------

def test_npz_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50_000, size=(5, 4, 4))
    names = [f"Seq05VD_f{i:05d}.png" for i in range(5)]
    path = save_per_image(tmp_path / "sub" / "per_image.npz", names, counts, CLASSES, 255)
    assert path == tmp_path / "sub" / "per_image.npz"
    assert os.listdir(path.parent) == ["per_image.npz"]  # written atomically: no temp file left
    back = load_per_image(path)
    assert isinstance(back, PerImageCounts)
    assert back.names == tuple(names) and back.classes == tuple(CLASSES) and back.ignore_index == 255
    assert back.counts.dtype == np.int64
    np.testing.assert_array_equal(back.counts, counts)
    np.testing.assert_array_equal(back.total, counts.sum(0))
    with np.load(path, allow_pickle=False) as raw:  # plain arrays, no pickles; compact dtype
        assert raw["counts"].dtype == np.uint32 and int(raw["version"]) == 1


def test_npz_keeps_no_ignore_index_and_large_counts(tmp_path):
    counts = np.zeros((1, 4, 4), np.int64)
    counts[0, 1, 2] = 2 ** 33 + 5
    back = load_per_image(save_per_image(tmp_path / "x.npz", ["img"], counts, CLASSES, None))
    assert back.ignore_index is None
    np.testing.assert_array_equal(back.counts, counts)


def test_npz_file_size_for_camvid_val_is_small(tmp_path):
    # CamVid val: 101 images of 360 x 480, 11 classes; a confusion matrix per image is mostly
    # diagonal with some small off-diagonal counts (the real file measured 17,144 bytes)
    rng = np.random.default_rng(0)
    c, n = 11, 101
    counts = np.where(rng.random((n, c, c)) < 0.5, rng.geometric(1e-3, (n, c, c)), 0)
    counts[:, range(c), range(c)] = rng.integers(0, 40_000, (n, c))
    names = [f"0016E5_{7959 + 2 * i:05d}.png" for i in range(n)]
    path = save_per_image(tmp_path / "per_image.npz", names, counts, [f"class{i}" for i in range(c)], 11)
    size = path.stat().st_size
    assert size < 4 * n * c * c  # smaller than the raw uint32 counts alone (48,884 bytes)
    np.testing.assert_array_equal(load_per_image(path).counts, counts)


def test_save_and_load_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(N, 4, 4\)"):
        save_per_image(tmp_path / "x.npz", ["a"], np.zeros((1, 3, 3)), CLASSES, None)
    with pytest.raises(ValueError, match="2 image names for 1"):
        save_per_image(tmp_path / "x.npz", ["a", "b"], np.zeros((1, 4, 4)), CLASSES, None)
    with pytest.raises(ValueError, match="not unique"):
        save_per_image(tmp_path / "x.npz", ["a", "a"], np.zeros((2, 4, 4)), CLASSES, None)
    with pytest.raises(ValueError, match="non-negative"):
        save_per_image(tmp_path / "x.npz", ["a"], -np.ones((1, 4, 4)), CLASSES, None)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable"):
        load_per_image(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", counts=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz: not an iaseg per-image"):
        load_per_image(tmp_path / "other.npz")
    path = save_per_image(tmp_path / "v.npz", ["a"], np.zeros((1, 4, 4)), CLASSES, None)
    with np.load(path) as raw:
        fields = {k: raw[k] for k in raw.files}
    np.savez(tmp_path / "v2.npz", **{**fields, "version": np.array(2)})
    with pytest.raises(ValueError, match="version 2"):
        load_per_image(tmp_path / "v2.npz")


# -- sequences and blocks ---------------------------------------------------------------------------

def test_frame_key():
    assert frame_key("0016E5_07959.png") == ("0016E5", 7959)
    assert frame_key("/x/y/Seq05VD_f00030.png") == ("Seq05VD", 30)
    assert frame_key("0001TP_006690") == ("0001TP", 6690)
    assert frame_key("aachen_000000_000019_leftImg8bit.png") is None
    assert frame_key("image12.png") is None


def test_blocks_follow_frames_and_never_cross_sequences():
    names = ([f"0016E5_{f:05d}.png" for f in range(7959, 7959 + 2 * 23, 2)]
             + [f"Seq05VD_f{f:05d}.png" for f in range(0, 30 * 7, 30)]
             + [f"0001TP_{f:06d}.png" for f in range(6690, 6690 + 30 * 12, 30)])
    order = np.random.default_rng(0).permutation(len(names))
    shuffled = [names[i] for i in order]
    blocks = sequence_blocks(shuffled, block_len=5)
    flat = np.concatenate(blocks)
    assert sorted(flat.tolist()) == list(range(len(names)))  # every image exactly once
    for block in blocks:
        keys = [frame_key(shuffled[i]) for i in block]
        assert len({s for s, _ in keys}) == 1  # one sequence per block
        frames = [f for _, f in keys]
        assert frames == sorted(frames) and 1 <= len(block) <= 5
    sizes = {s: [len(b) for b in blocks if frame_key(shuffled[b[0]])[0] == s] for s in ("0016E5", "Seq05VD", "0001TP")}
    assert sizes == {"0016E5": [5, 5, 5, 5, 3], "Seq05VD": [5, 2], "0001TP": [5, 5, 2]}
    # consecutive blocks of a sequence continue its frames
    seq = [shuffled[i] for b in blocks for i in b if shuffled[i].startswith("0016E5")]
    assert seq == names[:23]


def test_names_without_the_frame_pattern_form_one_sequence_in_given_order():
    names = ["zurich.png", "aachen_000000_000019_leftImg8bit.png", "img_b_x.png", "bremen-1.png", "c.png"]
    blocks = sequence_blocks(names, block_len=2)
    assert [b.tolist() for b in blocks] == [[0, 1], [2, 3], [4]]
    mixed = ["other.png", "0016E5_00002.png", "0016E5_00001.png", "more.png"]
    assert [b.tolist() for b in sequence_blocks(mixed, block_len=10)] == [[2, 1], [0, 3]]
    with pytest.raises(ValueError, match="block_len"):
        sequence_blocks(names, block_len=0)
