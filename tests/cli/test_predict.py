"""`iaseg predict`: an image, a folder (recursive), a video in and an annotated video out; errors."""
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from iaseg.checkpoint import model_from_checkpoint
from iaseg.cli import main as cli
from iaseg.data.io import resize_image


def _frames(n, h=48, w=64):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_predict_image_and_folder(tiny_run, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(_frames(3)):
        Image.fromarray(f).save(folder / f"frame{i}.png")
    ckpt = str(tiny_run / "best.pt")
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(folder / "frame0.png"), "--out",
                str(tmp_path / "one"), "--save-labels", "--overlay", "--no-progress"]) == 0
    label = np.asarray(Image.open(tmp_path / "one" / "labels" / "frame0.png"))
    assert label.shape == (48, 64) and label.max() < 11
    assert (tmp_path / "one" / "masks" / "frame0.png").is_file()
    assert (tmp_path / "one" / "overlays" / "frame0.png").is_file()
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(folder), "--out", str(tmp_path / "many"),
                "--batch-size", "2", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "many" / "masks").iterdir()) == ["frame0.png", "frame1.png", "frame2.png"]
    # the values: exact fp32 labels are those of the trained network run by hand
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(folder), "--out", str(tmp_path / "fp32"),
                "--precision", "fp32", "--save-labels", "--no-progress"]) == 0
    model, meta = model_from_checkpoint(ckpt)
    for i, frame in enumerate(_frames(3)):
        # resized as in training: PIL bilinear on the uint8 image
        x = torch.from_numpy(resize_image(frame, meta.input_size).copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            logits = model(x)
        expected = F.interpolate(logits, size=(48, 64), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        got = np.asarray(Image.open(tmp_path / "fp32" / "labels" / f"frame{i}.png"))
        assert (got == expected).mean() >= 0.999  # BN folded in the runner: a near-tie may flip
        colours = np.asarray(Image.open(tmp_path / "fp32" / "masks" / f"frame{i}.png"))
        assert np.array_equal(colours, np.asarray(meta.description.palette, dtype=np.uint8)[got])



def _write_video(path, frames, rate):
    av = pytest.importorskip("av")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_predict_video_writes_an_annotated_mp4_at_the_source_rate(tiny_run, tmp_path, capsys):
    av = pytest.importorskip("av")
    ckpt = str(tiny_run / "best.pt")
    video = _write_video(tmp_path / "clip.mp4", _frames(6, 48, 80), Fraction(15, 2))
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(video), "--out", str(tmp_path / "vid"),
                "--precision", "fp32", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "wrote " + str(tmp_path / "vid" / "clip_overlay.mp4") + ": 6 frames at 7.5 fps, 80x48" in printed
    assert re.search(r"speed: [\d.]+ frames/s end to end, the model alone [\d.]+/s \([\d.]+x; batch 4\)", printed)
    assert sorted(p.name for p in (tmp_path / "vid").iterdir()) == ["clip_overlay.mp4"]  # no PNGs by default
    with av.open(str(tmp_path / "vid" / "clip_overlay.mp4")) as c:
        s = c.streams.video[0]
        assert s.average_rate == Fraction(15, 2)
        out = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(out) == 6 and out[0].shape == (48, 80, 3)
    # --save-frames keeps the per-frame PNGs; the video frames are the overlays (lossy codec: close)
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(video), "--out", str(tmp_path / "frames"),
                "--precision", "fp32", "--save-frames", "--overlay", "--save-labels", "--no-progress"]) == 0
    names = sorted(p.name for p in (tmp_path / "frames" / "labels").iterdir())
    assert names == [f"clip_{i:06d}.png" for i in range(6)]
    for i, frame in enumerate(out):
        png = np.asarray(Image.open(tmp_path / "frames" / "overlays" / f"clip_{i:06d}.png")).astype(int)
        assert np.abs(frame.astype(int) - png).mean() < 12
    # --highlight: only the most important group is coloured; --legend draws the names in a corner
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(video), "--out", str(tmp_path / "hl"),
                "--precision", "fp32", "--save-frames", "--overlay", "--highlight", "--legend", "--no-progress"]) == 0
    model, meta = model_from_checkpoint(ckpt)
    g3 = meta.description.group_indices()[-1]
    labels = np.asarray(Image.open(tmp_path / "frames" / "labels" / "clip_000000.png"))
    hl = np.asarray(Image.open(tmp_path / "hl" / "overlays" / "clip_000000.png"))
    source = [f.to_ndarray(format="rgb24") for f in av.open(str(video)).decode(video=0)][0]
    rows = slice(38, None)  # below the legend box (4 lines of 8 pixels)
    untouched = ~np.isin(labels, g3)[rows]
    assert np.array_equal(hl[rows][untouched], source[rows][untouched])
    assert not np.array_equal(hl[:8, :8], source[:8, :8])  # the legend


def test_predict_missing_input_is_clear(tiny_run, tmp_path, capsys):
    assert cli(["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(tmp_path / "nope.png"),
                "--out", str(tmp_path / "o")]) == 2
    assert "nope.png" in capsys.readouterr().err


@pytest.mark.skipif(not __import__("iaseg.inference", fromlist=["openvino_available"]).openvino_available(),
                    reason="openvino is not installed")
def test_predict_with_openvino_says_which_path_runs(tiny_run, tmp_path, capsys):
    from PIL import Image

    img = tmp_path / "in.png"
    Image.fromarray(np.full((48, 80, 3), 90, np.uint8)).save(img)
    assert cli(["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(img), "--out",
                str(tmp_path / "o"), "--backend", "openvino", "--precision", "fp32", "--save-labels",
                "--no-progress"]) == 0
    assert "running openvino fp32 on cpu" in capsys.readouterr().out
    labels = np.asarray(Image.open(tmp_path / "o" / "labels" / "in.png"))
    assert labels.shape == (48, 80) and labels.max() < 11


def test_predict_recursive_mirrors_the_input_tree(tiny_run, tmp_path, capsys):
    frames = _frames(3)
    for rel, f in zip(["a.png", "day/a.png", "day/dusk/b.jpg"], frames):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f).save(tmp_path / "in" / rel)
    ckpt = str(tiny_run / "best.pt")
    assert cli(["predict", "--checkpoint", str(tiny_run), "--input", str(tmp_path / "in"), "--out",
                str(tmp_path / "flat"), "--no-progress"]) == 0
    assert f"using {tiny_run / 'best.pt'}" in capsys.readouterr().out  # a run folder: its best.pt
    assert sorted(p.relative_to(tmp_path / "flat").as_posix() for p in (tmp_path / "flat").rglob("*.png")) == [
        "masks/a.png"]
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(tmp_path / "in"), "--out", str(tmp_path / "tree"),
                "--recursive", "--save-labels", "--legend", "--keep-aspect"]) == 0
    written = sorted(p.relative_to(tmp_path / "tree").as_posix() for p in (tmp_path / "tree").rglob("*.png"))
    assert written == ["labels/a.png", "labels/day/a.png", "labels/day/dusk/b.png",
                       "masks/a.png", "masks/day/a.png", "masks/day/dusk/b.png"]
    captured = capsys.readouterr()
    assert "segmented 3 image(s)" in captured.out
    assert "predicting: 100%" in captured.err and "3/3 [" in captured.err  # a total, hence an ETA
    for rel in ("a", "day/a", "day/dusk/b"):
        assert np.asarray(Image.open(tmp_path / "tree" / "masks" / f"{rel}.png")).shape == (48, 64, 3)
        assert np.asarray(Image.open(tmp_path / "tree" / "labels" / f"{rel}.png")).shape == (48, 64)


@pytest.mark.parametrize("files, extra, message", [
    (["a.png", "a.jpg"], [], "would both be written as a.png"),
    (["A.png", "a.jpg"], [], "would both be written as a.png"),   # case-insensitive disks
    (["x/a.png", "x/A.jpg"], ["--recursive"], "would both be written as x/a.png"),
    (["a.png"], ["--save-frames"], "--save-frames is for video input"),
    (["a.png"], ["--highlight", "G9"], "--highlight: no group 'G9'"),
    (["sub/a.png"], [], "no images"),
    ([], ["--input", "nope.png"], "nope.png: no such file or folder"),
    ([], ["--input", "clip.mp4", "--save-labels"], "add --save-frames"),
])
def test_predict_bad_inputs_are_one_line(tiny_run, tmp_path, capsys, files, extra, message):
    for rel in files:
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_frames(1)[0]).save(tmp_path / "in" / rel)
    (tmp_path / "in").mkdir(exist_ok=True)
    if "clip.mp4" in extra:
        _write_video(tmp_path / "in" / "clip.mp4", _frames(2), 5)
    extra = [str(tmp_path / "in" / e) if e in ("nope.png", "clip.mp4") else e for e in extra]
    args = ["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(tmp_path / "in"),
            "--out", str(tmp_path / "o"), "--no-progress", *extra]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_predict_video_without_pyav_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    video = _write_video(tmp_path / "clip.mp4", _frames(2), 5)
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # as if PyAV were not installed
    assert cli(["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(video), "--out",
                str(tmp_path / "o"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == "iaseg predict: error: video needs PyAV: pip install 'iaseg[video]'"
