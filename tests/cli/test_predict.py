"""`iaseg predict`: an image, a folder, a video; errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from iaseg.checkpoint import model_from_checkpoint
from iaseg.cli import main as cli


def _frames(n, h=48, w=64):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_predict_image_folder_and_video(tiny_run, tmp_path):
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
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            logits = model(F.interpolate(x, size=meta.input_size, mode="bilinear", align_corners=False))
        expected = F.interpolate(logits, size=(48, 64), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        got = np.asarray(Image.open(tmp_path / "fp32" / "labels" / f"frame{i}.png"))
        assert (got == expected).mean() >= 0.999  # BN folded in the runner: a near-tie may flip
        colours = np.asarray(Image.open(tmp_path / "fp32" / "masks" / f"frame{i}.png"))
        assert np.array_equal(colours, np.asarray(meta.description.palette, dtype=np.uint8)[got])

    av = pytest.importorskip("av")
    video = tmp_path / "clip.mp4"
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for f in _frames(4):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert cli(["predict", "--checkpoint", ckpt, "--input", str(video), "--out", str(tmp_path / "vid"),
                "--save-labels", "--no-progress"]) == 0
    names = sorted(p.name for p in (tmp_path / "vid" / "labels").iterdir())
    assert names == [f"clip_{i:06d}.png" for i in range(4)]


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
