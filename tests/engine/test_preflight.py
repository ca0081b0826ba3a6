"""The pre-flight check: every file a run reads, before the first epoch, cached; and bad files met
inside the loops (changed after the check) still end in one line naming the file."""
import json

import numpy as np
import pytest
from PIL import Image

from iaseg.data import DatasetError, build_dataset
from iaseg.engine import preflight as pf
from iaseg.engine.config import load_config
from iaseg.engine.trainer import Trainer

from tests.helpers.data import COLOUR_DESC, camvid_tree, truncate, write_colour_label, write_image, write_label
from tests.helpers.train import fit

NAMES = tuple(f"f{i:02d}" for i in range(12))


def camvid_run(tmp_path, *overrides):
    """A CamVid-layout tree of 12 train and 4 val 32x32 frames and a config training on it."""
    root = tmp_path / "camvid"
    camvid_tree(root, "train", names=NAMES, h=32, w=32)
    camvid_tree(root, "val", names=NAMES[:4], h=32, w=32)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {{name: erfpspnet}}\ndata: {{dataset: camvid, root: '{root}', size: [32, 32], "
                   "num_workers: 0}\nloss: {name: ce}\ntrain: {epochs: 1, batch_size: 2, tensorboard: false}\n")
    return root, load_config(cfg, list(overrides))


BREAKS = {
    "truncated val image": (lambda r: truncate(r / "val/f01.png"),
                            "{r}/val/f01.png: unreadable or truncated image (Truncated File Read) "
                            "(pre-flight check of the validation data)"),
    "label values": (lambda r: write_label(r / "valannot/f02.png", h=32, w=32, values=(0, 77)),
                     "{r}/valannot/f02.png: label values [77] are neither classes nor void (allowed: 0..10 and "
                     "void 11 for camvid) (pre-flight check of the validation data)"),
    "label size": (lambda r: write_label(r / "trainannot/f03.png", h=16, w=32),
                   "{r}/trainannot/f03.png: label size 32x16 differs from image f03.png size 32x32 (WxH) "
                   "(pre-flight check of the training data)"),
    "two problems": (lambda r: (truncate(r / "train/f00.png"), truncate(r / "train/f05.png")),
                     "{r}/train/f00.png: unreadable or truncated image (Truncated File Read) (pre-flight check "
                     "of the training data and 1 more problem(s): run `iaseg data check`)"),
    "16-bit image": (lambda r: write_image(r / "val/f03.png", 32, 32, mode="I;16"),
                     "{r}/val/f03.png: image mode 'I;16' is not RGB and cannot be converted safely (16-bit/float?); "
                     "save it as 8-bit RGB (pre-flight check of the validation data)"),
}


@pytest.mark.parametrize("name", BREAKS)
def test_a_bad_file_stops_the_run_before_the_first_epoch(tmp_path, name):
    root, cfg = camvid_run(tmp_path)
    breaks, message = BREAKS[name]
    breaks(root)
    with pytest.raises(DatasetError) as info:
        Trainer(cfg, tmp_path / "run", progress=False)
    assert str(info.value) == message.format(r=root)
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not list((tmp_path / "run").glob("*.pt"))


def test_the_check_is_cached_on_paths_sizes_and_times(tmp_path, monkeypatch):
    root, _ = camvid_run(tmp_path)
    sets = {s: build_dataset("camvid", root, s, size=(32, 32)) for s in ("train", "val")}
    sets["none"] = None
    assert pf.preflight(sets, tmp_path) == 16
    assert len(json.loads((tmp_path / "preflight.json").read_text())["checked"]) == 2
    calls = []
    monkeypatch.setattr(pf, "check_pair", lambda ds, i: calls.append(i))
    assert pf.preflight(sets, tmp_path) == 0 and calls == []          # nothing read again
    write_label(root / "valannot/f00.png", h=32, w=32, values=(1, 2))  # one file changed: its split again
    sets["val"] = build_dataset("camvid", root, "val", size=(32, 32))
    assert pf.preflight(sets, tmp_path) == 4 and calls == [0, 1, 2, 3]


def _break_after(files, epoch_at, step_at):
    def hook(trainer, epoch, step):
        if epoch == epoch_at and step == step_at:
            for f in files:
                truncate(f)
    return hook


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("where", ["train", "val"])
def test_a_file_broken_during_training_ends_in_one_line(tmp_path, where, workers):
    """Files changed after the pre-flight check: the loop's DatasetError (re-raised from a worker
    with 2 workers) keeps its one-line message; a broken val image after epoch 1 loses nothing:
    last.pt holds the epoch, and the resume validates it."""
    root, cfg = camvid_run(tmp_path, f"data.num_workers={workers}")
    folder = root / where
    keep = {p: p.read_bytes() for p in folder.iterdir()}
    hook = _break_after(list(folder.iterdir()), 0, 1 if where == "train" else 6)
    t = Trainer(cfg, tmp_path / "run", progress=False, after_step=hook)
    with pytest.raises(DatasetError) as info:
        t.fit()
    t.close()
    message = str(info.value)
    del info
    assert "\n" not in message and message.startswith(f"{folder}/f") and ": unreadable or truncated image (" in message
    if where == "val":
        from iaseg.checkpoint import load_checkpoint

        saved = load_checkpoint(tmp_path / "run" / "last.pt")
        assert saved["epoch"] == 1 and saved["pending_record"]["validate"] is True
        for p, data in keep.items():
            p.write_bytes(data)
        t = Trainer(cfg, tmp_path / "run", resume=True, progress=False)
        t.fit()
        t.close()
        records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in records] == [1] and "val" in records[0] and records[0]["images"] == 12


@pytest.mark.parametrize("workers", ["0", "2"])
def test_evaluate_meets_a_truncated_image_in_one_line(tmp_path, capsys, workers):
    from iaseg.cli import main

    root, cfg = camvid_run(tmp_path)
    t = Trainer(cfg, tmp_path / "run", progress=False)
    t.fit()
    t.close()
    truncate(root / "val/f02.png")
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "ev"),
                 "--no-progress", "--workers", workers]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"iaseg evaluate: error: {root}/val/f02.png: unreadable or truncated")


def test_a_val_split_that_is_the_train_split_with_other_options_is_checked_too(tmp_path):
    """Leave-one-sequence-out: val_split 'train' with val_options selecting one sequence; both
    selections are checked (keyed by split name, the val selection would hide the training one)."""
    root = tmp_path / "camvid"
    camvid_tree(root, "train", names=("0001TP_00010", "0001TP_00020", "0006R0_00030", "0006R0_00040"), h=32, w=32)
    truncate(root / "train/0001TP_00020.png")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {{name: erfpspnet}}\ndata: {{dataset: camvid, root: '{root}', size: [32, 32], "
                   "val_split: train, options: {exclude_sequences: [0006R0]}, "
                   "val_options: {sequences: [0006R0], exclude_sequences: []}}\nloss: {name: ce}\n")
    with pytest.raises(DatasetError) as info:
        Trainer(load_config(cfg), tmp_path / "run", progress=False)
    assert str(info.value) == (f"{root}/train/0001TP_00020.png: unreadable or truncated image (Truncated File Read) "
                               "(pre-flight check of the training data)")


def test_training_on_rgb_colour_labels_runs_one_epoch(tmp_path):
    """data.options: {label_format: rgb}: the pre-flight check reads the colour labels as the
    dataset does (palette -> ids), so training starts and validates; a colour outside the palette
    still stops it before the first epoch, naming the file and the colour."""
    root = tmp_path / "colours"
    (root).mkdir()
    (root / "description.yaml").write_text(COLOUR_DESC)
    for split in ("train", "val"):
        for i in range(4 if split == "train" else 2):
            write_image(root / split / "images" / f"f{i}.png", h=32, w=32, seed=i)
            write_colour_label(root / split / "labels" / f"f{i}.png", h=32, w=32, seed=i)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {{name: erfpspnet}}\ndata: {{dataset: folder, root: '{root}', size: [32, 32], "
                   "num_workers: 0, options: {label_format: rgb}}\nloss: {name: ce}\n"
                   "train: {epochs: 1, batch_size: 2, tensorboard: false}\n")
    fit(load_config(cfg), tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1] and records[0]["images"] == 4 and "val" in records[0]
    label = np.asarray(Image.open(root / "val/labels/f1.png")).copy()
    label[5, 7] = (12, 34, 56)
    Image.fromarray(label).save(root / "val/labels/f1.png")
    with pytest.raises(DatasetError) as info:
        Trainer(load_config(cfg), tmp_path / "run2", progress=False)
    assert str(info.value).startswith(f"{root}/val/labels/f1.png: unknown label colour [12, 34, 56] at x=7, y=5 ")
    assert str(info.value).endswith("(pre-flight check of the validation data)")
