"""Input frames for prediction, read by the one strict image reader."""
import numpy as np
import pytest
from PIL import Image

from iaseg.data import DatasetError
from iaseg.inference.frames import iter_frames, list_images

from tests.helpers.data import write_image


def test_an_image_a_folder_and_missing_input(tmp_path):
    a = write_image(tmp_path / "imgs" / "b.png", seed=1)
    write_image(tmp_path / "imgs" / "a.jpg", seed=2, mode="L")  # grayscale: converted to RGB
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    frames = list(iter_frames(tmp_path / "imgs"))
    assert [name for name, _ in frames] == ["a", "b"]
    assert frames[0][1].shape == (24, 32, 3) and frames[0][1].dtype == np.uint8
    assert np.array_equal(frames[1][1], a)
    gray = np.asarray(Image.open(tmp_path / "imgs" / "a.jpg"))
    assert all(np.array_equal(frames[0][1][..., c], gray) for c in range(3))
    ((name, image),) = list(iter_frames(tmp_path / "imgs" / "b.png"))
    assert name == "b" and np.array_equal(image, a)
    with pytest.raises(FileNotFoundError, match="nope.png: no such file or folder"):
        list(iter_frames(tmp_path / "nope.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no images"):
        list(iter_frames(tmp_path / "empty"))


def test_16_bit_float_and_bomb_images_are_refused_like_dataset_images(tmp_path, monkeypatch):
    Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DatasetError, match=r"deep.png: image mode 'I;16' is not RGB and cannot be converted"):
        list(iter_frames(tmp_path / "deep.png"))
    Image.fromarray(np.zeros((8, 8), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DatasetError, match=r"float.tif: image mode 'F'"):
        list(iter_frames(tmp_path / "float.tif"))
    write_image(tmp_path / "big.png", h=100, w=100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels > 2 x the limit: a "bomb"
    with pytest.raises(DatasetError, match=r"big.png: unreadable or truncated image \(Image size"):
        list(iter_frames(tmp_path / "big.png"))


def test_recursive_folders_name_frames_by_their_relative_path(tmp_path):
    a = write_image(tmp_path / "in" / "a.png", seed=1)
    b = write_image(tmp_path / "in" / "day" / "a.png", seed=2)
    c = write_image(tmp_path / "in" / "day" / "dusk" / "c.jpg", seed=3)
    assert [n for n, _ in iter_frames(tmp_path / "in")] == ["a"]
    frames = list(iter_frames(tmp_path / "in", recursive=True))
    assert [n for n, _ in frames] == ["a", "day/a", "day/dusk/c"]
    assert np.array_equal(frames[0][1], a) and np.array_equal(frames[1][1], b)
    assert frames[2][1].shape == c.shape
    assert [n for n, _ in list_images(tmp_path / "in", recursive=True)] == ["a", "day/a", "day/dusk/c"]


@pytest.mark.parametrize("files, recursive, message", [
    (["a.png", "a.jpg"], False, r"a.jpg and .*a.png would both be written as a.png"),
    (["Road.png", "road.bmp"], False, r"would both be written as road.png"),
    (["d/x.png", "d/x.tif"], True, r"would both be written as d/x.png"),
    (["d/x.png"], False, r"no images .* in this folder \(--recursive searches sub-folders\)"),
])
def test_name_collisions_and_empty_folders_are_refused(tmp_path, files, recursive, message):
    for rel in files:
        write_image(tmp_path / "in" / rel)
    with pytest.raises(DatasetError, match=message):
        list_images(tmp_path / "in", recursive)
