"""`iaseg demo` at a tiny budget."""
import json

from iaseg.cli import main as cli


def test_demo_end_to_end_at_tiny_budget(tmp_path):
    out = tmp_path / "demo"
    assert cli(["demo", "--out", str(out), "--epochs", "1", "--no-progress", "--set", "data.size=[64, 64]",
                "--set", "data.options.length=8", "--set", "train.tensorboard=false"]) == 0
    text = (out / "report.md").read_text()
    assert "G3" in text and "recall" in text.lower() and ("IAL raised" in text or "IAL did not raise" in text)
    ce, ial = (json.loads((out / run / "eval" / "report.json").read_text()) for run in ("weighted_ce", "ial"))
    # the summary quotes the two evaluations
    r0, r1 = ce["groups"]["G3"]["recall"], ial["groups"]["G3"]["recall"]
    d_iou = ial["mean"]["iou"] - ce["mean"]["iou"]
    assert f"{100 * r0:.1f}% -> {100 * r1:.1f}%" in text or f"from {100 * r0:.1f}% to {100 * r1:.1f}%" in text
    assert f"mean IoU changed by {100 * d_iou:+.1f} points" in text
