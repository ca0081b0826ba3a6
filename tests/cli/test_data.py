"""`iaseg data check | weights | convert-labels | download`."""
import math
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.cli import main

from tests.helpers.data import COLOUR_DESC, camvid_tree, truncate, write_colour_label, write_image, write_label
from tests.helpers.download import publish


def test_check_clean_split(tmp_path, capsys):
    root = camvid_tree(tmp_path)
    assert main(["data", "check", "--dataset", "camvid", "--root", str(root), "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "images: 3 read ok of 3" in out and "Bicyclist" in out and "void" in out and "ok: no problems" in out
    assert "32x24 (WxH): 3" in out


def test_check_reports_one_line_per_problem(tmp_path, capsys):
    root = camvid_tree(tmp_path, names=("a", "b", "c", "d"))
    truncate(root / "train/a.png")
    (root / "trainannot/b.png").unlink()
    write_label(root / "trainannot/c.png", values=(0, 42))
    assert main(["data", "check", "--dataset", "camvid", "--root", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    problems = [line for line in err if line.startswith("problem: ")]
    assert len(problems) == 3 and err[-1] == "3 problem(s) found"
    assert any("train/a.png" in p for p in problems) and any("train/b.png: no label" in p for p in problems)
    assert any("trainannot/c.png: label values [42]" in p for p in problems)


def test_check_reports_two_images_with_one_stem(tmp_path, capsys):
    from tests.helpers.data import write_image

    root = camvid_tree(tmp_path)
    write_image(root / "train/b.jpg", seed=5)
    assert main(["data", "check", "--dataset", "camvid", "--root", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"problem: {root}/train/b.png: two images share the stem 'b' (also b.jpg); labels are paired "
                   "by stem", "1 problem(s) found"]


def test_check_layout_root_and_synthetic(tmp_path, capsys):
    assert main(["data", "check", "--dataset", "cityscapes", "--root", str(tmp_path)]) == 1
    assert "not a Cityscapes layout" in capsys.readouterr().err
    assert main(["data", "check", "--dataset", "camvid"]) == 2
    assert "--root is required for --dataset camvid" in capsys.readouterr().err
    assert main(["data", "check", "--dataset", "synthetic", "--split", "val", "--limit", "2"]) == 0
    assert "images: 2 read ok of 50" in capsys.readouterr().out
    assert main(["data", "check", "--dataset", "folder", "--root", str(tmp_path), "--description",
                 str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err


def _stub_class_weights():
    """Stand-in with the agreed API of iaseg.losses.class_weights (see the real test below)."""
    calls = {}

    def dataset_class_stats(dataset, num_classes, ignore_index, cache=None, progress=True, cache_key=None):
        calls.update(num_classes=num_classes, ignore_index=ignore_index, cache=cache, cache_key=cache_key)
        counts = torch.zeros(num_classes, dtype=torch.long)
        void = 0
        for i in range(len(dataset)):
            lab = dataset[i]["label"]
            void += int((lab == ignore_index).sum())
            counts += torch.bincount(lab[lab != ignore_index], minlength=num_classes)
        return {"counts": counts, "void": void, "total": int(counts.sum()) + void, "images": len(dataset),
                "image_pixels_with_class": counts}

    def compute_class_weights(stats, method="enet", a=1.02, include_void=True):
        calls.update(method=method, a=a, include_void=include_void)
        total = stats["total"] if include_void else int(stats["counts"].sum())
        return 1.0 / torch.log(a + stats["counts"].double() / total)

    mod = types.ModuleType("iaseg.losses.class_weights")
    mod.dataset_class_stats, mod.compute_class_weights = dataset_class_stats, compute_class_weights
    return mod, calls


def _printed_weights(out):
    line = next(l for l in out.splitlines() if l.startswith("weights: ["))
    return [float(v) for v in line[len("weights: ["):-1].split(",")]


def test_weights_command_wiring(tmp_path, capsys, monkeypatch):
    mod, calls = _stub_class_weights()
    monkeypatch.setitem(sys.modules, "iaseg.losses.class_weights", mod)
    root = camvid_tree(tmp_path)
    assert main(["data", "weights", "--dataset", "camvid", "--root", str(root), "--a", "1.1", "--exclude-void",
                 "--cache", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert calls["num_classes"] == 11 and calls["ignore_index"] == 11 and calls["cache"] == str(tmp_path / "c.json")
    assert calls["cache_key"]["dataset"] == "camvid" and calls["cache_key"]["split"] == "train"
    assert calls["method"] == "enet" and calls["a"] == 1.1 and calls["include_void"] is False
    # reference in float64 from the raw label files
    from PIL import Image
    labels = np.concatenate([np.asarray(Image.open(root / "trainannot" / f"{n}.png")).ravel() for n in "abc"])
    counts = np.bincount(labels[labels != 11], minlength=11)
    expected = [1 / math.log(1.1 + c / counts.sum()) for c in counts]
    assert _printed_weights(out) == pytest.approx(expected, abs=1e-4)
    assert "Road" in out and "G2" in out and "excluded from" in out


def test_weights_command_with_real_class_weights(tmp_path, capsys):
    cw = pytest.importorskip("iaseg.losses.class_weights")
    from iaseg.data import build_dataset

    root = camvid_tree(tmp_path)
    for i, n in enumerate("abc"):                          # every class present in every image
        write_label(root / "trainannot" / f"{n}.png", values=tuple(range(12)), seed=i)
    for method in ("enet", "median"):
        assert main(["data", "weights", "--dataset", "camvid", "--root", str(root), "--method", method]) == 0
        printed = _printed_weights(capsys.readouterr().out)
        ds = build_dataset("camvid", root, "train")
        stats = cw.dataset_class_stats(ds, 11, 11, progress=False)
        expected = cw.compute_class_weights(stats, method=method, a=1.02, include_void=True)
        assert printed == pytest.approx([float(w) for w in expected], abs=1e-4)


def test_cli_download(server, tmp_path, capsys):
    from iaseg.cli import main

    base, cam, _ = server
    publish(cam, "test", ["t1.png", "t2.png"])
    root = tmp_path / "camvid"
    assert main(["data", "download", "camvid", "--root", str(root), "--base-url", base, "--split", "test",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5 file(s) downloaded" in out and "could not be verified" in out
    assert (root / "testannot/t2.png").is_file()
    # train.txt on this server does not match the shipped checksum: one-line error, exit 2
    (cam / "train.txt").write_text("/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png\n")
    assert main(["data", "download", "camvid", "--root", str(root), "--base-url", base, "--split", "train",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("iaseg data: error:") and "train.txt: SHA-256 mismatch" in err and "\n" not in err
    assert not (root / "train.txt").exists()


def test_convert_labels_and_check_rgb_folder(tmp_path, capsys):
    (tmp_path / "description.yaml").write_text(COLOUR_DESC)
    write_image(tmp_path / "images/a.png")
    expected = write_colour_label(tmp_path / "labels/a.png")
    assert main(["data", "check", "--dataset", "folder", "--root", str(tmp_path), "--label-format", "rgb"]) == 0
    out = capsys.readouterr().out
    assert "images: 1 read ok of 1" in out and "ok: no problems" in out
    # the class pixel counts are those of the colours
    person = [line for line in out.splitlines() if " person " in line][0]
    assert f"{int((expected == 1).sum()):,}" in person

    ids = tmp_path / "ids"
    assert main(["data", "convert-labels", "--input", str(tmp_path / "labels"), "--out", str(ids / "labels"),
                 "--description", str(tmp_path / "description.yaml")]) == 0
    assert f"wrote 1 class-id label file(s) to {ids / 'labels'}" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(ids / "labels/a.png")), expected)

    rgb = np.asarray(Image.open(tmp_path / "labels/a.png")).copy()
    rgb[1, 2] = (5, 6, 7)
    Image.fromarray(rgb).save(tmp_path / "labels/a.png")
    assert main(["data", "convert-labels", "--input", str(tmp_path / "labels/a.png"), "--out", str(ids / "again"),
                 "--description", str(tmp_path / "description.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"problem: {tmp_path / 'labels/a.png'}: unknown label colour [5, 6, 7] at x=2, y=1 (first of 1 "
                   "pixels whose colour is neither in the palette of tiny nor its void colour [0, 0, 0])",
                   "1 file(s) not converted"]
    assert not (ids / "again").exists()
    assert main(["data", "convert-labels", "--input", str(tmp_path / "nope"), "--out", str(ids),
                 "--description", str(tmp_path / "description.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"iaseg data: error: {tmp_path / 'nope'}: no such file or folder"
