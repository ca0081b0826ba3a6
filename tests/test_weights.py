"""The published CamVid weights (weights/): loadable, self-describing, and they reproduce the
validation metrics documented next to them (when CamVid is available)."""
import json
from pathlib import Path

import pytest
import torch

from iaseg.checkpoint import model_from_checkpoint
from iaseg.cli import main as cli
from iaseg.data import load_description


WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
LOSSES = {"ce": "weighted_ce", "ial": "ial"}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_weights_are_slim_and_self_describing(loss):
    path = WEIGHTS / f"camvid_erfpspnet_{loss}.pt"
    assert path.stat().st_size <= 12e6
    ckpt = torch.load(path, weights_only=True, map_location="cpu")
    desc = load_description("camvid")
    assert ckpt["classes"] == list(desc.classes)
    assert ckpt["groups"] == {g: list(m) for g, m in desc.groups.items()}
    assert ckpt["config"]["loss"]["name"] == LOSSES[loss] and ckpt["config"]["data"]["dataset"] == "camvid"
    assert ckpt["config"]["data"]["root"] is None
    assert "optimizer" not in ckpt
    model, meta = model_from_checkpoint(ckpt)
    assert meta.input_size == (360, 480) and meta.description == desc
    with torch.no_grad():
        out = model(torch.rand(1, 3, 360, 480))
    assert out.shape == (1, 11, 360, 480) and torch.isfinite(out).all()


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_weights_reproduce_their_documented_val_metrics(loss, camvid_root, tmp_path):
    weights = WEIGHTS / f"camvid_erfpspnet_{loss}.pt"
    expected = json.loads((WEIGHTS / f"camvid_erfpspnet_{loss}.val_report.json").read_text())
    assert cli(["evaluate", "--checkpoint", str(weights), "--root", str(camvid_root), "--split", "val",
                "--out", str(tmp_path), "--no-progress"]) == 0
    got = json.loads((tmp_path / "report.json").read_text())
    assert got["meta"]["images"] == expected["meta"]["images"] == 101
    # fp32 on another CPU may flip a handful of pixels: 0.05 points of slack
    for k in ("precision", "recall", "iou"):
        assert got["mean"][k] == pytest.approx(expected["mean"][k], abs=5e-4)
        for g in expected["groups"]:
            assert got["groups"][g][k] == pytest.approx(expected["groups"][g][k], abs=5e-4)
