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


@pytest.mark.parametrize("size", [(360, 480), (360, 720)])
def test_shipped_int8_irs_are_checked_and_belong_to_the_ce_weights(size):
    """The int8 IRs beside the CE weights record a passed accuracy guard and the CE weights'
    digest, so load_runner picks them at their sizes (fails when the CE file changes and
    weights/make_int8.sh was not re-run)."""
    from iaseg.inference import openvino as ovb
    from iaseg.inference.checked_int8 import find_checked_int8

    if not ovb.openvino_available():
        pytest.skip("openvino is not installed")
    ckpt = WEIGHTS / "camvid_erfpspnet_ce.pt"
    ir = WEIGHTS / f"camvid_erfpspnet_ce.int8-{size[0]}x{size[1]}.xml"
    record = ovb.read_openvino_metadata(ir).accuracy_check
    assert record["passed"] and record["images"] == 101 and record["data"] == "camvid val"
    assert record["miou_change"] >= -0.5 and record["top_group_recall_change"] >= -1.0
    model, meta = model_from_checkpoint(ckpt)
    assert find_checked_int8(ckpt, model, meta.with_(input_size=size)) == (ir, ir.name)
