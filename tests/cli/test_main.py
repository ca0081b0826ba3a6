"""`iaseg` itself: lazy sub-commands (a fast --help), library errors as one line with exit 2."""
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iaseg import cli
from iaseg.checkpoint import CheckpointError
from iaseg.data import DatasetError, DescriptionError
from iaseg.decision import DecisionRuleError
from iaseg.engine.config import ConfigError
from iaseg.engine.trainer import TrainingError
from iaseg.metrics import ReportError

from tests.helpers.train import subprocess_env


def test_help_imports_no_command_and_no_torch():
    code = ("import sys\nfrom iaseg.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('iaseg.') and m != 'iaseg.cli'"
            " and m != 'iaseg.cli.common'))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
    for name in cli.COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("error", [
    DatasetError("a.png: unreadable"), DescriptionError("d.yaml: bad"), ConfigError("c.yaml: unknown key x"),
    DecisionRuleError("r.json: not a rule"), ReportError("r.json: bad"), CheckpointError("c.pt not found"),
    TrainingError("no checkpoint"), ValueError("bad value"), FileNotFoundError("x: no such file"),
    cli.CLIError("--x needs --y"),
])
def test_library_errors_are_one_line_with_exit_2(error, monkeypatch, capsys):
    def run(args):
        raise type(error)(f"{error}\nsecond line of detail")

    monkeypatch.setitem(sys.modules, "iaseg.cli.fake", types.SimpleNamespace(add_arguments=lambda p: None, run=run))
    monkeypatch.setitem(cli.COMMANDS, "fake", ("iaseg.cli.fake", "a test command"))
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == f"iaseg fake: error: {error}\n"


def test_bugs_keep_their_traceback_and_ctrl_c_is_130(monkeypatch, capsys):
    def bug(args):
        raise KeyError("a bug")

    fake = types.SimpleNamespace(add_arguments=lambda p: None, run=bug)
    monkeypatch.setitem(sys.modules, "iaseg.cli.fake", fake)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("iaseg.cli.fake", "a test command"))
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["fake"])

    def interrupted(args):
        raise KeyboardInterrupt

    fake.run = interrupted
    assert cli.main(["fake"]) == 130 and capsys.readouterr().err == "iaseg fake: interrupted\n"


def test_predict_refuses_16_bit_images_like_the_datasets(tiny_run, tmp_path, capsys):
    """One strict image reader: predict's error is the dataset reader's, one line."""
    Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)).save(tmp_path / "deep.png")
    assert cli.main(["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(tmp_path / "deep.png"),
                     "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (f"iaseg predict: error: {tmp_path / 'deep.png'}: image mode 'I;16' is not RGB and cannot be "
                   "converted safely (16-bit/float?); save it as 8-bit RGB\n")
    assert not (tmp_path / "o").exists()


def _png_header(path, width, height):
    """A PNG that declares width x height RGB pixels but holds no image data: the reader must
    refuse it from its header, before decoding (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def _rule(path, offsets):
    import json

    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
             "Bicyclist"]
    path.write_text(json.dumps({"format": "iaseg-decision-rule", "version": 1, "classes": names,
                                "offsets": offsets}))
    return path


def _other_classes(tiny_run, tmp_path):
    """tiny_run's best.pt with a 5-class description: its 11-class weights no longer fit."""
    import torch

    from iaseg.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(tiny_run / "best.pt")
    desc = dict(ckpt["description"], classes=list("abcde"), palette=[[i, i, i] for i in range(5)],
                groups={"G1": ["a", "b"], "G2": ["c", "d", "e"]}, native_size=None)
    desc.pop("label_map", None)
    save_checkpoint({**ckpt, "description": desc}, tmp_path / "five.pt")
    return tmp_path / "five.pt"


def _folder(path):
    path.mkdir()
    return path


def _onnx(checkpoint, path, fault):
    """tiny_run's network exported to ONNX, then damaged ('flipped' weights) or exported with a
    5-class description ('five')."""
    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.data.description import DatasetDescription
    from iaseg.inference import export_onnx

    model, meta = model_from_checkpoint(checkpoint)
    if fault == "five":
        meta = meta.with_(description=DatasetDescription("five", tuple("abcde"), tuple((i, i, i) for i in range(5)),
                                                         255, {"G1": ("a", "b"), "G2": ("c", "d", "e")}))
    export_onnx(model, meta, path)
    if fault == "flipped":
        data = bytearray(path.read_bytes())
        data[len(data) // 2:len(data) // 2 + 64] = b"\x00" * 64
        path.write_bytes(bytes(data))
    return str(path)


# name -> (argv after the command, given (tmp_path, checkpoint); expected stderr line). {t} is
# tmp_path, {c} the checkpoint. Each leaves nothing at tmp_path/o.
BAD_CLI = {
    "predict 20000x20000 image": (
        lambda t, c: ["predict", "--checkpoint", c, "--input", str(_png_header(t / "huge.png", 20000, 20000)),
                      "--out", str(t / "o")],
        "iaseg predict: error: {t}/huge.png: unreadable or truncated image (Image size (400000000 pixels) exceeds "
        "limit of 178956970 pixels, could be decompression bomb DOS attack.)"),
    "predict --out is a file": (
        lambda t, c: ["predict", "--checkpoint", c, "--input", str(t / "in.png"), "--out", str(t / "in.png")],
        "iaseg predict: error: --out {t}/in.png is an existing file; give a folder"),
    "evaluate --out is a file": (
        lambda t, c: ["evaluate", "--checkpoint", c, "--out", str(t / "in.png")],
        "iaseg evaluate: error: --out {t}/in.png is an existing file; give a folder"),
    "evaluate --out under a file": (
        lambda t, c: ["evaluate", "--checkpoint", c, "--out", str(t / "in.png" / "o")],
        "iaseg evaluate: error: --out {t}/in.png/o: {t}/in.png is a file, not a folder"),
    "calibrate --out is a folder": (
        lambda t, c: ["calibrate", "--checkpoint", c, "--target", "G3.recall>=0.5", "--out", str(t)],
        "iaseg calibrate: error: --out {t}: {t} is an existing folder; give a file name"),
    "export --out is a folder": (
        lambda t, c: ["export", "--checkpoint", c, "--out", str(_folder(t / "m.onnx"))],
        "iaseg export: error: --out {t}/m.onnx: {t}/m.onnx is an existing folder; give a file name"),
    "export --out under a file": (
        lambda t, c: ["export", "--checkpoint", c, "--format", "onnx", "--out", str(t / "in.png" / "m.onnx")],
        "iaseg export: error: --out {t}/in.png/m.onnx: {t}/in.png is a file, not a folder"),
    "evaluate rule offset 1e308": (
        lambda t, c: ["evaluate", "--checkpoint", c, "--out", str(t / "o"),
                      "--decision-rule", str(_rule(t / "r.json", [0] * 10 + [1e308]))],
        "iaseg evaluate: error: {t}/r.json: offset of 'Bicyclist' is 1e+308: offsets must be finite and within "
        "+-10000 (they are added to log-probabilities)"),
    "predict rule with 10 offsets": (
        lambda t, c: ["predict", "--checkpoint", c, "--input", str(t / "in.png"), "--out", str(t / "o"),
                      "--decision-rule", str(_rule(t / "r.json", [0] * 10))],
        "iaseg predict: error: {t}/r.json: 'offsets' must be a list of 11 numbers, one per class"),
    "evaluate weights for another class count": (
        lambda t, c: ["evaluate", "--checkpoint", str(_other_classes(Path(c).parent, t)), "--out", str(t / "o")],
        "iaseg evaluate: error: checkpoint {t}/five.pt holds weights for 11 classes, expected 5 (use the dataset "
        "description the checkpoint was trained with)"),
    "predict damaged ONNX file": (
        lambda t, c: ["predict", "--checkpoint", _onnx(c, t / "m.onnx", "flipped"), "--input", str(t / "in.png"),
                      "--out", str(t / "o")],
        "iaseg predict: error: {t}/m.onnx: its weights do not match the checksum recorded at export (the file is "
        "damaged: export it again)"),
    "evaluate ONNX file with another class count": (
        lambda t, c: ["evaluate", "--checkpoint", _onnx(c, t / "m.onnx", "five"), "--dataset", "synthetic",
                      "--out", str(t / "o")],
        "iaseg evaluate: error: {t}/m.onnx: its iaseg metadata lists 5 classes but the model outputs 11 channels "
        "(the metadata does not belong to this model: export it again)"),
}


@pytest.mark.parametrize("case", list(BAD_CLI))
def test_bad_input_is_one_line_with_exit_2(case, tiny_run, tmp_path, capsys):
    argv, expected = BAD_CLI[case]
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(tmp_path / "in.png")
    args = argv(tmp_path, str(tiny_run / "best.pt"))
    code = cli.main(args + (["--no-progress"] if args[0] in ("predict", "evaluate", "calibrate") else []))
    err = capsys.readouterr().err
    assert (code, err) == (2, expected.format(t=tmp_path) + "\n")
    assert not (tmp_path / "o").exists()
