"""`iaseg train`: SIGTERM saves and prints the resume command; two DDP processes."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def _torchrun(out, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out), "--device", "cpu",
            "--no-progress", "--set", "train.tensorboard=false", "--set", "data.options.length=6", *extra]


def _start_and_wait_for_an_epoch(cmd, out):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    deadline = time.time() + 180
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    return proc


def _rank_pids(launcher_pid):
    """The training processes torchrun started (its children), lowest pid (rank 0) first."""
    children = (Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split())
    return sorted(int(p) for p in children)


def test_ddp_a_killed_rank_stops_the_others_with_one_line(tmp_path):
    """kill -9 of rank 1 mid-training: rank 0's collective fails; it stops with one line naming
    the last good checkpoint (not gloo's traceback), and that checkpoint loads."""
    import os

    out = tmp_path / "ddp"
    proc = _start_and_wait_for_an_epoch(_torchrun(out, "--epochs", "200"), out)
    os.kill(_rank_pids(proc.pid)[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if "iaseg train: error:" in line]
    assert len(lines) == 1, err[-3000:]
    assert "another process of this run stopped (" in lines[0] and "Connection" in lines[0]
    assert lines[0].endswith(f"training stopped; the last good checkpoint is {out / 'last.pt'} "
                             f"(epoch {load_checkpoint(out / 'last.pt')['epoch']})")
    assert "[rank0]: Traceback" not in err and "gloo/transport" not in err
    assert "stopped: another process of this run stopped" in (out / "train.log").read_text()


@pytest.mark.slow
def test_ddp_sigterm_to_the_launcher_leaves_a_resumable_last_pt(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("two 2-process runs, ~40 s: run with -m slow")
    out = tmp_path / "ddp"
    proc = _start_and_wait_for_an_epoch(_torchrun(out, "--epochs", "200"), out)
    proc.send_signal(signal.SIGTERM)       # what a scheduler sends to the job: torchrun forwards it
    _, err = proc.communicate(timeout=120)
    assert f"interrupted: saved {out / 'last.pt'}. Resume with: iaseg train" in err, err[-3000:]
    ckpt = load_checkpoint(out / "last.pt")
    epoch, step = ckpt["epoch"], ckpt["step_in_epoch"]
    assert 1 <= epoch < 200
    res = subprocess.run(_torchrun(out, "--epochs", str(epoch + 1), "--resume"), capture_output=True, text=True,
                         env=subprocess_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed from epoch {epoch}, step {step}" in (out / "train.log").read_text()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, epoch + 2))
    assert load_checkpoint(out / "last.pt")["epoch"] == epoch + 1


def _setup(tmp_path, case):
    """(argv tail, expected stderr line) of one bad-input case; {out}/{cfg} filled in."""
    out, cfg = tmp_path / "run", tmp_path / "exp.yaml"
    if case == "out is a file":
        out.write_text("x")
    elif case in ("another run", "resume and overwrite"):
        out.mkdir()
        (out / "last.pt").write_bytes(b"x")
    elif case == "empty config":
        cfg.write_text("")
    elif case == "no data section":
        cfg.write_text("model: {name: erfpspnet}\ntrain: {epochs: 1}\n")
    return out, cfg


BAD_TRAIN = [
    ("out is a file", ["--config", "tiny_synthetic"], "--out {out}: is a file, not a run folder"),
    ("another run", ["--config", "tiny_synthetic"],
     "--out {out} holds another run (last.pt): continue it with --resume, or start afresh with --overwrite "
     "(deletes its checkpoints and logs), or pick an empty folder"),
    ("resume and overwrite", ["--config", "tiny_synthetic", "--resume", "--overwrite"],
     "--resume continues the run in --out, --overwrite deletes it: give one of them"),
    ("empty config", ["--config", "{cfg}"],
     "{cfg}: empty config (a config names at least its model and data sections)"),
    ("no data section", ["--config", "{cfg}"],
     "{cfg}: no data section (a config names at least its model and data sections)"),
]


@pytest.mark.parametrize("case, args, message", BAD_TRAIN, ids=[c[0] for c in BAD_TRAIN])
def test_bad_train_inputs_end_in_one_line(tmp_path, capsys, case, args, message):
    out, cfg = _setup(tmp_path, case)
    argv = ["train", *[a.format(cfg=cfg) for a in args], "--out", str(out), "--no-progress",
            "--set", "train.tensorboard=false"]
    assert cli(argv) == 2
    assert capsys.readouterr().err == f"iaseg train: error: {message.format(out=out, cfg=cfg)}\n"


def test_a_full_disk_at_the_start_ends_in_one_line_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch):
    from tests.helpers.faults import FailingWrites

    out = tmp_path / "run"
    FailingWrites(monkeypatch, nth=1)
    assert cli(["train", "--config", "tiny_synthetic", "--out", str(out), "--no-progress",
                "--set", "train.tensorboard=false"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"iaseg train: error: cannot write {out}/") and err.endswith(
        ": No space left on device (ENOSPC)\n")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_run_describes_itself(tiny_run):
    """run.json, train.log, config.yaml's header, timestamps in metrics.jsonl, run info in checkpoints."""
    import platform

    import torch
    import yaml

    sessions = json.loads((tiny_run / "run.json").read_text())["sessions"]
    assert len(sessions) == 1
    info = sessions[0]
    assert info["torch"] == str(torch.__version__) and info["python"] == platform.python_version()
    assert {"iaseg", "git_commit", "git_dirty", "command", "threads", "started", "host"} <= info.keys()
    assert info["resumed_from"] is None and info["changes"] == []
    header = [line for line in (tiny_run / "config.yaml").read_text().splitlines() if line.startswith("#")]
    assert header[0].startswith(f"# started {info['started']} on ") and f"torch {torch.__version__}" in header[1]
    assert f"{info['threads']} threads" in header[2]
    assert yaml.safe_load((tiny_run / "config.yaml").read_text())["train"]["epochs"] == 2
    log = (tiny_run / "train.log").read_text().splitlines()
    assert "training erfpspnet on synthetic (8 images)" in log[0]
    epoch_lines = [line for line in log if "  epoch " in line]
    assert len(epoch_lines) == 2 and "| run ETA " in epoch_lines[0] and "run ETA" not in epoch_lines[1]
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["time"].endswith("Z") and r["time"][:4].isdigit() for r in records)
    ckpt = load_checkpoint(tiny_run / "last.pt")
    assert ckpt["run"]["started"] == info["started"] and ckpt["run"]["threads"] == info["threads"]
    assert ckpt["pending_record"] is None and ckpt["samples_in_epoch"] == 0
