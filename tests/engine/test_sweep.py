"""The seed-grid runner (iaseg.engine.sweep) and the pairing of seeds across losses."""
from __future__ import annotations

import json

import pytest
import torch

from iaseg.engine.config import load_config
from iaseg.engine.sweep import (SweepError, SweepJob, evaluate_command, job_state, parse_config_spec, parse_seeds,
                                plan_sweep, run_sweep, status_table)
from iaseg.engine.trainer import Trainer

TINY = ["train.tensorboard=false", "train.epochs=1", "data.options.length=4", "data.size=[32,32]",
        "train.val_every=1"]


def test_parse_seeds() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5-6") == [0, 2, 5, 6]
    assert parse_seeds("7") == [7]
    for bad in ("a", "3-1", "0,0", "1-2,2", ""):
        with pytest.raises(SweepError, match="--seeds"):
            parse_seeds(bad)


def test_parse_config_spec() -> None:
    assert parse_config_spec("ce=camvid_study_ce") == ("ce", "camvid_study_ce")
    assert parse_config_spec("configs/camvid_study_ial.yaml") == ("camvid_study_ial", "configs/camvid_study_ial.yaml")
    with pytest.raises(SweepError, match="plain folder name"):
        parse_config_spec("a/b=tiny_synthetic")


def test_plan_is_seed_major_and_checks_configs_first(tmp_path) -> None:
    jobs = plan_sweep(["ce=tiny_synthetic", "ial=tiny_synthetic"], [0, 1], tmp_path, TINY)
    assert [(j.name, j.seed) for j in jobs] == [("ce", 0), ("ial", 0), ("ce", 1), ("ial", 1)]
    assert jobs[3].run_dir == tmp_path / "ial" / "seed1" and jobs[0].epochs == 1
    with pytest.raises(SweepError, match="share the name"):
        plan_sweep(["tiny_synthetic", "tiny_synthetic"], [0], tmp_path)
    with pytest.raises(ValueError, match="not found"):
        plan_sweep(["ce=tiny_synthetic", "nope_config"], [0], tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written while planning


def _trainer(tmp_path, name: str, loss: str, seed: int) -> Trainer:
    cfg = load_config("tiny_synthetic", [*TINY, f"loss.name={loss}", f"train.seed={seed}"])
    return Trainer(cfg, tmp_path / name, progress=False)


def test_same_seed_gives_every_loss_the_same_initialisation_data_order_and_dropout(tmp_path) -> None:
    """Paired seeds: what differs between the CE and IAL runs of one seed is the loss only."""
    ce, ial = _trainer(tmp_path, "ce", "weighted_ce", 3), _trainer(tmp_path, "ial", "ial", 3)
    other = _trainer(tmp_path, "other", "weighted_ce", 4)
    sd_ce, sd_ial = ce.model.state_dict(), ial.model.state_dict()
    assert all(torch.equal(sd_ce[k], sd_ial[k]) for k in sd_ce)
    assert not all(torch.equal(sd_ce[k], other.model.state_dict()[k]) for k in sd_ce)

    def order(t: Trainer, epoch: int) -> list[int]:
        return list(iter(t._loader(t.train_set, True, epoch).sampler))

    assert order(ce, 0) == order(ial, 0) and order(ce, 1) == order(ial, 1)
    assert order(ce, 0) != order(ce, 1)
    ce.close(), ial.close(), other.close()
    # the losses draw no random numbers, so dropout masks match step for step: the global RNG is
    # in the same state after an epoch of each (built and trained one after the other, as in
    # separate processes)
    states = []
    for name, loss in (("ce2", "weighted_ce"), ("ial2", "ial")):
        t = _trainer(tmp_path, name, loss, 3)
        t.fit()
        t.close()
        states.append(torch.load(tmp_path / name / "last.pt", weights_only=True)["rng"]["torch"])
    assert torch.equal(states[0], states[1])


def test_sweep_trains_evaluates_skips_and_resumes(tmp_path) -> None:
    out = tmp_path / "study"
    lines: list[str] = []
    jobs = plan_sweep(["ce=tiny_synthetic", "ial=tiny_synthetic"], [0, 1], out, TINY)
    overrides = [*TINY, "loss.name=weighted_ce"]
    result = run_sweep(jobs[:2], overrides, parallel=2, log=lines.append, threads=1)
    assert not result.failed and len(result.done) == 2, lines
    for job in jobs[:2]:
        state = job_state(job, True)
        assert state.trained(job) and state.evaluated
        report = json.loads((job.run_dir / "eval_val" / "report.json").read_text())
        assert 0 <= report["mean"]["iou"] <= 1 and report["meta"]["train_seed"] == 0
        assert report["meta"]["epoch"] == 1 and report["meta"]["options"]["length"] == 4
        # what `iaseg compare --group` needs: per-image counts and the frontier of the top group
        assert (job.run_dir / "eval_val" / "per_image.npz").is_file()
        assert "G3" in json.loads((job.run_dir / "eval_val" / "frontier.json").read_text())["sets"]
    # seed 0 of both methods trained from the same start on the same data: the same config here,
    # so the same weights
    a = torch.load(jobs[0].run_dir / "last.pt", weights_only=True)["model"]
    b = torch.load(jobs[1].run_dir / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # re-invoking does nothing for finished runs; a longer schedule resumes them
    lines.clear()
    result = run_sweep(jobs[:2], overrides, parallel=1, log=lines.append)
    assert "2 finished, 0 to do" in lines[0] and len(result.done) == 2
    longer = plan_sweep(["ce=tiny_synthetic"], [0], out, [*TINY, "train.epochs=2"])
    lines.clear()
    result = run_sweep(longer, [*overrides, "train.epochs=2"], parallel=1, log=lines.append)
    assert any("resuming after epoch 1" in line for line in lines), lines
    assert job_state(longer[0], True).epoch == 2 and job_state(longer[0], True).evaluated
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["format"] == "iaseg.sweep/1" and summary["jobs"][0]["epoch"] == 2
    table = status_table(jobs, True)
    assert "done, evaluated" in table[0] and "not started" in table[2]

    # --full-resolution: a finished run is evaluated again at the labels' resolution, into its own folder
    full = plan_sweep(["ce=tiny_synthetic"], [0], out, [*TINY, "train.epochs=2"], full_resolution=True)
    assert job_state(full[0], True).trained(full[0]) and not job_state(full[0], True).evaluated
    lines.clear()
    result = run_sweep(full, [*overrides, "train.epochs=2"], parallel=1, log=lines.append)
    assert len(result.done) == 1 and not any(" train " in line for line in lines[1:]), lines
    report = json.loads((full[0].run_dir / "eval_val_full" / "report.json").read_text())
    assert report["meta"]["resolution"] == "labels' native" and job_state(full[0], True).evaluated
    assert json.loads((full[0].run_dir / "eval_val" / "report.json").read_text())["meta"]["resolution"] == "network input"


def test_status_estimates_the_training_time_left_from_recent_epochs(tmp_path) -> None:
    job = SweepJob("ial", "camvid_study_ial", 1, tmp_path / "ial" / "seed1", 60, "val")
    job.run_dir.mkdir(parents=True)
    assert "not started" in status_table([job], True)[0]
    (job.run_dir / "last.pt").write_bytes(b"")
    # epochs 1-6 at 150-160 s, epoch 7 resumed mid-way (40 s): the median of the last 5 is 155 s
    times = [150, 160, 150, 160, 155, 158, 40]
    (job.run_dir / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e, "time_s": t}) + "\n" for e, t in enumerate(times, 1)))
    state = job_state(job, True)
    assert state.epoch == 7 and state.seconds_left(job) == pytest.approx(155 * 53)
    assert "epoch 7/60, about 2.3 h of training left" in status_table([job], True)[0]
    (job.run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 59, "time_s": 120}) + "\n")
    assert "epoch 59/60, about 2 min of training left" in status_table([job], True)[0]
    (job.run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 3}) + "\n")  # no times logged
    assert status_table([job], True)[0].split("  (")[0].endswith("epoch 3/60")


def test_evaluation_uses_the_configs_val_split_and_options(tmp_path) -> None:
    (job,) = plan_sweep(["loso=camvid_loso_ial"], [2], tmp_path)
    cmd = evaluate_command(job)
    assert cmd[cmd.index("--split") + 1] == "train" and "--frontier" in cmd
    options = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--option"]
    assert options == ['sequences=["0006R0"]', "exclude_sequences=[]"]
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "loso" / "seed2" / "eval_train")
    assert "--full-resolution" not in cmd
    (full,) = plan_sweep(["loso=camvid_loso_ial"], [2], tmp_path, full_resolution=True)
    cmd = evaluate_command(full)
    assert "--full-resolution" in cmd and cmd[cmd.index("--out") + 1].endswith("eval_train_full")


def test_sweep_command_line(tmp_path, capsys) -> None:
    from iaseg.cli import main

    out = tmp_path / "s"
    assert main(["sweep", "--config", "a=tiny_synthetic", "--seeds", "0-1", "--out", str(out), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "not started" in lines[0] and "seed 1" in lines[1]
    assert main(["sweep", "--config", "a=tiny_synthetic", "--seeds", "2-1", "--out", str(out)]) == 2
    assert "--seeds '2-1': range 2-1 runs backwards" in capsys.readouterr().err


def test_sweep_reports_a_failing_job_and_goes_on(tmp_path) -> None:
    jobs = plan_sweep(["a=tiny_synthetic", "b=tiny_synthetic"], [0], tmp_path, TINY)
    lines: list[str] = []
    # a "python" that exits 3 for every child: both jobs fail, each is reported with its log
    fake = tmp_path / "fakepython"
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fake.chmod(0o755)
    result = run_sweep(jobs, TINY, parallel=2, python=str(fake), evaluate=False, log=lines.append)
    assert len(result.failed) == 2 and not result.done
    assert all("exited with status 3" in why for _, why in result.failed)
    assert "broken" in (jobs[0].run_dir / "console.log").read_text()
