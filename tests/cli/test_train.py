"""`iaseg train`: SIGTERM saves and prints the resume command; two DDP processes."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from iaseg.checkpoint import load_checkpoint
from iaseg.cli import main as cli

from tests.helpers.train import subprocess_env


def test_sigterm_saves_and_prints_resume_command(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out),
                             "--epochs", "200", "--no-progress", "--set", "train.tensorboard=false"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Resume with: iaseg train --config tiny_synthetic" in err and "--resume" in err
    assert 1 <= load_checkpoint(out / "last.pt")["epoch"] < 200


def test_ddp_two_gloo_processes_agree_with_single_process_evaluation(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out), "--device", "cpu",
           "--no-progress", "--set", "train.tensorboard=false", "--set", "data.options.length=6"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
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
