"""The training loop: logs, checkpoints, exact resume, interruption, divergence, precision."""
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

from iaseg.checkpoint import load_checkpoint, save_checkpoint
from iaseg.engine.trainer import Trainer, TrainingError, TrainingInterrupted

from tests.helpers.train import fit, states_equal, subprocess_env, tiny


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


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted tiny run (2 epochs of 2 steps), keeping epoch_N.pt, for the resume tests."""
    out = tmp_path_factory.mktemp("full")
    fit(tiny("train.save_every=1"), out)
    return out


def test_resume_is_bit_exact(tmp_path, full_run):
    fit(tiny("train.epochs=1"), tmp_path / "split")
    resumed = fit(tiny(), tmp_path / "split", resume=True)
    assert resumed.epoch == 2
    a, b = load_checkpoint(full_run / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    assert states_equal(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert states_equal(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert a["best_metric"] == resumed.best
    # train.save_every=1 kept every epoch: epoch_1.pt is the state the split run stopped at
    first = load_checkpoint(full_run / "epoch_1.pt")
    assert first["epoch"] == 1 and load_checkpoint(full_run / "epoch_2.pt")["epoch"] == 2
    split_first = torch.load(tmp_path / "split" / "last.pt", weights_only=True)  # now epoch 2
    assert split_first["epoch"] == 2 and not (tmp_path / "split" / "epoch_1.pt").exists()


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _interrupt_at(epoch_at, step_at):
    def interrupt(trainer, epoch, step):  # a real SIGINT, as Ctrl-C sends
        if epoch == epoch_at and step == step_at:
            os.kill(os.getpid(), signal.SIGINT)
    return interrupt


@pytest.mark.parametrize("step", [1, 2])   # the middle, and after the last step of the epoch
def test_interrupt_mid_epoch_then_resume_is_bit_exact(tmp_path, full_run, step):
    with pytest.raises(TrainingInterrupted):
        fit(tiny(), tmp_path / "cut", after_step=_interrupt_at(0, step))
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert saved["epoch"] == 0 and saved["step_in_epoch"] == step and saved["samples_in_epoch"] == 4 * step
    resumed = fit(tiny(), tmp_path / "cut", resume=True)
    a, b = load_checkpoint(full_run / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert states_equal(a["model"], b["model"])
    # the resumed epoch's loss covers the whole epoch: the same number as the uninterrupted run's
    full, cut = _records(full_run), _records(tmp_path / "cut")
    assert [r["train_loss"] for r in cut] == [r["train_loss"] for r in full]
    assert [r["images"] for r in cut] == [8, 8]
    assert resumed.resumed_from == {"epoch": 0, "step": step, "checkpoint": str(tmp_path / "cut" / "last.pt")}
    assert f"resumed from epoch 0, step {step} ({tmp_path / 'cut' / 'last.pt'})" in (tmp_path / "cut" / "train.log").read_text()


def _children(pid):
    """Pids of the processes whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:   # gone meanwhile
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_to_the_process_group_with_loader_workers_saves_and_resumes(tmp_path):
    """`kill -TERM -PGID` (a scheduler, a terminal) reaches the loader's workers too: training still
    stops cleanly (the workers leave the signal to the main process, which finishes its step, saves
    last.pt and exits 130), and last.pt resumes."""
    out = tmp_path / "run"
    opts = ["data.num_workers=1", "data.size=[32, 32]", "data.val_split=null"]
    cmd = [sys.executable, "-m", "iaseg", "train", "--config", "tiny_synthetic", "--out", str(out), "--epochs", "200",
           "--no-progress", "--set", "train.tensorboard=false"] + [a for o in opts for a in ("--set", o)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                            start_new_session=True)   # its own process group, as a job started from a shell
    try:
        own = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        deadline, worker = time.time() + 180, None
        while worker is None and time.time() < deadline and proc.poll() is None:
            worker = next((c for c in _children(proc.pid) if Path(f"/proc/{c}/cmdline").read_bytes() == own), None)
            time.sleep(0.05)
        assert worker is not None, "no loader worker started: " + (proc.communicate()[1][-2000:] if proc.poll() else "")
        os.killpg(proc.pid, signal.SIGTERM)   # the main process and its worker alike
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted: saved" in err, err[-3000:]
    saved = load_checkpoint(out / "last.pt")
    resumed = fit(tiny(*opts, f"train.epochs={saved['epoch'] + 1}"), out, resume=True)
    assert resumed.resumed_from["epoch"] == saved["epoch"] and resumed.epoch == saved["epoch"] + 1
    assert _records(out)[-1]["epoch"] == saved["epoch"] + 1


def test_augmented_resume_with_loader_workers_is_exact(tmp_path):
    """Augmentation draws depend on (seed, epoch, sample) only: 0 workers uninterrupted and 2
    workers interrupted mid-epoch give the same weights and the same logged loss."""
    opts = ("data.augment=true", "train.epochs=1", "data.options.length=6", "train.batch_size=2")
    fit(tiny(*opts, "data.num_workers=0"), tmp_path / "w0")
    with pytest.raises(TrainingInterrupted):
        fit(tiny(*opts, "data.num_workers=2"), tmp_path / "w2", after_step=_interrupt_at(0, 1))
    fit(tiny(*opts, "data.num_workers=2"), tmp_path / "w2", resume=True)
    a, b = load_checkpoint(tmp_path / "w0" / "last.pt"), load_checkpoint(tmp_path / "w2" / "last.pt")
    assert states_equal(a["model"], b["model"])
    assert _records(tmp_path / "w0")[0]["train_loss"] == _records(tmp_path / "w2")[0]["train_loss"]


def test_resume_with_another_batch_size_goes_on_at_the_right_sample(tmp_path):
    with pytest.raises(TrainingInterrupted):
        fit(tiny("train.epochs=1"), tmp_path / "run", after_step=_interrupt_at(0, 1))   # 4 of 8 samples
    seen = []
    t = Trainer(tiny("train.epochs=1", "train.batch_size=3"), tmp_path / "run", resume=True, progress=False,
                after_step=lambda tr, e, s: seen.append((s, tr.samples_in_epoch)))
    t.fit()
    t.close()
    assert seen == [(2, 7), (3, 8)]   # the 4 samples left, in batches of 3 and 1
    assert _records(tmp_path / "run")[0]["images"] == 8
    assert ("resume: train.batch_size 4 -> 3 (applied from here on: the epoch goes on at sample 4 of each process)"
            in (tmp_path / "run" / "train.log").read_text())


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    fit(tiny("train.epochs=1"), out)
    return out


@pytest.mark.parametrize("override, key, old, new", [
    ("loss.name=ce", "loss.name", "'ial'", "'ce'"),
    ("train.seed=1", "train.seed", "0", "1"),
    ("data.size=[32, 32]", "data.size", "[64, 64]", "[32, 32]"),
    ("optim.decay_scope=authors", "optim.decay_scope", "'conv_kernels'", "'authors'"),
])
def test_resume_refuses_changes_it_cannot_honour(tmp_path, one_epoch, override, key, old, new):
    with pytest.raises(TrainingError) as info:
        Trainer(tiny(override), one_epoch, resume=True, progress=False)
    assert str(info.value) == (f"--resume: {key} was {old} in {one_epoch / 'last.pt'}, the config asks for {new}; "
                               "it cannot change in the middle of a run (keep it, or train into a new folder)")


def test_resume_with_weights_for_another_class_count_is_one_line(tmp_path, one_epoch):
    # e.g. a description edited in place between the runs: the config looks the same
    import shutil

    from iaseg.checkpoint import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    ckpt = load_checkpoint(run / "last.pt")
    head = [k for k, v in ckpt["model"].items() if v.ndim == 4 and v.shape[0] == len(ckpt["classes"])][-1]
    ckpt["model"][head] = ckpt["model"][head][:-1]
    save_checkpoint(ckpt, run / "last.pt")
    with pytest.raises(CheckpointError) as info:
        Trainer(tiny("train.epochs=2"), run, resume=True, progress=False)
    n = len(ckpt["classes"])
    assert str(info.value) == (f"checkpoint {run / 'last.pt'} holds weights for {n - 1} classes, expected {n} "
                               "(use the dataset description the checkpoint was trained with)")


@pytest.mark.parametrize("overrides, lr, base", [
    (("optim.lr=5e-4",), 5e-4, 5e-4),
    (("optim.milestones=[1]",), 1e-4, 1e-3),           # the milestone is behind: decayed at once
    (("optim.lr=2e-3", "optim.milestones=[1, 5]", "optim.gamma=0.5"), 1e-3, 2e-3),
])
def test_resume_applies_optimiser_changes(one_epoch, overrides, lr, base):
    t = Trainer(tiny("train.epochs=2", *overrides), one_epoch, resume=True, progress=False)
    t.close()
    assert [g["lr"] for g in t.optimizer.param_groups] == pytest.approx([lr, lr], rel=1e-12)
    assert t.scheduler.base_lrs == [base, base]


def test_resume_with_a_new_lr_trains_with_it_logs_it_and_config_yaml_says_so(tmp_path, one_epoch):
    import shutil

    from iaseg.engine.config import load_config

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    fit(tiny("train.epochs=2", "optim.lr=5e-4"), run, resume=True)
    assert [r["lr"] for r in _records(run)] == [1e-3, 5e-4]
    saved = load_config(run / "config.yaml")
    assert saved.optim.lr == 5e-4 and saved.train.epochs == 2
    log = (run / "train.log").read_text()
    assert "resume: train.epochs 1 -> 2 (applied from here on)" in log
    assert "resume: optim.lr 0.001 -> 0.0005 (applied from here on)" in log
    changes = json.loads((run / "run.json").read_text())["sessions"][-1]["changes"]
    assert {"key": "optim.lr", "old": 1e-3, "new": 5e-4} in changes


def test_resume_warns_about_another_thread_count(tmp_path, one_epoch, capsys):
    before = torch.get_num_threads()
    saved = load_checkpoint(one_epoch / "last.pt")["run"]["threads"]
    other = 1 if saved != 1 else 2
    try:
        t = Trainer(tiny(f"train.threads={other}"), one_epoch, resume=True, progress=False)
        t.close()
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert (f"warning: {one_epoch / 'last.pt'} was trained with {saved} threads, this resume uses {other}: the "
            f"weights will differ slightly from an uninterrupted run (set train.threads={saved} to match)") in err


def test_no_augmentation_data_order_is_unchanged(tmp_path):
    """The per-epoch order of samples without augmentation, as main at 5f6fc81 drew it (study
    runs are compared against it)."""
    t = Trainer(tiny(), tmp_path / "run", progress=False)
    order = [[p.rsplit("/", 1)[1] for b in t._loader(t.train_set, True, e) for p in b["path"]] for e in range(3)]
    t.close()
    assert order == [["000004", "000000", "000007", "000003", "000002", "000005", "000001", "000006"],
                     ["000005", "000004", "000002", "000006", "000007", "000003", "000001", "000000"],
                     ["000000", "000004", "000007", "000002", "000006", "000005", "000001", "000003"]]


def test_resume_without_checkpoint_or_with_other_model(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        Trainer(tiny(), tmp_path / "none", resume=True, progress=False)
    fit(tiny("train.epochs=1"), tmp_path / "r")
    with pytest.raises(TrainingError, match="trained with model"):
        Trainer(tiny("model.options.bins=[1, 2, 4, 8]"), tmp_path / "r", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, one_epoch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    before = load_checkpoint(run / "last.pt")
    trainer = Trainer(tiny("train.epochs=2"), run, resume=True, progress=False)
    trainer.criterion = lambda logits, target: logits.float().sum() * float("nan")
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    trainer.close()
    assert str(info.value) == (f"loss became nan at epoch 2, step 1: training stopped; the last good checkpoint is "
                               f"{run / 'last.pt'} (epoch 1) (try a lower optim.lr, or train.amp=off)")
    after = load_checkpoint(run / "last.pt")
    assert after["epoch"] == 1 and states_equal(before["model"], after["model"])


def test_nan_loss_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    trainer = Trainer(tiny("train.epochs=1"), tmp_path / "run", progress=False)
    trainer.criterion = lambda logits, target: logits.float().sum() * 0 + float("inf")
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    trainer.close()
    assert str(info.value) == ("loss became inf at epoch 1, step 1: training stopped; no checkpoint has been saved yet "
                               "(it diverged in the run's first epoch) (try a lower optim.lr, or train.amp=off)")
    assert not list((tmp_path / "run").glob("*.pt"))


def test_non_finite_weights_are_never_saved(tmp_path, one_epoch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)

    def poison(trainer, epoch, step):  # finite loss, then non-finite weights after the epoch's last step
        if step == 2:
            next(trainer.model.parameters()).data.view(-1)[0] = float("nan")

    trainer = Trainer(tiny("train.epochs=2"), run, resume=True, progress=False, after_step=poison)
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    trainer.close()
    message = str(info.value)
    assert message.startswith("the weights became non-finite (model.") and "at the end of epoch 2: " in message
    assert message.endswith(f"{run / 'last.pt'} not written; the last good checkpoint is {run / 'last.pt'} (epoch 1) "
                            "(try a lower optim.lr, or train.amp=off)")
    after = load_checkpoint(run / "last.pt")
    assert after["epoch"] == 1 and all(torch.isfinite(v).all() for v in after["model"].values() if v.is_floating_point())


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, one_epoch, monkeypatch):
    import shutil

    from iaseg.io import WriteError
    from tests.helpers.faults import FailingWrites

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    before = load_checkpoint(run / "last.pt")

    def disk_full(trainer, epoch, step):   # the next write (epoch 2's last.pt) finds the disk full
        if step == 2:
            FailingWrites(monkeypatch, nth=1)

    trainer = Trainer(tiny("train.epochs=2"), run, resume=True, progress=False, after_step=disk_full)
    with pytest.raises(WriteError) as info:
        trainer.fit()
    monkeypatch.undo()
    trainer.close()
    assert str(info.value) == f"cannot write {run / 'last.pt'}: No space left on device (ENOSPC)"
    after = load_checkpoint(run / "last.pt")
    assert after["epoch"] == 1 and states_equal(before["model"], after["model"])
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert [r["epoch"] for r in _records(run)] == [1]


def test_mixed_precision_and_channels_last_run(tmp_path):
    t = fit(tiny("train.epochs=1", "train.amp=bf16", "train.channels_last=true"), tmp_path / "bf16")
    fit(tiny("train.epochs=1"), tmp_path / "fp32")
    assert t.epoch == 1
    bf16, fp32 = (json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[0])
                  for run in ("bf16", "fp32"))
    # same data, seed and schedule: the bf16 epoch's mean loss stays within 2 % of fp32's (measured 0.35 %)
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.02)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_is_warned_once(tmp_path, capsys, monkeypatch, native):
    """bf16 autocast on a CPU without AVX-512 BF16 / AMX is emulated (an epoch of the CamVid recipe
    went from 113 s to over 20 min on an AVX2-only EPYC): the run says so at its start, on stderr
    and in train.log; with native bf16, or with amp off, it does not."""
    import iaseg.engine.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "native_bf16_cpu", lambda: native)
    fit(tiny("train.epochs=1", "train.amp=bf16"), tmp_path / "bf16")
    fit(tiny("train.epochs=1"), tmp_path / "off")
    err = capsys.readouterr().err
    expected = 0 if native else 1
    assert err.count("warning: train.amp=bf16 on a CPU without native bf16") == expected
    assert (tmp_path / "bf16" / "train.log").read_text().count("without native bf16") == expected
    assert "without native bf16" not in (tmp_path / "off" / "train.log").read_text()


def test_training_writes_curves_png(tiny_run):
    from iaseg.metrics import plot_training_curves

    with Image.open(tiny_run / "curves.png") as im:
        assert im.format == "PNG" and im.size[0] >= 400
        written = np.asarray(im.convert("RGB"))
    assert len(np.unique(written.reshape(-1, 3), axis=0)) > 50  # drawn curves, not a blank canvas
    # the figure of the run's own metrics.jsonl, drawn again, is the same picture
    with Image.open(plot_training_curves(tiny_run / "metrics.jsonl", tiny_run / "again.png")) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), written)


def test_same_seed_gives_the_same_weights_with_or_without_the_caches_and_with_loader_workers(tmp_path):
    """The class statistics are counted on the first start only (later starts read
    class_stats.json): counting must not move the seeded RNGs, or a restarted run, or one whose
    folder holds the cache, trains other weights. With augmentation, which draws random numbers."""
    import shutil

    opts = ("data.augment=true", "train.epochs=1", "data.options.length=4", "train.batch_size=2")
    fresh = tmp_path / "fresh"
    fit(tiny(*opts), fresh)
    reference = load_checkpoint(fresh / "last.pt")["model"]
    stats = (fresh / "class_stats.json").read_bytes()
    for workers in (0, 2):
        run = tmp_path / f"cached_w{workers}"
        run.mkdir()
        (run / "class_stats.json").write_bytes(stats)      # a restart after a kill before the first save
        (run / "preflight.json").write_text('{"checked": []}\n')
        fit(tiny(*opts, f"data.num_workers={workers}"), run)
        assert (run / "class_stats.json").read_bytes() == stats   # the cache was used as it was
        assert states_equal(load_checkpoint(run / "last.pt")["model"], reference), workers
        assert _records(run)[0]["train_loss"] == _records(fresh)[0]["train_loss"]


def test_class_statistics_are_those_of_the_labels_not_of_an_augmentation(tmp_path):
    plain = Trainer(tiny("train.epochs=1", "data.options.length=4"), tmp_path / "plain", progress=False)
    augmented = Trainer(tiny("train.epochs=1", "data.options.length=4", "data.augment=true"),
                        tmp_path / "aug", progress=False)
    plain.close(), augmented.close()
    assert json.loads((tmp_path / "aug" / "class_stats.json").read_text())["stats"] == \
        json.loads((tmp_path / "plain" / "class_stats.json").read_text())["stats"]
    assert torch.equal(plain.class_weights, augmented.class_weights)


def test_input_size_without_data_size_is_the_frame_as_read_and_draws_no_random_numbers(tmp_path):
    """data.size null with a cropping augmentation: the network's input size is the size of the
    frames (synthetic: 360 x 480), not the crop of one augmented item, and finding it out leaves
    the seeded RNGs where they were (same draws as the same run without augmentation)."""
    base = ("train.epochs=1", "data.options.length=2", "data.size=null", "data.val_split=null", "loss.name=ce")
    states = {}
    for name, extra in {"plain": (), "crop": ("data.augment={crop: [32, 48]}",)}.items():
        trainer = Trainer(tiny(*base, *extra), tmp_path / name, progress=False)
        trainer.close()
        states[name] = (trainer.input_size, torch.get_rng_state(), np.random.get_state()[1].copy())
    assert states["plain"][0] == states["crop"][0] == [360, 480]
    assert torch.equal(states["plain"][1], states["crop"][1])
    assert np.array_equal(states["plain"][2], states["crop"][2])


def test_the_nan_stop_never_names_a_diverged_checkpoint_as_good(tmp_path, one_epoch):
    """Weights that blow up to 1e10 stay finite for a while: the epoch-2 last.pt is finite but
    diverged. It must not replace the epoch-1 checkpoint as the 'last good' one, which is kept
    (as last_good.pt) instead of being overwritten."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    before = load_checkpoint(run / "last.pt")

    def blow_up(trainer, epoch, step):  # the end of epoch 2: weights at 1e10, then a NaN loss in epoch 3
        if epoch == 1 and step == 2:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = 1e10
            trainer.criterion = lambda logits, target: logits.float().sum() * float("nan")

    trainer = Trainer(tiny("train.epochs=3"), run, resume=True, progress=False, after_step=blow_up)
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    trainer.close()
    assert str(info.value) == (
        f"loss became nan at epoch 3, step 1: training stopped; the last good checkpoint is {run / 'last_good.pt'} "
        f"(epoch 1); {run / 'last.pt'} (epoch 2) holds finite but diverged weights (max |w| 1e+10) "
        "(try a lower optim.lr, or train.amp=off)")
    good = load_checkpoint(run / "last_good.pt")
    assert good["epoch"] == 1 and states_equal(good["model"], before["model"])
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_a_sane_run_writes_no_last_good_copy(tiny_run):
    assert not (tiny_run / "last_good.pt").exists()


@pytest.mark.parametrize("text", ['{"sessions": [{"started": "x"}', "[1, 2]", '{"sessions": 3}', "\x00\x01"])
def test_a_corrupt_run_json_is_kept_aside_on_resume_not_replaced(tmp_path, one_epoch, capsys, text):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    (run / "run.json").write_text(text)
    trainer = Trainer(tiny("train.epochs=1"), run, resume=True, progress=False)
    trainer.fit()
    trainer.close()
    aside = [p for p in run.iterdir() if p.name.startswith("run.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == text
    sessions = json.loads((run / "run.json").read_text())["sessions"]
    assert len(sessions) == 1 and sessions[0]["resumed_from"]["epoch"] == 1
    err = capsys.readouterr().err
    assert f"warning: {run / 'run.json'} is unreadable (" in err and f"kept as {aside[0].name}" in err
    assert f"kept as {aside[0].name}" in (run / "train.log").read_text()


def test_a_signal_during_validation_stops_it_and_resume_is_exact(tmp_path, full_run):
    """SIGINT while epoch 1 is validated: the validation stops at its next batch (no metrics
    line yet), last.pt holds epoch 1 with its validation pending; the resume validates it and
    trains on to the uninterrupted run's weights and records."""
    run = tmp_path / "cut"
    trainer = Trainer(tiny(), run, progress=False)
    plain, calls = trainer.validate, []

    def validate_with_a_signal():
        calls.append(trainer.epoch)
        if trainer.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)   # arrives before the first validation batch
        return plain()

    trainer.validate = validate_with_a_signal
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    trainer.close()
    assert calls == [1] and not (run / "metrics.jsonl").exists()
    saved = load_checkpoint(run / "last.pt")
    assert saved["epoch"] == 1 and saved["pending_record"]["validate"] is True
    fit(tiny(), run, resume=True)
    assert states_equal(load_checkpoint(full_run / "last.pt")["model"], load_checkpoint(run / "last.pt")["model"])
    full, cut = _records(full_run), _records(run)
    assert [(r["epoch"], r["train_loss"], r["val"]["mean"]) for r in cut] == \
        [(r["epoch"], r["train_loss"], r["val"]["mean"]) for r in full]
