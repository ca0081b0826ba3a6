"""Strict input checks: every bad-input case raises DatasetError naming the file, and
check_dataset collects all problems of a split."""
import numpy as np
import pytest
from PIL import Image

from iaseg.data import DatasetError, build_dataset, check_dataset
from iaseg.data.io import read_image, read_label

from tests.helpers.data import camvid_tree, truncate, write_image, write_label


def test_truncated_and_garbage_images(tmp_path):
    root = camvid_tree(tmp_path)
    truncate(root / "train/b.png")
    ds = build_dataset("camvid", root, "train")          # listing is fine, reading is not
    with pytest.raises(DatasetError, match=r"train/b.png: unreadable or truncated image"):
        ds[1]
    (root / "train/c.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match=r"train/c.png: unreadable or truncated image"):
        ds[2]
    truncate(root / "trainannot/a.png", 0.6)
    with pytest.raises(DatasetError, match=r"trainannot/a.png: unreadable or truncated label"):
        ds[0]


def test_missing_label_and_label_without_image(tmp_path):
    root = camvid_tree(tmp_path)
    (root / "trainannot/b.png").unlink()
    with pytest.raises(DatasetError, match=r"train/b.png: no label \(expected .*trainannot/b.png\)"):
        build_dataset("camvid", root, "train")
    write_label(root / "trainannot/b.png")
    write_label(root / "trainannot/orphan.png")
    with pytest.raises(DatasetError, match=r"trainannot/orphan.png: label without image"):
        build_dataset("camvid", root, "train")
    # strict=False keeps the complete pairs and the problems
    ds = build_dataset("camvid", root, "train", strict=False)
    assert len(ds) == 3 and len(ds.problems) == 1


def _twin_image(root):
    write_image(root / "train/b.jpg", seed=7)         # b.jpg next to b.png: both would take label b.png


def _twin_label(root):
    write_label(root / "trainannot/b.bmp", seed=7)


def _listed_twice(root):
    (root / "train.txt").write_text("/SegNet/train/a.png /SegNet/trainannot/a.png\n"
                                    "/SegNet/train/b.png /SegNet/trainannot/b.png\n"
                                    "/SegNet/train/a.png /SegNet/trainannot/a.png\n")


# (change to a clean a/b/c CamVid split, expected problems with {r} the root, pairs kept by the check:
# the first of two images with one stem, in sorted order, is kept, as in the folder dataset)
PAIRING = [
    (_twin_image, ["{r}/train/b.png: two images share the stem 'b' (also b.jpg); labels are paired by stem"], 3),
    (_twin_label, ["{r}/trainannot/b.png: two labels share the stem 'b' (also b.bmp); labels are paired by stem"], 3),
    (_listed_twice, ["{r}/train/a.png: listed twice (train.txt lines 1 and 3)"], 2),
]


@pytest.mark.parametrize("change, problems, pairs", PAIRING, ids=["image stem", "label stem", "list file"])
def test_camvid_pairing_problems(tmp_path, change, problems, pairs):
    root = camvid_tree(tmp_path)
    change(root)
    expected = [p.format(r=root) for p in problems]
    with pytest.raises(DatasetError) as info:
        build_dataset("camvid", root, "train")
    assert str(info.value).startswith(expected[0])
    report = check_dataset("camvid", root, "train")
    assert report.problems == expected and report.files == pairs and report.images == pairs


def test_size_mismatch(tmp_path):
    root = camvid_tree(tmp_path)
    write_label(root / "trainannot/a.png", h=20, w=32)
    with pytest.raises(DatasetError, match=r"trainannot/a.png: label size 32x20 differs from image a.png size 32x24"):
        build_dataset("camvid", root, "train")[0]


def test_label_values_outside_classes_and_void(tmp_path):
    root = camvid_tree(tmp_path)
    write_label(root / "trainannot/c.png", values=(0, 12, 200))
    with pytest.raises(DatasetError, match=r"trainannot/c.png: label values \[12, 200\] are neither classes nor void "
                                           r"\(allowed: 0..10 and void 11 for camvid\)"):
        build_dataset("camvid", root, "train")[2]
    write_label(root / "trainannot/c.png", values=(0, 11), mode="RGB")   # colour-coded label
    with pytest.raises(DatasetError, match=r"trainannot/c.png: label mode 'RGB' is not a single-channel id image"):
        build_dataset("camvid", root, "train")[2]


def test_palette_and_16bit_labels_are_read_as_ids(tmp_path):
    lab = np.array([[0, 5], [11, 3]], dtype=np.uint8)
    p = Image.frombytes("P", (2, 2), lab.tobytes())     # palette PNG: pixel values are indices
    p.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    p.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert np.array_equal(read_label(tmp_path / "p.png"), lab)
    Image.fromarray(lab.astype(np.uint16)).save(tmp_path / "i16.png")
    assert np.array_equal(read_label(tmp_path / "i16.png"), lab)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA"])
def test_convertible_images_become_rgb(tmp_path, mode):
    rgb = write_image(tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg", mode="RGB")
    src = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    src.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert np.array_equal(out, np.asarray(src.convert("RGB")))
    if mode == "L":
        assert np.array_equal(out[..., 0], out[..., 2])
    if mode == "RGBA":
        assert np.array_equal(out, rgb)                    # alpha dropped, colours kept


def test_non_convertible_image_modes(tmp_path):
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DatasetError, match=r"deep.png: image mode 'I;16' is not RGB and cannot be converted"):
        read_image(tmp_path / "deep.png")
    Image.fromarray(np.zeros((4, 4), dtype=np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DatasetError, match=r"float.tif: image mode 'F'"):
        read_image(tmp_path / "float.tif")
    with pytest.raises(DatasetError, match=r"nothere.png: image file not found"):
        read_image(tmp_path / "nothere.png")


def test_empty_split_and_unknown_layouts(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "trainannot").mkdir()
    with pytest.raises(DatasetError, match=r"train: empty split: no image/label pairs found"):
        build_dataset("camvid", tmp_path, "train")
    with pytest.raises(DatasetError, match=r"not a CamVid \(SegNet\) layout for split 'val': no val/ and no valannot/ "
                                           r"folder \(expected .*; found train/, trainannot/\)"):
        build_dataset("camvid", tmp_path, "val")
    with pytest.raises(DatasetError, match=r"missing: dataset root not found \(camvid expects"):
        build_dataset("camvid", tmp_path / "missing", "train")
    with pytest.raises(DatasetError, match=r"no root folder given"):
        build_dataset("camvid", None, "train")
    with pytest.raises(DatasetError, match="not a folder dataset layout"):
        build_dataset("folder", tmp_path, None, description="camvid")


def test_check_dataset_collects_every_problem(tmp_path):
    root = camvid_tree(tmp_path, names=("a", "b", "c", "d", "e", "f", "g"))
    truncate(root / "train/a.png")
    (root / "trainannot/b.png").unlink()
    write_label(root / "trainannot/orphan.png")
    write_label(root / "trainannot/c.png", h=10)
    write_label(root / "trainannot/d.png", values=(0, 99))
    Image.fromarray(np.zeros((24, 32), dtype=np.uint16) + 300).save(root / "train/e.png")
    write_image(root / "train/f.png", mode="RGBA")          # fine: converted
    report = check_dataset("camvid", root, "train")
    assert not report.ok
    text = "\n".join(report.problems)
    for name, what in [("train/a.png", "truncated"), ("train/b.png", "no label"), ("orphan.png", "without image"),
                       ("trainannot/c.png", "differs from image"), ("trainannot/d.png", "[99]"),
                       ("train/e.png", "cannot be converted")]:
        assert any(name in p and what in p for p in report.problems), (name, text)
    assert len(report.problems) == 6
    assert report.files == 6 and report.images == 2          # f and g read fine
    assert report.sizes == {(24, 32): 2}
    assert report.class_pixels.sum() + report.void_pixels == 2 * 24 * 32
    assert set(np.nonzero(report.class_pixels)[0]) == {0, 3}
    summary = report.summary()
    assert "images: 2 read ok of 6" in summary and "void" in summary


def test_check_dataset_layout_problems_and_clean_split(tmp_path, camvid_root):
    report = check_dataset("camvid", tmp_path, "train")
    assert len(report.problems) == 1 and "not a CamVid" in report.problems[0]
    (tmp_path / "x/train").mkdir(parents=True)
    (tmp_path / "x/trainannot").mkdir()
    report = check_dataset("camvid", tmp_path / "x", "train")
    assert report.problems == [f"{tmp_path / 'x/train'}: empty split: no image/label pairs found"]
    report = check_dataset("camvid", camvid_root, "val", limit=5)
    assert report.ok and report.files == 101 and report.images == 5
    assert report.class_shares().sum() + report.void_pixels / report.total_pixels == pytest.approx(1.0)
    report = check_dataset("folder", tmp_path, None)
    assert "needs a description" in report.problems[0]


def test_count_pixels_with_any_ignore_index():
    from iaseg.data.checks import count_pixels

    label = np.array([[0, 1, 1], [255, 2, 255]])
    counts, void = count_pixels(label, 3, 255)
    assert counts.tolist() == [1, 2, 1] and void == 2
    counts, void = count_pixels(np.where(label == 255, -1, label), 3, -1)
    assert counts.tolist() == [1, 2, 1] and void == 2
