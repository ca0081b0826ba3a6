"""Training engine: runs, logs, exact resume, interruption, divergence, DDP, evaluate, predict."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.checkpoint import load_checkpoint
from iaseg.cli import main as cli
from iaseg.engine.config import load_config
from iaseg.engine.trainer import Trainer, TrainingError, TrainingInterrupted

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def tiny(*overrides: str):
    return load_config("tiny_synthetic", ["train.tensorboard=false", *overrides])


def fit(cfg, out, **kw):
    trainer = Trainer(cfg, out, progress=False, **kw)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert cli(["train", "--config", "tiny_synthetic", "--out", str(out), "--no-progress"]) == 0
    return out


def test_cli_run_writes_logs_checkpoints_and_events(tiny_run):
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    rec = lines[-1]
    assert {"train_loss", "lr", "images_per_s", "time_s", "val", "dynamic_weights"} <= rec.keys()
    assert {"mean", "groups", "per_class"} <= rec["val"].keys()
    assert list(rec["val"]["groups"]) == ["G1", "G2", "G3"]
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


def test_sigterm_saves_and_prints_resume_command(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out),
                             "--epochs", "200", "--no-progress", "--set", "train.tensorboard=false"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Resume with: iaseg train --config tiny_synthetic" in err and "--resume" in err
    assert 1 <= load_checkpoint(out / "last.pt")["epoch"] < 200


def test_mixed_precision_and_channels_last_run(tmp_path):
    t = fit(tiny("train.epochs=1", "train.amp=bf16", "train.channels_last=true"), tmp_path / "bf16")
    assert t.epoch == 1


def test_ddp_two_gloo_processes_agree_with_single_process_evaluation(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out), "--device", "cpu",
           "--no-progress", "--set", "train.tensorboard=false", "--set", "data.options.length=6"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(last) == 2  # rank 0 logs alone
    ckpt = load_checkpoint(out / "last.pt")
    assert "module." not in next(iter(ckpt["model"]))  # unwrapped weights
    # the all-reduced validation metrics equal a single-process evaluation of the final model
    assert cli(["evaluate", "--checkpoint", str(out / "last.pt"), "--out", str(tmp_path / "ev"),
                "--no-progress", "--device", "cpu"]) == 0
    single = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert np.asarray(single["confusion_matrix"]).sum() > 0
    for metric in ("precision", "recall", "iou"):
        a, b = last[-1]["val"]["mean"][metric], single["mean"][metric]
        assert a == pytest.approx(b, abs=2e-3)


def test_evaluate_cli_writes_reports(tiny_run, tmp_path):
    assert cli(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(tmp_path / "ev"),
                "--no-progress"]) == 0
    for name in ("report.json", "report.md", "report.csv", "confusion_matrix.png"):
        assert (tmp_path / "ev" / name).is_file()
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert list(report["per_class"])[:2] == ["Sky", "Building"]
    assert report["meta"]["split"] == "val"


def test_evaluate_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_text("garbage")
    assert cli(["evaluate", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "x.pt" in err and len(err.splitlines()) == 1


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


def test_demo_end_to_end_at_tiny_budget(tmp_path):
    out = tmp_path / "demo"
    assert cli(["demo", "--out", str(out), "--epochs", "1", "--no-progress", "--set", "data.size=[64, 64]",
                "--set", "data.options.length=8", "--set", "train.tensorboard=false"]) == 0
    text = (out / "report.md").read_text()
    assert "G3" in text and "recall" in text.lower() and ("IAL raised" in text or "IAL did not raise" in text)
    assert (out / "weighted_ce" / "eval" / "report.json").is_file() and (out / "ial" / "eval" / "report.json").is_file()


def test_training_writes_curves_png(tiny_run):
    with Image.open(tiny_run / "curves.png") as im:
        assert im.format == "PNG"


def test_release_weights_are_slim_and_evaluate_like_the_training_checkpoint(tiny_run, tmp_path, capsys):
    weights = tmp_path / "w" / "tiny.pt"
    assert cli(["export", "--checkpoint", str(tiny_run / "best.pt"), "--format", "checkpoint", "--half",
                "--out", str(weights)]) == 0
    assert "OK (>= 99.0%)" in capsys.readouterr().out
    slim = torch.load(weights, weights_only=True)
    full = load_checkpoint(tiny_run / "best.pt")
    assert "optimizer" not in slim and "rng" not in slim
    assert all(v.dtype == torch.float16 for v in slim["model"].values() if v.is_floating_point())
    assert slim["config"]["data"]["root"] is None and slim["config"]["loss"] == full["config"]["loss"]
    assert slim["classes"] == full["classes"] and slim["groups"] == full["groups"]
    assert slim["epoch"] == full["epoch"]
    assert weights.stat().st_size < 0.5 * (tiny_run / "best.pt").stat().st_size
    reports = {}
    for name, ckpt in (("full", tiny_run / "best.pt"), ("slim", weights)):
        assert cli(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / name), "--no-progress"]) == 0
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())
    m_full = np.array(reports["full"]["confusion_matrix"])
    m_slim = np.array(reports["slim"]["confusion_matrix"])
    assert m_full.sum() == m_slim.sum()
    assert np.abs(m_full - m_slim).sum() / 2 <= 0.01 * m_full.sum()  # fp16 weights flip < 1% of pixels


def test_published_weights_need_root_for_real_datasets(tiny_run, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_run / "best.pt")
    ckpt["config"]["data"].update(dataset="camvid", root=None)
    path = tmp_path / "camvid_like.pt"
    torch.save(ckpt, path)
    assert cli(["evaluate", "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "give --root DIR" in err and len(err.splitlines()) == 1
