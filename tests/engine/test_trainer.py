"""The training loop: logs, checkpoints, exact resume, interruption, divergence, precision."""
import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.checkpoint import load_checkpoint
from iaseg.engine.trainer import Trainer, TrainingError, TrainingInterrupted

from tests.helpers.train import fit, states_equal, tiny


def test_cli_run_writes_logs_checkpoints_and_events(tiny_run):
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    rec = lines[-1]
    assert {"train_loss", "lr", "images_per_s", "time_s", "val", "dynamic_weights"} <= rec.keys()
    assert {"mean", "groups", "per_class"} <= rec["val"].keys()
    assert list(rec["val"]["groups"]) == ["G1", "G2", "G3"]
    # boundary F-score and trimap IoU of every validation, the same numbers `iaseg evaluate` gives
    b = rec["val"]["boundary"]
    assert set(b["f"]) == {"G1", "G2", "G3", "mean"} and b["trimap_widths"] == [2, 4, 8, 16]
    assert len(b["trimap_iou"]["mean"]) == 4
    from iaseg.cli import main
    assert main(["evaluate", "--checkpoint", str(tiny_run / "last.pt"), "--out", str(tiny_run / "ev_b"),
                 "--no-progress", "--batch-size", "4"]) == 0
    ev = json.loads((tiny_run / "ev_b" / "report.json").read_text())["boundary"]
    assert b["f"]["mean"] == pytest.approx(ev["boundary_f"]["mean"]["f"], nan_ok=True)
    assert b["trimap_iou"]["mean"] == pytest.approx(ev["trimap_iou"]["mean"], nan_ok=True)
    assert len(rec["dynamic_weights"]) == 2  # F_1, F_2 of the three-rank IAL
    assert (tiny_run / "config.yaml").is_file() and (tiny_run / "class_stats.json").is_file()
    ckpt = torch.load(tiny_run / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "rng", "config", "classes", "groups"} <= ckpt.keys()
    assert ckpt["epoch"] == 2 and ckpt["classes"][0] == "Sky"
    assert (tiny_run / "best.pt").is_file()
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))


def test_resume_is_bit_exact(tmp_path):
    full = fit(tiny(), tmp_path / "full")
    fit(tiny("train.epochs=1"), tmp_path / "split")
    resumed = fit(tiny(), tmp_path / "split", resume=True)
    assert resumed.epoch == 2
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    assert states_equal(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert states_equal(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert full.best == resumed.best


def test_interrupt_mid_epoch_then_resume_is_bit_exact(tmp_path):
    fit(tiny(), tmp_path / "full")

    def interrupt(trainer, epoch, step):  # a real SIGINT, as Ctrl-C sends
        if epoch == 0 and step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        fit(tiny(), tmp_path / "cut", after_step=interrupt)
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert saved["epoch"] == 0 and saved["step_in_epoch"] == 1
    fit(tiny(), tmp_path / "cut", resume=True)
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert states_equal(a["model"], b["model"])


def test_resume_without_checkpoint_or_with_other_model(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        Trainer(tiny(), tmp_path / "none", resume=True, progress=False)
    fit(tiny("train.epochs=1"), tmp_path / "r")
    with pytest.raises(TrainingError, match="trained with model"):
        Trainer(tiny("model.options.bins=[1, 2, 4, 8]"), tmp_path / "r", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    fit(tiny("train.epochs=1"), tmp_path / "run")
    before = load_checkpoint(tmp_path / "run" / "last.pt")
    trainer = Trainer(tiny("train.epochs=2"), tmp_path / "run", resume=True, progress=False)
    trainer.criterion = lambda logits, target: logits.float().sum() * float("nan")
    with pytest.raises(TrainingError, match="loss became nan.*last good checkpoint"):
        trainer.fit()
    trainer.close()
    after = load_checkpoint(tmp_path / "run" / "last.pt")
    assert after["epoch"] == 1 and states_equal(before["model"], after["model"])


def test_mixed_precision_and_channels_last_run(tmp_path):
    t = fit(tiny("train.epochs=1", "train.amp=bf16", "train.channels_last=true"), tmp_path / "bf16")
    fit(tiny("train.epochs=1"), tmp_path / "fp32")
    assert t.epoch == 1
    bf16, fp32 = (json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[0])
                  for run in ("bf16", "fp32"))
    # same data, seed and schedule: the bf16 epoch's mean loss stays within 2 % of fp32's (measured 0.35 %)
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.02)


def test_training_writes_curves_png(tiny_run):
    from iaseg.metrics import plot_training_curves

    with Image.open(tiny_run / "curves.png") as im:
        assert im.format == "PNG" and im.size[0] >= 400
        written = np.asarray(im.convert("RGB"))
    assert len(np.unique(written.reshape(-1, 3), axis=0)) > 50  # drawn curves, not a blank canvas
    # the figure of the run's own metrics.jsonl, drawn again, is the same picture
    with Image.open(plot_training_curves(tiny_run / "metrics.jsonl", tiny_run / "again.png")) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), written)


class _MovedOffCPU:
    """Stands in for a tensor that `load_checkpoint(map_location="cuda")` moved to the GPU: only
    `.cpu()` gives back the CPU byte tensor the RNG setters accept."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self._tensor = tensor

    def cpu(self) -> torch.Tensor:
        return self._tensor


def test_rng_state_restores_from_a_checkpoint_mapped_to_another_device():
    # `--resume` on CUDA loads last.pt with map_location=cuda: the saved RNG states came back on
    # the GPU and torch.set_rng_state refused them (found on an H100, 2026-11-26).
    from iaseg.engine.trainer import rng_state, set_rng_state

    state = rng_state()
    expected = (torch.rand(4), np.random.rand(4))
    moved = dict(state, torch=_MovedOffCPU(state["torch"]),
                 numpy=dict(state["numpy"], keys=_MovedOffCPU(state["numpy"]["keys"])))
    torch.rand(7), np.random.rand(7)
    set_rng_state(moved)
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1])
