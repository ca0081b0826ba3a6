"""Folder datasets with colour-coded labels (label_format='rgb') and convert_rgb_labels."""
import numpy as np
import pytest
from PIL import Image

from iaseg.data import build_dataset
from iaseg.data.errors import DatasetError
from iaseg.data.folder import convert_rgb_labels

from tests.helpers.data import COLOUR_DESC as DESC, write_colour_label, write_image


def test_rgb_labels_through_the_description(tmp_path):
    (tmp_path / "description.yaml").write_text(DESC)
    write_image(tmp_path / "images/a.jpg")
    write_image(tmp_path / "images/sub/b.png", seed=1)
    expected = {"a": write_colour_label(tmp_path / "labels/a.png"),
                "b": write_colour_label(tmp_path / "labels/sub/b.png", seed=1)}
    ds = build_dataset("folder", tmp_path, None, label_format="rgb")
    for i, key in enumerate(("a", "b")):
        _, label, _ = ds.read(i)
        assert np.array_equal(label, expected[key])
    item = build_dataset("folder", tmp_path, None, size=(12, 16), label_format="rgb")[0]
    assert item["label"].shape == (12, 16) and set(item["label"].unique().tolist()) <= {0, 1, 2, 255}
    # the same files read as ids are refused (3-channel), as before
    with pytest.raises(DatasetError, match="is not a single-channel id image"):
        build_dataset("folder", tmp_path, None)[0]


def test_rgb_label_errors(tmp_path):
    (tmp_path / "description.yaml").write_text(DESC)
    write_image(tmp_path / "images/a.png")
    write_colour_label(tmp_path / "labels/a.png")
    with pytest.raises(DatasetError) as e:
        build_dataset("folder", tmp_path, None, label_format="RGB")
    assert str(e.value) == "label_format must be one of ['ids', 'rgb'], got 'RGB'"
    rgb = np.asarray(Image.open(tmp_path / "labels/a.png")).copy()
    rgb[3, 4] = (12, 34, 56)
    Image.fromarray(rgb).save(tmp_path / "labels/a.png")
    with pytest.raises(DatasetError) as e:
        build_dataset("folder", tmp_path, None, label_format="rgb")[0]
    assert str(e.value) == (f"{tmp_path / 'labels/a.png'}: unknown label colour [12, 34, 56] at x=4, y=3 (first of 1 "
                            "pixels whose colour is neither in the palette of tiny nor its void colour [0, 0, 0])")


def test_convert_rgb_labels_writes_ids_the_folder_dataset_reads(tmp_path):
    (tmp_path / "description.yaml").write_text(DESC)
    expected = {"a": write_colour_label(tmp_path / "rgb/a.png"),
                "sub/b": write_colour_label(tmp_path / "rgb/sub/b.png", seed=1)}
    bad = tmp_path / "rgb/c.png"
    Image.fromarray(np.full((4, 4, 3), 7, dtype=np.uint8)).save(bad)
    written, problems = convert_rgb_labels(tmp_path / "rgb", tmp_path / "data/labels", tmp_path / "description.yaml")
    assert sorted(p.relative_to(tmp_path / "data/labels").as_posix() for p in written) == ["a.png", "sub/b.png"]
    assert problems == [f"{bad}: unknown label colour [7, 7, 7] at x=0, y=0 (first of 16 pixels whose colour is "
                        "neither in the palette of tiny nor its void colour [0, 0, 0])"]
    write_image(tmp_path / "data/images/a.png")
    write_image(tmp_path / "data/images/sub/b.png", seed=1)
    ds = build_dataset("folder", tmp_path / "data", None, description=tmp_path / "description.yaml")
    for i, key in enumerate(("a", "sub/b")):
        assert np.array_equal(ds.read(i)[1], expected[key])
    with pytest.raises(DatasetError, match="the output folder is the input folder"):
        convert_rgb_labels(tmp_path / "rgb", tmp_path / "rgb", tmp_path / "description.yaml")
