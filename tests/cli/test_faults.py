"""Disk faults for every command that writes files (`tests.helpers.faults.BrokenFolder`): a
read-only folder and a full disk end in one line `iaseg CMD: error: ...` naming a file below
the folder, exit 2, and leave nothing half-written (no new or changed file with content; an
empty folder or an empty log opened before the first write may stay, and so may a download's
`.part`, the prefix the next run resumes from)."""
import json

import pytest

from iaseg.cli import main

from tests.helpers.data import camvid_tree, write_colour_label, COLOUR_DESC
from tests.helpers.download import publish
from tests.helpers.faults import BrokenFolder, snapshot


def _commands(tiny_run, src, base_url):
    ckpt = str(tiny_run / "last.pt")
    return {
        "train": lambda d: ["train", "--config", "tiny_synthetic", "--out", str(d / "run"), "--no-progress",
                            "--epochs", "1"],
        "evaluate": lambda d: ["evaluate", "--checkpoint", ckpt, "--out", str(d / "ev"), "--no-progress",
                               "--batch-size", "4"],
        "export onnx": lambda d: ["export", "--checkpoint", ckpt, "--out", str(d / "m.onnx")],
        "export pt": lambda d: ["export", "--checkpoint", ckpt, "--out", str(d / "m.pt")],
        "compare": lambda d: ["compare", str(src / "ev"), str(src / "ev"), "--out", str(d / "cmp")],
        "sweep": lambda d: ["sweep", "--config", "a=tiny_synthetic", "--seeds", "0", "--out", str(d / "sw")],
        "data weights": lambda d: ["data", "weights", "--dataset", "camvid", "--root", str(src / "camvid"),
                                   "--cache", str(d / "stats.json")],
        "data convert-labels": lambda d: ["data", "convert-labels", "--input", str(src / "colour"),
                                          "--out", str(d / "ids"), "--description", str(src / "desc.yaml")],
        "data download": lambda d: ["data", "download", "camvid", "--root", str(d / "cam"), "--base-url",
                                    base_url, "--split", "train", "--no-progress"],
        "predict": lambda d: ["predict", "--checkpoint", ckpt, "--input", str(src / "camvid" / "train"),
                              "--out", str(d / "pred"), "--no-progress"],
        "calibrate": lambda d: ["calibrate", "--checkpoint", ckpt, "--target", "G3.recall>=0.01",
                                "--out", str(d / "rule.json"), "--no-progress"],
    }


COMMANDS = ["train", "evaluate", "export onnx", "export pt", "compare", "sweep", "data weights",
            "data convert-labels", "data download", "predict", "calibrate"]


@pytest.fixture(scope="module")
def sources(tiny_run, tmp_path_factory):
    src = tmp_path_factory.mktemp("sources")
    assert main(["evaluate", "--checkpoint", str(tiny_run / "last.pt"), "--out", str(src / "ev"),
                 "--no-progress", "--batch-size", "4"]) == 0
    camvid_tree(src / "camvid")
    (src / "desc.yaml").write_text(COLOUR_DESC)
    write_colour_label(src / "colour" / "a.png")
    return src


@pytest.mark.parametrize("kind", ["readonly", "full"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_folder_or_a_full_disk_is_one_line_and_leaves_nothing_half_written(
        command, kind, tiny_run, sources, server, tmp_path, monkeypatch, capsys):
    base, cam, _ = server
    publish(cam, "train", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("kept")
    argv = _commands(tiny_run, sources, base)[command](out)
    capsys.readouterr()
    before = snapshot(out)
    faults = BrokenFolder(monkeypatch, out, kind)
    rc = main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert faults.refused, "the command wrote nothing below the folder: the test tests nothing"
    lines = [line for line in err.splitlines() if line.startswith(f"iaseg {argv[0]}: error: ")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(out) in lines[0], lines[0]
    after = snapshot(out)
    assert after["old.txt"] == b"kept"
    # a download's .part is its documented resume point (a valid prefix of the file), not a result
    half = {name for name, data in after.items()
            if data and data != b"<dir>" and before.get(name) != data and not name.endswith(".part")}
    assert not half, half
