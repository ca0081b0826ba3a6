"""Dataset descriptions: the shipped ones load and round-trip; every key's type is checked and a
bad value is one DescriptionError naming the file and the key."""
import json

import pytest
import yaml

from iaseg.cli import main
from iaseg.data import DescriptionError, load_description
from iaseg.data.description import DatasetDescription

GOOD = {
    "name": "tiny",
    "classes": ["sky", "road", "car"],
    "palette": [[0, 0, 255], [128, 64, 128], [255, 0, 0]],
    "ignore_index": 255,
    "ignore_color": [0, 0, 0],
    "native_size": [24, 32],
    "groups": {"G1": ["sky"], "G2": ["road", "car"]},
    "label_map": {0: 0, 1: 1, 7: 2, 255: 255},
}


def test_good_description_loads_with_its_values(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    d = load_description(path)
    assert d.classes == ("sky", "road", "car") and d.palette[1] == (128, 64, 128) and d.ignore_index == 255
    assert d.groups == {"G1": ("sky",), "G2": ("road", "car")} and d.native_size == (24, 32)
    assert d.label_map == {0: 0, 1: 1, 7: 2, 255: 255} and d.group_indices() == [[0], [1, 2]]


@pytest.mark.parametrize("name", ["camvid", "cityscapes"])
def test_shipped_descriptions_round_trip_through_json(name):
    d = load_description(name)
    # exported models carry the description as JSON, where label_map keys become strings
    assert DatasetDescription.from_dict(json.loads(json.dumps(d.to_dict()))) == d


REMOVE = "<remove this key>"

# (change to GOOD, expected message after "<file>: ")
BAD = [
    ({"classes": 11}, "'classes' must be a list of class names, got 11"),
    ({"classes": "sky road car"}, "'classes' must be a list of class names, got 'sky road car'"),
    ({"classes": ["sky", ["road"], "car"]}, "'classes' must be a list of class names, got ['sky', ['road'], 'car']"),
    ({"classes": ["sky", "sky", "car"]}, "'classes' must list at least two distinct names"),
    ({"ignore_index": "void"}, "'ignore_index' must be an integer, got 'void'"),
    ({"ignore_index": 2.5}, "'ignore_index' must be an integer, got 2.5"),
    ({"ignore_index": True}, "'ignore_index' must be an integer, got True"),
    ({"ignore_index": 1}, "ignore_index 1 collides with class 'road'"),
    ({"palette": "red"}, "'palette' must be a list of [R, G, B] colours, got 'red'"),
    ({"palette": [[0, 0, 255], [128, 64], [255, 0, 0]]}, "'palette': colour [128, 64] is not [R, G, B] (three integers)"),
    ({"palette": [[0, 0, 255], [1, 2, 3], 7]}, "'palette': colour 7 is not [R, G, B] (three integers)"),
    ({"palette": [[0, 0, 255], [1.5, 2, 3], [0, 0, 0]]}, "'palette': colour [1.5, 2, 3] is not [R, G, B] (three integers)"),
    ({"palette": [[0, 0, 256], [1, 2, 3], [0, 0, 0]]}, "'palette': colour [0, 0, 256] has values outside 0..255"),
    ({"palette": [[0, 0, 255], [1, 2, 3]]}, "'palette' has 2 colours for 3 classes"),
    ({"ignore_color": "black"}, "'ignore_color': colour 'black' is not [R, G, B] (three integers)"),
    ({"groups": {"G1": ["sky"], "G2": ["road", "bus"]}}, "group 'G2' names unknown class 'bus'"),
    ({"groups": {"G1": "sky", "G2": ["road", "car"]}}, "group 'G1' must be a list of class names, got 'sky'"),
    ({"groups": {"G1": ["sky", "car"], "G2": ["road", "car"]}}, "class 'car' is in groups 'G1' and 'G2'"),
    ({"groups": {"G1": ["sky"], "G2": ["road"]}}, "classes ['car'] are in no group"),
    ({"groups": {"G1": [], "G2": ["sky", "road", "car"]}}, "group 'G1' is empty"),
    ({"groups": ["sky", "road"]}, "'groups' must map at least two group names to class lists"),
    ({"native_size": [24]}, "'native_size' must be [height, width] (positive integers), got [24]"),
    ({"native_size": "24x32"}, "'native_size' must be [height, width] (positive integers), got '24x32'"),
    ({"native_size": [24, 0]}, "'native_size' must be [height, width] (positive integers), got [24, 0]"),
    ({"label_map": [0, 1]}, "'label_map' must map raw label values to class ids (integers)"),
    ({"label_map": {0: "sky"}}, "'label_map' must map raw label values to class ids (integers)"),
    ({"label_map": {0: 5}}, "label_map targets outside the classes: {0: 5}"),
    ({"name": None}, "'name' must be a non-empty string, got None"),
    ({"colours": []}, "unknown key(s) ['colours']; allowed: "),
    ({k: REMOVE for k in ("name", "classes", "palette", "ignore_index", "groups")},
     "missing key(s) ['name', 'classes', 'palette', 'ignore_index', 'groups']"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[str(c)[:40] for c, _ in BAD])
def test_bad_description_is_one_line_naming_file_and_key(tmp_path, change, message):
    data = {k: v for k, v in {**GOOD, **change}.items() if v != REMOVE}
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DescriptionError) as info:
        load_description(path)
    assert str(info.value).startswith(f"{path}: {message}") and "\n" not in str(info.value)


def test_not_a_mapping_and_not_yaml(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(DescriptionError, match=r"d\.yaml: a dataset description must be a mapping$"):
        load_description(path)
    path.write_text("classes: [a\n")
    with pytest.raises(DescriptionError, match=r"d\.yaml: not valid YAML"):
        load_description(path)


@pytest.mark.parametrize("change, message", [
    ({"classes": 11}, "'classes' must be a list of class names, got 11"),
    ({"ignore_index": "void"}, "'ignore_index' must be an integer, got 'void'"),
])
def test_cli_prints_one_line(tmp_path, capsys, change, message):
    from tests.helpers.data import write_image, write_label

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    write_image(tmp_path / "images/a.png")
    write_label(tmp_path / "labels/a.png", values=(0, 1))
    code = main(["data", "check", "--dataset", "folder", "--root", str(tmp_path), "--description", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"problem: {path}: {message}", "1 problem(s) found"]
