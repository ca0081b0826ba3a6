"""Datasets: CamVid (real files), Cityscapes (labelIds -> trainIds), folder datasets, build_dataset."""
import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.data import DatasetError, build_dataset, dataset_options, default_split, load_description
from iaseg.data.io import nearest_index, resize_label

from tests.helpers.data import camvid_tree, write_image, write_label


# cityscapesScripts labels.py: id -> trainId (255 = ignored in evaluation); license plate (-1) never
# appears in label PNGs.
OFFICIAL_CITYSCAPES = {
    0: 255, 1: 255, 2: 255, 3: 255, 4: 255, 5: 255, 6: 255, 7: 0, 8: 1, 9: 255, 10: 255, 11: 2, 12: 3,
    13: 4, 14: 255, 15: 255, 16: 255, 17: 5, 18: 255, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 29: 255, 30: 255, 31: 16, 32: 17, 33: 18,
}


def _check_item(item, h, w):
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, h, w)
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (h, w)
    assert isinstance(item["path"], str)


# -- CamVid ---------------------------------------------------------------------------------------

def test_camvid_real_files(camvid_root):
    ds = build_dataset("camvid", camvid_root, "val")
    assert len(ds) == 101 and ds.description.name == "camvid"
    item = ds[0]
    _check_item(item, 360, 480)
    assert item["path"].endswith("val/0016E5_07959.png")
    raw_img = np.array(Image.open(item["path"]))
    raw_lab = np.array(Image.open(camvid_root / "valannot" / "0016E5_07959.png"))
    assert torch.equal(item["image"], torch.from_numpy(raw_img).permute(2, 0, 1).float() / 255)
    assert torch.equal(item["label"], torch.from_numpy(raw_lab.astype(np.int64)))
    assert int(item["label"].max()) <= 11
    assert ds[-1]["path"] == str(ds.pairs[-1].image)
    with pytest.raises(IndexError):
        ds[101]


def test_camvid_resize_and_spatial(camvid_root):
    ds = build_dataset("camvid", camvid_root, "train", size=(184, 240), spatial_size=(360, 480))
    item = ds[3]
    _check_item(item, 184, 240)
    assert item["spatial"].shape == (3, 360, 480)
    native = build_dataset("camvid", camvid_root, "train")[3]
    assert torch.equal(item["spatial"], native["image"])          # spatial = full resolution
    assert torch.equal(item["label"], native["label"][nearest_index(360, 184)][:, nearest_index(480, 240)])
    # bilinear (antialiased) downscale keeps the mean colour
    assert abs(float(item["image"].mean()) - float(native["image"].mean())) < 0.01
    assert build_dataset("camvid", camvid_root, "train", spatial_size="native")[0]["spatial"].shape == (3, 360, 480)


def test_camvid_list_file_with_foreign_prefix(tmp_path):
    root = camvid_tree(tmp_path, "train", names=("a", "b", "c"))
    (root / "train.txt").write_text("/SegNet/CamVid/train/c.png /SegNet/CamVid/trainannot/c.png\n"
                                    "C:\\data\\train\\a.png C:\\data\\trainannot\\a.png\n\n")
    ds = build_dataset("camvid", root, "train")
    assert [p.image.name for p in ds.pairs] == ["c.png", "a.png"]      # list order, b not listed
    assert [p.image.name for p in build_dataset("camvid", root, "train", list_file=False).pairs] == ["a.png", "b.png", "c.png"]
    (root / "train.txt").write_text("/x/train/zz.png /x/trainannot/zz.png\n")
    with pytest.raises(DatasetError, match=r"zz.png: image listed in train.txt line 1 not found"):
        build_dataset("camvid", root, "train")


def test_camvid_list_file_matches_folder(camvid_root):
    listed = build_dataset("camvid", camvid_root, "val")
    folder = build_dataset("camvid", camvid_root, "val", list_file=False)
    assert sorted(listed.pairs) == sorted(folder.pairs)


# -- Cityscapes -----------------------------------------------------------------------------------

def test_cityscapes_table_is_the_official_one():
    desc = load_description("cityscapes")
    assert desc.label_map == OFFICIAL_CITYSCAPES
    assert desc.num_classes == 19 and desc.ignore_index == 255
    # trainIds in class order
    for label_id, train_id in OFFICIAL_CITYSCAPES.items():
        if train_id != 255:
            assert desc.classes[train_id] in {"road", "sidewalk", "building", "wall", "fence", "pole",
                                              "traffic light", "traffic sign", "vegetation", "terrain", "sky",
                                              "person", "rider", "car", "truck", "bus", "train",
                                              "motorcycle", "bicycle"}
    assert [desc.classes[OFFICIAL_CITYSCAPES[i]] for i in (7, 26, 33)] == ["road", "car", "bicycle"]


def test_cityscapes_label_ids_mapped_on_the_fly(cityscapes_sample_root):
    ds = build_dataset("cityscapes", cityscapes_sample_root, "val")
    assert len(ds) == 1 and ds.pairs[0].kind == "labelIds"
    item = ds[0]
    _check_item(item, 128, 256)
    base = cityscapes_sample_root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine"
    ids = np.asarray(Image.open(f"{base}_labelIds.png"))
    expected = np.vectorize(OFFICIAL_CITYSCAPES.get)(ids)
    assert np.array_equal(item["label"].numpy(), expected)              # exactly the official table
    shipped = np.asarray(Image.open(f"{base}_labelTrainIds.png"))
    agree = (item["label"].numpy() == shipped).mean()
    assert agree >= 0.99, agree                                          # README: 99.77%
    trainids = build_dataset("cityscapes", cityscapes_sample_root, "val", label_type="labelTrainIds")
    assert trainids.pairs[0].kind == "labelTrainIds"
    assert np.array_equal(trainids[0]["label"].numpy(), shipped)


def test_cityscapes_layout_and_bad_ids(tmp_path, cityscapes_sample_root):
    with pytest.raises(DatasetError, match="not a Cityscapes layout"):
        build_dataset("cityscapes", tmp_path, "val")
    img = tmp_path / "leftImg8bit/train/ulm/ulm_000001_000019_leftImg8bit.png"
    write_image(img)
    lab = tmp_path / "gtFine/train/ulm/ulm_000001_000019_gtFine_labelIds.png"
    write_label(lab, values=(7, 26, 40))                     # 40 is no Cityscapes id
    ds = build_dataset("cityscapes", tmp_path, "train")
    with pytest.raises(DatasetError, match=r"ulm_000001_000019_gtFine_labelIds.png: label values \[40\]"):
        ds[0]
    with pytest.raises(DatasetError, match="split folder not found"):
        build_dataset("cityscapes", tmp_path, "val")
    # only trainIds present: accepted in 'auto'; an orphan label is reported
    lab.unlink()
    write_label(tmp_path / "gtFine/train/ulm/ulm_000001_000019_gtFine_labelTrainIds.png", values=(0, 13, 255))
    assert build_dataset("cityscapes", tmp_path, "train").pairs[0].kind == "labelTrainIds"
    with pytest.raises(DatasetError, match="no label"):
        build_dataset("cityscapes", tmp_path, "train", label_type="labelIds")
    write_label(tmp_path / "gtFine/train/ulm/ulm_000002_000019_gtFine_labelIds.png", values=(7,))
    with pytest.raises(DatasetError, match="ulm_000002_000019_gtFine_labelIds.png: label without image"):
        build_dataset("cityscapes", tmp_path, "train")


# -- folder datasets ------------------------------------------------------------------------------

DESC = """name: tiny
classes: [background, person, sign]
palette: [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
ignore_index: 255
groups:
  low: [background]
  high: [person, sign]
"""


def test_folder_dataset_layouts(tmp_path):
    (tmp_path / "desc.yaml").write_text(DESC)
    flat = tmp_path / "flat"
    write_image(flat / "images/sub/x.jpg")
    write_label(flat / "labels/sub/x.png", values=(0, 2, 255))
    ds = build_dataset("folder", flat, None, description=tmp_path / "desc.yaml")
    item = ds[0]
    _check_item(item, 24, 32)
    assert set(item["label"].unique().tolist()) <= {0, 2, 255}
    assert ds.description.name == "tiny" and ds.description.group_indices() == [[0], [1, 2]]
    # per-split layouts, label suffix, description.yaml in the root
    write_image(tmp_path / "s/train/images/y.png")
    write_label(tmp_path / "s/train/labels/y_mask.png", values=(1,))
    (tmp_path / "s/description.yaml").write_text(DESC)
    ds = build_dataset("folder", tmp_path / "s", "train", label_suffix="_mask")
    assert int(ds[0]["label"].unique()) == 1
    write_image(tmp_path / "t/images/val/z.png")
    write_label(tmp_path / "t/labels/val/z.png", values=(0,))
    assert len(build_dataset("folder", tmp_path / "t", "val", description=tmp_path / "desc.yaml")) == 1
    with pytest.raises(DatasetError, match="needs a description"):
        build_dataset("folder", flat, None)
    with pytest.raises(DatasetError, match="use split=None"):
        build_dataset("folder", flat, "train", description=tmp_path / "desc.yaml")
    with pytest.raises(DatasetError, match=r"label values \[7\]"):
        write_label(flat / "labels/sub/x.png", values=(7,))
        build_dataset("folder", flat, None, description=tmp_path / "desc.yaml")[0]


def test_folder_dataset_label_map(tmp_path):
    (tmp_path / "desc.yaml").write_text(DESC + "label_map: {0: 0, 10: 1, 20: 2, 99: 255}\n")
    write_image(tmp_path / "images/a.png")
    write_label(tmp_path / "labels/a.png", values=(0, 10, 20, 99))
    ds = build_dataset("folder", tmp_path, None, description=tmp_path / "desc.yaml")
    assert set(ds[0]["label"].unique().tolist()) == {0, 1, 2, 255}


# -- build_dataset --------------------------------------------------------------------------------

def test_build_dataset_errors_and_options(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'kitti'; choose one of camvid, cityscapes, folder, synthetic"):
        build_dataset("kitti", tmp_path, "train")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\] for dataset 'camvid'"):
        build_dataset("camvid", tmp_path, "train", colour=True)
    with pytest.raises(ValueError, match="size must be"):
        build_dataset("synthetic", None, "train", size=(0, 5))
    with pytest.raises(ValueError, match="spatial_size"):
        build_dataset("synthetic", None, "train", spatial_size="full")
    assert "list_file" in dataset_options("camvid") and "seed" in dataset_options("synthetic")
    assert default_split("folder") is None and default_split("CamVid") == "train"
    assert build_dataset("CamVid", camvid_tree(tmp_path / "c"), "train").description.name == "camvid"


def test_resize_label_is_nearest():
    lab = np.arange(12).reshape(3, 4)
    assert resize_label(lab, (6, 8)).tolist()[0] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert set(np.unique(resize_label(lab, (2, 2)))) <= set(range(12))
    assert resize_label(lab, None) is lab
