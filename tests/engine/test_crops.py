"""Fig. 4-style boundary crops: window choice from the labels only (against a brute-force numpy
count), per-crop boundary F, class selection, and the figure for ERF-PSPNet vs BiERF-PSPNet."""
import numpy as np
import pytest
from PIL import Image

import iaseg.data
from iaseg.cli import main as cli
from iaseg.engine import crops as cr
from tests.helpers.compare import DESC, SpatialFake, save_tiny_checkpoint


def _np_boundary(label, ignore):
    """Boundary pixels as in iaseg.metrics.boundary: a valid pixel with a valid 4-neighbour of another class."""
    h, w = label.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if label[y, x] == ignore:
                continue
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                v, u = y + dy, x + dx
                if 0 <= v < h and 0 <= u < w and label[v, u] != ignore and label[v, u] != label[y, x]:
                    out[y, x] = True
    return out


def test_best_window_matches_a_brute_force_count():
    label = np.zeros((40, 56), np.int64)
    label[4:10, 4:8] = 8          # a small car
    label[20:36, 30:33] = 9       # a thin pedestrian (pole-like)
    label[22:30, 44:52] = 1       # a building block: not a chosen class
    label[0, :] = DESC.ignore_index
    ids = [8, 9]
    hits = _np_boundary(label, DESC.ignore_index) & np.isin(label, ids)
    size = 16
    top, left, count = cr.best_window(label, ids, size, DESC.ignore_index)
    grid_y = sorted(set(range(0, 40 - size + 1, size // 4)) | {40 - size})
    grid_x = sorted(set(range(0, 56 - size + 1, size // 4)) | {56 - size})
    brute = max((hits[y:y + size, x:x + size].sum(), -y, -x) for y in grid_y for x in grid_x)
    assert (count, -top, -left) == brute
    assert count == hits[top:top + size, left:left + size].sum() and top <= 20 and top + size >= 36 - 8 and left <= 30 and left + size >= 33  # on the pedestrian
    assert cr.best_window(np.zeros((40, 56), np.int64), ids, size, DESC.ignore_index)[2] == 0
    assert cr.best_window(label, ids, 100, DESC.ignore_index) == (0, 0, hits.sum())  # larger than the image


def test_crop_boundary_f_and_classes():
    gt = np.zeros((32, 32), np.int64)
    gt[8:24, 8:24] = 8
    assert cr.crop_boundary_f(gt, gt, [8], 11, 11, tolerance=1) == 100.0
    shifted = np.roll(gt, 6, axis=1)  # edges 6 px away: the left/right edges miss at tolerance 1
    f = cr.crop_boundary_f(shifted, gt, [8], 11, 11, tolerance=1)
    assert 0 < f < 100
    assert cr.crop_boundary_f(shifted, gt, [8], 11, 11, tolerance=6) == 100.0
    assert np.isnan(cr.crop_boundary_f(gt, gt, [9], 11, 11, tolerance=1))
    assert cr.crop_classes(DESC, None) == list(DESC.group_indices()[-1])
    assert cr.crop_classes(DESC, ["Pole", "Car"]) == [DESC.class_index("Pole"), DESC.class_index("Car")]
    with pytest.raises(ValueError, match="unknown class 'Lamp'"):
        cr.crop_classes(DESC, ["Lamp"])


def test_crops_of_erfpspnet_vs_bierfpspnet_from_the_command_line(two_runs, tmp_path, monkeypatch, capsys):
    run_a, file_b, _, _ = two_runs
    calls = []

    def fake_build_dataset(name, root, split, size=None, **options):
        calls.append((name, split, size, options))
        return SpatialFake(options.get("spatial_size"))

    monkeypatch.setattr(iaseg.data, "build_dataset", fake_build_dataset, raising=False)
    erf = save_tiny_checkpoint(tmp_path / "erf.pt", 0)
    bi = save_tiny_checkpoint(tmp_path / "bi.pt", 2, "bierfpspnet")
    out = tmp_path / "cmp"
    assert cli(["compare", str(run_a), str(file_b), "--out", str(out), "--names", "ERF", "BiERF",
                "--checkpoints", str(erf), str(bi), "--root", "/data/camvid", "--crops", "3", "--crop-size", "32"]) == 0
    captured = capsys.readouterr()
    assert (out / "overlay.png").is_file()  # the Fig. 7 overlay too, at the labels' resolution
    assert calls[-2:] == [("camvid", "val", None, {}), ("camvid", "val", None, {"spatial_size": (64, 64)})]
    with Image.open(out / "crops.png") as im:
        assert im.format == "PNG" and im.size[0] > 500
    assert "![crops](crops.png)" in (out / "comparison.md").read_text()
    lines = [line for line in captured.out.splitlines() if line.startswith("crop ")]
    assert len(lines) == 3 and all("boundary F ERF" in line for line in lines)
    assert not any(line.startswith("crop img0.png") for line in lines)  # image 0 shows no G3 boundary

    # the windows come from the labels alone: swapping the models changes none of them
    _, a = cr.boundary_crops([erf, bi], ["A", "B"], tmp_path / "x.png", root="/d", crops=3, size=32)
    _, b = cr.boundary_crops([bi, erf], ["B", "A"], tmp_path / "y.png", root="/d", crops=3, size=32)
    assert [(c["image"], c["window"]) for c in a] == [(c["image"], c["window"]) for c in b]
    assert [c["boundary_f"] for c in a] == [c["boundary_f"][::-1] for c in b]
    assert all(c["window"][2:] == [32, 32] and c["boundary_pixels"] > 0 for c in a)

    assert cli(["compare", str(run_a), str(file_b), "--out", str(out), "--crops", "2"]) == 2
    assert "--crops needs --checkpoints" in capsys.readouterr().err
    assert cli(["compare", str(run_a), str(file_b), "--out", str(out), "--checkpoints", str(erf), str(bi),
                "--root", "/d", "--crops", "2", "--crop-classes", "Lamp"]) == 2
    assert "crops: unknown class 'Lamp'" in capsys.readouterr().err
