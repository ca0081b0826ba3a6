"""`iaseg benchmark --mode train` on crops: full-frame and crop rows side by side, epoch seconds,
the augmentation's cost, the crop and precision options (schema and arithmetic, no timing asserts)."""
import json

import pytest
import torch

from iaseg import cli
from iaseg.speed.train import CAMVID_TRAIN_IMAGES, DEFAULT_CROP, crop_size, train_precisions


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_crop_size_defaults_fits_and_refuses():
    assert crop_size(None, (360, 480)) == DEFAULT_CROP == (288, 384)
    assert crop_size(None, (64, 64)) is None                 # the default crop does not fit: full frames only
    assert crop_size("off", (360, 480)) is None
    assert crop_size((64, 64), (64, 64)) is None              # a crop of the whole frame is the frame
    assert crop_size((32, 48), (64, 64)) == (32, 48)
    with pytest.raises(ValueError, match="--crop 128x64 does not fit the 64x64 frames"):
        crop_size((128, 64), (64, 64))


def test_train_precisions_list():
    assert train_precisions("all") == ["fp32", "fast-previous", "fast"]
    assert train_precisions("fp32,fast") == ["fp32", "fast"]
    with pytest.raises(ValueError, match="--train-precision 'fp16'"):
        train_precisions("fp16")


def test_full_frames_and_crops_side_by_side(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert cli.main(["benchmark", "--mode", "train", "--size", "64x96", "--crop", "32x48", "--batch", "2",
                     "--warmup", "0", "--repeats", "1", "--threads", "1", "--loss", "ce",
                     "--train-precision", "fp32,fast", "--no-peak", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert "--train-precision fp32,fast --crop 32x48" in r["command"]
    assert r["settings"]["crop"] == [32, 48] and r["settings"]["epoch_images"] == CAMVID_TRAIN_IMAGES
    rows = {x["name"]: x for x in r["results"]}
    assert list(rows) == ["ce fp32", "ce fp32 crop 32x48", "ce fast", "ce fast crop 32x48"]
    for name, row in rows.items():
        assert row["size"] == ([32, 48] if "crop" in name else [64, 96])
        assert row["epoch_s"] == pytest.approx(CAMVID_TRAIN_IMAGES / row["images_per_s"])
        if "augment_ms_per_image" in row:
            assert row["epoch_s_with_augment"] == pytest.approx(
                row["epoch_s"] + CAMVID_TRAIN_IMAGES * row["augment_ms_per_image"] / 1000)
    crop = rows["ce fast crop 32x48"]
    assert crop["crop_speedup"] == pytest.approx(crop["images_per_s"] / rows["ce fast"]["images_per_s"])
    assert crop["speedup"] == pytest.approx(crop["images_per_s"] / rows["ce fp32 crop 32x48"]["images_per_s"])
    # the crop's step counts a quarter of the frame's convolution FLOPs
    assert r["model"]["gflops_per_step_crop"] == pytest.approx(r["model"]["gflops_per_step_image"] / 4, rel=0.05)
    assert set(r["augment"]) == {"full", "crop"} and "timed" in r["augment"]["crop"]
    assert "the images/s of full frames" in text and "augmentation" in text


def test_a_crop_larger_than_the_frame_is_one_line_error(capsys):
    assert cli.main(["benchmark", "--mode", "train", "--size", "64x64", "--crop", "128x64", "--repeats", "1"]) == 2
    assert "--crop 128x64 does not fit the 64x64 frames" in capsys.readouterr().err
