"""`iaseg benchmark --mode video`: the whole predict path against the model alone on a
synthetic clip, interleaved rounds, the stage profile and memory (schema, no timing asserts)."""
import json

import pytest
import torch

from iaseg import cli
from iaseg.speed.video import STAGES, float_overlay, synthetic_clip
from iaseg.visualize import overlay, palette_lut

av = pytest.importorskip("av")


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_video_mode_rows_profile_and_memory(tiny_run, tmp_path, capsys):
    out = tmp_path / "v.json"
    assert cli.main(["benchmark", "--mode", "video", "--checkpoint", str(tiny_run / "best.pt"), "--frames", "6",
                     "--frame-size", "48x64", "--repeats", "2", "--batch", "2", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["mode"] == "video" and r["command"].startswith("iaseg benchmark --mode video")
    assert "--checkpoint" in r["command"] and "--frames 6 --frame-size 48x64" in r["command"]
    s = r["settings"]
    assert (s["frames"], s["frame_size"], s["batch"], s["rounds"]) == (6, [48, 64], 2, 2)
    rows = {x["name"]: x for x in r["results"]}
    assert list(rows) == ["model alone", "end to end (pipelined)", "end to end, before (serial)"]
    model, stream = rows["model alone"], rows["end to end (pipelined)"]
    assert model["of_model"] == pytest.approx(1.0) and model["frame_ms"]["n"] == 2
    assert stream["of_model"] == pytest.approx(model["frame_ms"]["median"] / stream["frame_ms"]["median"])
    assert len(stream["of_model_per_round"]) == 2 and stream["rss_mb_at_frame_6"] > 0
    assert stream["fps"] == pytest.approx(1000 / stream["frame_ms"]["median"])
    assert list(r["profile_ms_per_frame"]) == list(STAGES) and all(v >= 0 for v in r["profile_ms_per_frame"].values())
    assert "end to end (pipelined)" in text and "profile, one stage after another" in text


def test_video_mode_needs_a_checkpoint(capsys):
    assert cli.main(["benchmark", "--mode", "video"]) == 2
    assert "--mode video needs --checkpoint" in capsys.readouterr().err


def test_the_before_rows_overlay_is_the_overlay(tmp_path):
    """The 'before' row's float blend draws what `overlay` draws (it differs only in speed)."""
    import numpy as np

    from iaseg.data import load_description

    desc = load_description("camvid")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    label = rng.integers(0, 12, (30, 40))
    assert np.array_equal(float_overlay(image, label, palette_lut(desc), desc.num_classes), overlay(image, label, desc))
    clip = synthetic_clip(tmp_path / "c.mp4", 5, (32, 48))
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (32, 48, 3)
