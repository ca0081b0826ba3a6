"""data/io.py: colour-coded labels through the palette (against a per-pixel reference), and
class-id PNGs written so that the readers read them back."""
import numpy as np
import pytest
from PIL import Image

from iaseg.data.description import DatasetDescription
from iaseg.data.errors import DatasetError
from iaseg.data.io import (ColourTable, check_image, encode_label, label_lut, map_label, read_image, read_label,
                           read_rgb_label, write_label)

TINY = {"name": "tiny", "classes": ["background", "person", "sign"],
        "palette": [[10, 10, 10], [255, 0, 0], [0, 255, 0]], "ignore_index": 255, "ignore_color": [0, 0, 0],
        "groups": {"low": ["background"], "high": ["person", "sign"]}}


def _desc(**changes) -> DatasetDescription:
    return DatasetDescription.from_dict({**TINY, **changes})


def _colour_label(desc, h=24, w=32, seed=0):
    """A colour image of palette and void colours, and the class ids a per-pixel dictionary gives."""
    colours = [*desc.palette, desc.ignore_color]
    rng = np.random.default_rng(seed)
    rgb = np.asarray(colours, dtype=np.uint8)[rng.integers(0, len(colours), (h, w))]
    table = {tuple(c): i for i, c in enumerate(desc.palette)} | {tuple(desc.ignore_color): desc.ignore_index}
    expected = np.array([[table[tuple(int(v) for v in rgb[y, x])] for x in range(w)] for y in range(h)])
    return rgb, expected


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_colour_labels_map_through_the_palette(tmp_path, mode):
    desc = _desc()
    rgb, expected = _colour_label(desc)
    path = tmp_path / "a.png"
    img = Image.fromarray(rgb)
    (img.convert("RGBA") if mode == "RGBA" else img.quantize(colors=8, dither=Image.Dither.NONE) if mode == "P"
     else img).save(path)
    ids = ColourTable(desc)(read_rgb_label(path), path)
    assert ids.dtype == np.int32 and np.array_equal(ids, expected)


def test_unknown_colour_names_the_file_the_first_colour_and_its_position(tmp_path):
    desc = _desc()
    rgb, _ = _colour_label(desc)
    rgb[2, 5] = (1, 2, 3)      # first in reading order (row 2)
    rgb[2, 9] = (9, 9, 9)
    rgb[7, 0] = (1, 2, 3)
    with pytest.raises(DatasetError) as e:
        ColourTable(desc)(rgb, tmp_path / "a.png")
    assert str(e.value) == (f"{tmp_path / 'a.png'}: unknown label colour [1, 2, 3] at x=5, y=2 (first of 3 pixels "
                            "whose colour is neither in the palette of tiny nor its void colour [0, 0, 0])")


@pytest.mark.parametrize("make,message", [
    (lambda p: Image.fromarray(np.zeros((4, 4), dtype=np.uint16)).save(p),
     "label mode 'I;16' is not an 8-bit colour image (label_format 'rgb' expects RGB colours of the "
     "description's palette)"),
    (lambda p: p.write_bytes(b"not a png"), "unreadable or truncated label"),
])
def test_bad_colour_label_files(tmp_path, make, message):
    make(tmp_path / "a.png")
    with pytest.raises(DatasetError) as e:
        read_rgb_label(tmp_path / "a.png")
    assert str(e.value).startswith(f"{tmp_path / 'a.png'}: {message}")


@pytest.mark.parametrize("changes,message", [
    ({"palette": [[10, 10, 10], [255, 0, 0], [10, 10, 10]]},
     "tiny: background and sign share the colour [10, 10, 10]: colour-coded labels need one colour per class and void"),
    ({"ignore_color": [255, 0, 0]},
     "tiny: person and void share the colour [255, 0, 0]: colour-coded labels need one colour per class and void"),
])
def test_ambiguous_palettes_are_refused(changes, message):
    with pytest.raises(DatasetError) as e:
        ColourTable(_desc(**changes))
    assert str(e.value) == message


@pytest.mark.parametrize("changes,mode", [
    ({}, "P"),                                                           # ids 0..2, void 255: 8-bit, coloured
    ({"label_map": {0: 0, 7: 1, 3: 1, 20: 2, 99: 255}}, "P"),            # raw values: the smallest per class
    ({"ignore_index": 300}, "I;16"),                                     # void does not fit in a byte
])
def test_written_labels_read_back_to_the_same_ids(tmp_path, changes, mode):
    desc = _desc(**changes)
    _, ids = _colour_label(desc, seed=1)
    path = write_label(tmp_path / "sub" / "a.png", ids, desc)
    assert Image.open(path).mode == mode
    back = map_label(read_label(path), label_lut(desc), path, desc)
    assert np.array_equal(back, ids)
    if mode == "P":  # a viewer shows the palette colours
        shown = np.asarray(Image.open(path).convert("RGB"))
        expected = np.array([*desc.palette, desc.ignore_color], dtype=np.uint8)[np.where(ids == desc.ignore_index, 3, ids)]
        assert np.array_equal(shown, expected)


def test_label_map_without_a_class_cannot_be_written():
    desc = _desc(label_map={0: 0, 20: 2, 99: 255})
    with pytest.raises(DatasetError, match="tiny: the label_map has no raw value for person, so labels of it cannot"):
        encode_label(np.zeros((2, 2), dtype=np.int32), desc)


@pytest.mark.parametrize("mode,hint", [("RGB", True), ("RGBA", True), ("F", False)])
def test_a_colour_label_read_as_ids_hints_at_the_rgb_format(tmp_path, mode, hint):
    path = tmp_path / "a.tif"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).convert(mode).save(path) if mode != "F" else \
        Image.fromarray(np.zeros((4, 5), np.float32)).save(path)
    with pytest.raises(DatasetError) as e:
        read_label(path)
    assert str(e.value).startswith(f"{path}: label mode {mode!r} is not a single-channel id image")
    assert str(e.value).endswith("; colour-coded labels? read them with --label-format rgb (config: data.options: "
                                 "{label_format: rgb}) or convert them with `iaseg data convert-labels`") == hint


def test_the_description_example_of_the_docs_reads_colour_labels(tmp_path):
    """docs/datasets.md's example description works for colour labels too: void has its own colour."""
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs/datasets.md").read_text()
    block = re.search(r"### Description files.*?```yaml\n(.*?)```", doc, re.S).group(1)
    desc = DatasetDescription.from_dict(yaml.safe_load(block))
    rgb, expected = _colour_label(desc, seed=3)
    np.testing.assert_array_equal(ColourTable(desc)(rgb, "x.png"), expected)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_cheap_image_check_gives_the_size_and_refuses_what_read_image_refuses(tmp_path, suffix):
    """check_image (the pre-flight check's) agrees with read_image: the size of a good file, and the
    same one-line error for a truncated file, a 16-bit image and a missing file."""
    from tests.helpers.data import truncate, write_image

    good = tmp_path / f"good{suffix}"
    write_image(good, h=40, w=56)
    assert check_image(good) == (40, 56) == read_image(good).shape[:2]
    bad = tmp_path / f"bad{suffix}"
    write_image(bad, h=40, w=56)
    truncate(bad, 0.4)
    for path in (bad, tmp_path / "missing.png"):
        with pytest.raises(DatasetError) as cheap:
            check_image(path)
        with pytest.raises(DatasetError) as full:
            read_image(path)
        assert str(cheap.value).split(" (")[0] == str(full.value).split(" (")[0]
        assert str(cheap.value).startswith(f"{path}: ")
    deep = tmp_path / "deep.png"
    write_image(deep, mode="I;16")
    with pytest.raises(DatasetError, match="image mode 'I;16' is not RGB") as cheap:
        check_image(deep)
    with pytest.raises(DatasetError) as full:
        read_image(deep)
    assert str(cheap.value) == str(full.value)
