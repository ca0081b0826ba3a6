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
# file stem -> (network, loss, input size, spatial input size or None)
FILES = {
    "camvid_erfpspnet_ce": ("erfpspnet", "weighted_ce", (360, 480), None),
    "camvid_erfpspnet_ial": ("erfpspnet", "ial", (360, 480), None),
    "camvid_bierfpspnet_ce": ("bierfpspnet", "weighted_ce", (176, 240), (360, 480)),
}


@pytest.mark.parametrize("stem", sorted(FILES))
def test_weights_are_slim_and_self_describing(stem):
    name, loss, size, spatial = FILES[stem]
    path = WEIGHTS / f"{stem}.pt"
    assert path.stat().st_size <= 12e6
    ckpt = torch.load(path, weights_only=True, map_location="cpu")
    desc = load_description("camvid")
    assert ckpt["model_name"] == name
    assert ckpt["classes"] == list(desc.classes)
    assert ckpt["groups"] == {g: list(m) for g, m in desc.groups.items()}
    assert ckpt["config"]["loss"]["name"] == loss and ckpt["config"]["data"]["dataset"] == "camvid"
    assert ckpt["config"]["data"]["root"] is None
    assert "optimizer" not in ckpt
    model, meta = model_from_checkpoint(ckpt)
    assert meta.input_size == size and meta.spatial_size == spatial and meta.description == desc
    inputs = (torch.rand(1, 3, *size),) + ((torch.rand(1, 3, *spatial),) if spatial else ())
    with torch.no_grad():
        out = model(*inputs)
    # logits at the (context) input size; BiERF-PSPNet's too (docs/networks.md)
    assert out.shape == (1, 11, *size) and torch.isfinite(out).all()


@pytest.mark.parametrize("stem", sorted(FILES))
def test_weights_reproduce_their_documented_val_metrics(stem, camvid_root, tmp_path):
    weights = WEIGHTS / f"{stem}.pt"
    expected = json.loads((WEIGHTS / f"{stem}.val_report.json").read_text())
    # every file is scored at the labels' 360x480 (BiERF-PSPNet's context input is 176x240)
    assert cli(["evaluate", "--checkpoint", str(weights), "--root", str(camvid_root), "--split", "val",
                "--full-resolution", "--out", str(tmp_path), "--no-progress"]) == 0
    got = json.loads((tmp_path / "report.json").read_text())
    assert got["meta"]["images"] == expected["meta"]["images"] == 101
    # fp32 on another CPU may flip a handful of pixels: 0.05 points of slack
    for k in ("precision", "recall", "iou"):
        assert got["mean"][k] == pytest.approx(expected["mean"][k], abs=5e-4)
        for g in expected["groups"]:
            assert got["groups"][g][k] == pytest.approx(expected["groups"][g][k], abs=5e-4)


@pytest.mark.parametrize("stem, size", [("camvid_erfpspnet_ce", (360, 480)), ("camvid_erfpspnet_ce", (360, 720)),
                                        ("camvid_bierfpspnet_ce", (176, 240))])
def test_shipped_int8_irs_are_checked_and_belong_to_their_weights(stem, size):
    """The int8 IRs beside the CE weights record a passed accuracy guard and the weights'
    digest, so load_runner picks them at their sizes (fails when a weights file changes and
    weights/make_int8.sh was not re-run)."""
    from iaseg.inference import openvino as ovb
    from iaseg.inference.checked_int8 import find_checked_int8

    if not ovb.openvino_available():
        pytest.skip("openvino is not installed")
    ckpt = WEIGHTS / f"{stem}.pt"
    ir = WEIGHTS / f"{stem}.int8-{size[0]}x{size[1]}.xml"
    record = ovb.read_openvino_metadata(ir).accuracy_check
    assert record["passed"] and record["images"] == 101 and record["data"] == "camvid val"
    assert record["miou_change"] >= -0.5 and record["top_group_recall_change"] >= -1.0
    model, meta = model_from_checkpoint(ckpt)
    assert find_checked_int8(ckpt, model, meta.with_(input_size=size)) == (ir, ir.name)
