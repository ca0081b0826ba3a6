"""Inputs and labels from image folders and datasets (int8 calibration, validation)."""
import numpy as np
import pytest
import torch

from iaseg.inference import ModelMetadata

from tests.helpers.speed import SIZE, SPATIAL, camvid, meta_for, write_scene_folder


def test_read_label_maps_raw_values_and_resizes(tmp_path):
    from PIL import Image

    from iaseg.data import DatasetDescription, DatasetError
    from iaseg.inference.images import read_label

    d = camvid().to_dict()
    d["label_map"] = {7: 0, 8: 1, 26: 2, 0: 11}  # raw ids -> class ids or void
    meta = ModelMetadata("erfpspnet", DatasetDescription.from_dict(d), (2, 4))
    raw = np.array([[7, 7, 8, 8, 26, 26, 0, 0]] * 4, dtype=np.uint8)  # 4 x 8, resized to 2 x 4
    Image.fromarray(raw, mode="L").save(tmp_path / "l.png")
    assert read_label(tmp_path / "l.png", meta).tolist() == [[0, 1, 2, 11]] * 2
    plain = meta.with_(description=camvid(), input_size=(4, 8))
    raw = np.array([[11, 7, 8, 8, 3, 3, 0, 0]] * 4, dtype=np.uint8)
    Image.fromarray(raw, mode="L").save(tmp_path / "m.png")
    lab = read_label(tmp_path / "m.png", plain)
    assert lab[0].tolist() == [11, 7, 8, 8, 3, 3, 0, 0] and lab.dtype == torch.int64
    raw[0, 0] = 200  # neither a class nor void: refused, as the datasets do
    Image.fromarray(raw, mode="L").save(tmp_path / "m.png")
    with pytest.raises(DatasetError, match=r"m\.png: label values \[200\]"):
        read_label(tmp_path / "m.png", plain)


def test_image_folder_inputs_for_both_models(tmp_path):
    from iaseg.inference.images import folder_inputs, image_files, labelled_folder_samples

    images, labels = write_scene_folder(tmp_path, 3, seed=0, with_labels=True)
    assert [p.name for p in image_files(images)] == ["000.png", "001.png", "002.png"]
    xs = folder_inputs(images, meta_for("bierfpspnet"), count=2)
    assert len(xs) == 2 and [tuple(t.shape) for t in xs[0]] == [(1, 3, *SIZE), (1, 3, *SPATIAL)]
    assert all(0 <= t.min() and t.max() <= 1 for t in xs[0])
    samples = labelled_folder_samples(images, labels, meta_for("erfpspnet"))
    assert len(samples) == 3 and samples[0][1].shape == (1, *SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        image_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        image_files(tmp_path / "missing")


def test_dataset_samples_accept_tuples_dicts_and_uint8(monkeypatch):
    import iaseg.data
    from iaseg.inference.images import dataset_samples

    class Fake:
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    img8 = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    items = [(img8, torch.zeros(32, 32, dtype=torch.int64)), {"image": torch.rand(3, 64, 64), "label": None}]
    calls = []
    monkeypatch.setattr(iaseg.data, "build_dataset", lambda name, root, split: calls.append((name, root, split))
                        or Fake(items), raising=False)
    out = dataset_samples("camvid", "/data", "val", meta_for("erfpspnet"))
    assert calls == [("camvid", "/data", "val")] and len(out) == 2
    (x0,), y0 = out[0]
    assert x0.shape == (1, 3, *SIZE) and x0.max() == 1.0 and y0.shape == (1, *SIZE)
    assert out[1][1] is None
