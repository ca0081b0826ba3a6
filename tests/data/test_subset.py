"""data/subset.py: --max-images (seeded random draw) and --images (named) subsets."""
import numpy as np
import pytest

from iaseg.data import DatasetError, build_dataset
from iaseg.data.subset import ImageSubset, choose_images, describe_choice, read_image_list, subset

from tests.helpers.data import camvid_tree

NAMES = ("0001TP_a", "0001TP_b", "0006R0_c", "0006R0_d", "0016E5_e", "0016E5_f")


@pytest.fixture
def camvid(tmp_path):
    camvid_tree(tmp_path / "camvid", "val", names=NAMES, h=16, w=16)
    return build_dataset("camvid", tmp_path / "camvid", "val")


def test_max_images_is_a_seeded_draw_without_replacement(camvid):
    indices, choice = choose_images(camvid, max_images=3, seed=7)
    expected = sorted(np.random.default_rng(7).choice(np.arange(6), size=3, replace=False).tolist())
    assert indices == expected and choice["images"] == [str(camvid.pairs[i].image) for i in expected]
    assert (choice["of"], choice["max_images"], choice["seed"], choice["listed"]) == (6, 3, 7, None)
    assert choose_images(camvid, max_images=3, seed=7)[0] == indices             # same seed, same images
    assert choose_images(camvid, max_images=10)[0] == list(range(6))             # more than there are: all
    assert choose_images(camvid) == (list(range(6)), None) and subset(camvid) is camvid


def test_named_images_by_stem_file_name_or_path(camvid, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# two frames\n0006R0_d.png\n\nval/0001TP_a  # by path end\n")
    sub = subset(camvid, images=read_image_list(str(lst)))
    assert isinstance(sub, ImageSubset) and len(sub) == 2
    assert [p.image.name for p in sub.pairs] == ["0001TP_a.png", "0006R0_d.png"]
    assert sub[1]["path"] == str(camvid.pairs[3].image) and sub.description is camvid.description
    assert describe_choice(sub.subset) == "2 of 6 images (2 listed by --images): 0001TP_a.png, 0006R0_d.png"
    assert read_image_list("0016E5_e, 0016E5_f") == ["0016E5_e", "0016E5_f"]
    both = subset(camvid, max_images=1, images=["0016E5_e", "0016E5_f", "0001TP_b"], seed=3)
    assert len(both) == 1 and both.subset["listed"] == 3


@pytest.mark.parametrize("kw,message", [
    ({"images": ["nope"]}, "--images: 'nope' is none of the 6 images of the split"),
    ({"images": ["0001TP"]}, None),
    ({"max_images": 0}, "--max-images 0: give at least 1"),
])
def test_bad_choices_are_one_line(camvid, kw, message):
    if message is None:  # a stem prefix is not a name
        with pytest.raises(DatasetError, match="is none of"):
            choose_images(camvid, **kw)
        return
    with pytest.raises(DatasetError) as e:
        choose_images(camvid, **kw)
    assert str(e.value) == message


def test_an_ambiguous_name_is_refused(tmp_path):
    camvid_tree(tmp_path / "f", "val", names=("a",), h=8, w=8)
    ds = build_dataset("camvid", tmp_path / "f", "val")
    ds.pairs = [ds.pairs[0], ds.pairs[0]._replace(image=tmp_path / "other" / "a.png")]
    with pytest.raises(DatasetError, match="'a.png' matches 2 images"):
        choose_images(ds, images=["a.png"])


def test_a_subset_loads_through_loader_workers():
    from iaseg.data import build_loader

    ds = build_dataset("synthetic", None, "val", size=(32, 32), length=6)
    sub = subset(ds, max_images=3, seed=1)
    paths = [p for batch in build_loader(sub, batch_size=2, shuffle=False, num_workers=2) for p in batch["path"]]
    assert paths == sub.subset["images"] == [ds.item_name(i) for i in sub.indices]
