"""The training loop: one process or many (torchrun + DDP), exact resume, AMP, logging.

A run folder holds: config.yaml (the resolved config, with a comment header saying who ran it),
run.json (versions, git commit, command line, threads, start time of every session), train.log
(what the console showed), metrics.jsonl (one line per epoch, timestamped), last.pt (every epoch
before its validation, again after it, and on Ctrl-C/SIGTERM), best.pt (best validation score),
epoch_N.pt (with train.save_every), class_stats.json and preflight.json (caches), tb/
(TensorBoard events).

Resume is exact: the data order of an epoch depends only on (seed, epoch), augmentation draws
only on (seed, epoch, sample index), and a checkpoint stores the RNG state, the samples already
seen in the epoch and the epoch's partial loss sums.

What the run is built from (datasets, class weights, loss, parameter groups) is in
engine/run_setup.py, what it writes down (logs, metrics.jsonl, TensorBoard, run.json) in
engine/run_log.py; this module is the loop, its checkpoints and its stops.
"""
from __future__ import annotations

import math
import os
import random
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from iaseg.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from iaseg.engine.config import Config
from iaseg.engine.distributed import (DistInfo, all_reduce_sum_, barrier, cleanup, init_distributed,
                                      peer_failure, resolve_device)
from iaseg.engine.errors import TrainingError, TrainingInterrupted
from iaseg.engine.evaluator import evaluate_loader
from iaseg.engine.preflight import preflight
from iaseg.engine.resume import (DIVERGED_WEIGHT, RESUMABLE, config_changes, kept_rng_state, largest_parameter,
                                 nonfinite_entries, rng_state, set_rng_state, stop_on_signals)
from iaseg.engine.run_folder import prepare_run_folder, run_info, utc_now
from iaseg.engine.run_log import RunLog, compact_report, duration
from iaseg.engine.run_setup import (build_datasets, build_training_loss, class_weights, decay_parameter_groups,
                                    input_size)
from iaseg.engine.samplers import ShardSampler, SkipSampler
from iaseg.engine.schedule import apply_schedule, build_scheduler
from iaseg.engine.step import autocast_context, model_inputs
from iaseg.hardware import native_bf16_cpu
from iaseg.models import build_model, input_names


class _ValidationStopped(Exception):
    """Ctrl-C/SIGTERM during validation (single process): caught by _end_epoch."""


# ---------------------------------------------------------------------------------------------
# small pieces

def lookup(report: dict[str, Any], dotted: str) -> float:
    """'mean.iou' / 'groups.G3.recall' -> value from a report dict (NaN if missing)."""
    node: Any = report
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return float("nan")
        node = node[part]
    return float("nan") if node is None else float(node)


# ---------------------------------------------------------------------------------------------

class Trainer:
    """Builds data, model, loss and optimiser from a Config and trains with `fit()`.

    hooks: optional callables `after_step(trainer, epoch, step)` used by tests and the demo.
    """

    def __init__(self, cfg: Config, out_dir: str | Path, resume: bool = False, progress: bool = True,
                 after_step: Callable[["Trainer", int, int], None] | None = None, overwrite: bool = False,
                 command: list[str] | None = None) -> None:
        self.cfg, self.out = cfg, Path(out_dir)
        self.progress, self.after_step = progress, after_step
        self.dist: DistInfo = init_distributed(cfg.train.device)
        self.device = resolve_device(cfg.train.device, self.dist)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        # refuses a folder holding another run (unless overwrite), removes stale temp files
        notes = self._on_main(lambda: prepare_run_folder(self.out, resume, overwrite)) or []
        self.runlog = RunLog(self.out, self.dist.is_main)
        if resume and not (self.out / "last.pt").is_file():
            raise TrainingError(f"--resume: no checkpoint {self.out / 'last.pt'} to resume from")
        self.run = run_info(command, self.device, self.dist.world_size)
        for note in notes:
            self._log(note)

        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)

        self.train_set, self.val_set = build_datasets(cfg)
        # every file the run will read, once, before the first epoch (cached in the run folder)
        # (by role: the val split may be the train split with other options, e.g. leave-one-sequence-out)
        with kept_rng_state():  # a cache hit skips it: it must not move the seeded RNGs
            self._on_main(lambda: preflight({"training data": self.train_set, "validation data": self.val_set},
                                            cache_dir=self.out, progress=progress))
        self.description = self.train_set.description
        self.num_classes = self.description.num_classes
        self.ignore_index = self.description.ignore_index
        self.input_size = input_size(cfg, self.train_set)

        self.model_name = cfg.model.name
        self.model = build_model(self.model_name, self.num_classes, **cfg.model.options).to(self.device)
        self.input_names = input_names(self.model_name)  # which of a batch's images the network takes
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        with kept_rng_state():  # a cached class_stats.json skips the counting: same draws either way
            self.class_weights = class_weights(cfg, self.train_set, self.num_classes, self.ignore_index, self.out,
                                               self.dist.is_main, progress)
        self.criterion = build_training_loss(cfg, self.description, self.class_weights, self.device)

        o = cfg.optim
        groups = decay_parameter_groups(self.model, self.model_name, o.weight_decay, o.decay_scope)
        self.optimizer = torch.optim.Adam(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps)
        self.scheduler = build_scheduler(self.optimizer, o, cfg.train.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.amp == "fp16")

        self.epoch, self.step_in_epoch = 0, 0
        self.samples_in_epoch = 0                       # this process's samples of the current epoch
        self.epoch_loss_sum, self.epoch_images = 0.0, 0  # the current epoch's partial sums (all processes)
        self.pending: dict[str, Any] | None = None      # a finished epoch not yet validated/logged
        self.best = -math.inf
        self.last_good: str | None = None               # the last checkpoint with sane weights (see _track)
        self.diverged_note = ""                         # why last.pt is not that one
        self.last_report: dict[str, Any] = {}
        self.resumed_from: dict[str, Any] | None = None
        self.changes: list[tuple[str, Any, Any]] = []
        self._timing = {"train_s": 0.0, "steps": 0, "val_s": 0.0, "vals": 0}  # this session, for the ETA
        self.stop_flag = {"stop": False}  # set by Ctrl-C/SIGTERM or request_stop()
        if resume:
            self._load_state(load_checkpoint(self.out / "last.pt", map_location=self.device))

        self.net: nn.Module = self.model
        if self.dist.enabled:
            # SyncBatchNorm across processes on CUDA only (PyTorch has no CPU implementation):
            # CPU/gloo processes keep per-process BatchNorm statistics, like DataParallel
            if self.device.type == "cuda":
                self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.runlog.open_tensorboard(cfg.train.tensorboard)
        self.writer = self.runlog.writer

    # -- construction helpers ----------------------------------------------------------------
    def _on_main(self, work: Callable[[], Any]) -> Any:
        """Run `work` on rank 0 only; if it fails there, every process stops (instead of the
        others waiting for rank 0 forever), rank 0 with the error itself."""
        result, error = None, None
        if self.dist.is_main:
            try:
                result = work()
            except Exception as e:  # noqa: BLE001 - re-raised below, after telling the others
                error = e
        if self.dist.enabled:
            failed = all_reduce_sum_(torch.tensor([float(error is not None)], device=self.device))
            if error is None and failed[0] > 0:
                raise TrainingError("process 0 stopped before training (its error is on its console)")
        if error is not None:
            raise error
        return result

    def _loader(self, dataset: Any, train: bool, epoch: int, skip: int = 0) -> DataLoader:
        """The loader of an epoch; `skip`: samples of this process already trained on."""
        from iaseg.data import build_loader
        from iaseg.data.loader import SeededItems

        batch = self.cfg.train.batch_size if train else (self.cfg.train.val_batch_size or self.cfg.train.batch_size)
        sampler: Sampler[int]
        if train:
            # DistributedSampler also serves a single process: its order depends only on
            # (seed, epoch), which is what makes mid-epoch resume exact.
            sampler = DistributedSampler(dataset, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                         shuffle=True, seed=self.cfg.train.seed, drop_last=False)
            sampler.set_epoch(epoch)
            if skip:
                sampler = SkipSampler(sampler, skip)
            if getattr(dataset, "augment", None) is not None:  # draws from (seed, epoch, index) only
                dataset = SeededItems(dataset, self.cfg.train.seed, epoch)
        else:
            # every validation image exactly once across ranks (DistributedSampler would pad)
            sampler = ShardSampler(len(dataset), self.dist.rank, self.dist.world_size)
        return build_loader(dataset, batch_size=batch, shuffle=False, sampler=sampler,
                            num_workers=self.cfg.data.num_workers, seed=self.cfg.train.seed * 1000 + epoch,
                            drop_last=False)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "samples_in_epoch": self.samples_in_epoch,
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_images": self.epoch_images,
            "pending_record": self.pending,
            "rng": rng_state(),
            "best_metric": self.best,
            "config": self.cfg.to_dict(),
            "run": {**self.run, "saved": utc_now(), "threads": torch.get_num_threads()},
            "model_name": self.model_name,
            "model_options": dict(self.cfg.model.options),
            "description": self.description.to_dict(),
            "classes": list(self.description.classes),
            "groups": {k: list(v) for k, v in self.description.groups.items()},
            "class_weights": self.class_weights,
            "input_size": list(self.input_size),
            "spatial_size": list(self.cfg.data.spatial_size) if self.cfg.data.spatial_size else None,
        }

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        last = self.out / "last.pt"
        saved_cfg = ckpt.get("config") or {}
        if saved_cfg.get("model") != self.cfg.to_dict()["model"]:
            raise TrainingError(f"--resume: {last} was trained with model "
                                f"{saved_cfg.get('model')}, the config asks for {self.cfg.to_dict()['model']}")
        changes = config_changes(saved_cfg, self.cfg.to_dict())
        refused = [c for c in changes if c[0] not in RESUMABLE]
        if refused:
            key, old, new = refused[0]
            more = f" (and {len(refused) - 1} more: {', '.join(c[0] for c in refused[1:])})" if len(refused) > 1 else ""
            raise TrainingError(f"--resume: {key} was {old!r} in {last}, the config asks for {new!r}{more}; it "
                                "cannot change in the middle of a run (keep it, or train into a new folder)")
        bad = nonfinite_entries(ckpt["model"])
        if bad:
            raise TrainingError(f"--resume: {last} holds non-finite weights ({bad[0]}); train afresh with --overwrite")
        # one line naming last.pt, e.g. when a description edited in place changed the class count
        load_model_state(self.model, ckpt["model"], self.num_classes, str(last))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") or not self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])   # else: fp16 switched on now, a fresh scaler
        self.epoch, self.step_in_epoch = int(ckpt["epoch"]), int(ckpt.get("step_in_epoch", 0))
        old_batch = int((saved_cfg.get("train") or {}).get("batch_size", self.cfg.train.batch_size))
        self.samples_in_epoch = int(ckpt.get("samples_in_epoch", self.step_in_epoch * old_batch))
        if self.dist.is_main:  # the partial sums are global: one process carries them on
            self.epoch_loss_sum = float(ckpt.get("epoch_loss_sum", 0.0))
            self.epoch_images = int(ckpt.get("epoch_images", 0))
        self.pending = ckpt.get("pending_record")
        self.best = float(ckpt.get("best_metric", -math.inf))
        set_rng_state(ckpt["rng"])
        self.changes = changes
        if self.cfg.optim.schedule == "poly" or any(key.startswith("optim.") for key, _, _ in changes):
            self._apply_optim_config()   # poly: its horizon follows train.epochs, which may have changed
        self.resumed_from = {"epoch": self.epoch, "step": self.step_in_epoch, "checkpoint": str(last)}
        self._track("last.pt", self._where(last))
        threads = (ckpt.get("run") or {}).get("threads")
        if threads and threads != torch.get_num_threads():
            self._log(f"warning: {last} was trained with {threads} threads, this resume uses "
                      f"{torch.get_num_threads()}: the weights will differ slightly from an uninterrupted run "
                      f"(set train.threads={threads} to match)", err=True)

    def _apply_optim_config(self) -> None:
        """After loading a checkpoint (whose optimiser and scheduler bring their own settings),
        make the config's optim values the ones in force: the learning rate is the config's
        base rate under its schedule at the current epoch."""
        apply_schedule(self.scheduler, self.optimizer, self.cfg.optim, self.cfg.train.epochs,
                       (self.cfg.optim.weight_decay, 0.0))

    def _where(self, path: Path) -> str:
        return f"{path} (epoch {self.epoch}" + (f", step {self.step_in_epoch}" if self.step_in_epoch else "") + ")"

    def request_stop(self) -> None:
        """Stop after the current step and save last.pt (what Ctrl-C does)."""
        self.stop_flag["stop"] = True

    def save(self, name: str) -> Path:
        """Write a checkpoint of the current state, never one with non-finite weights (every
        process checks: the weights are the same on all)."""
        path = self.out / name
        state = self.state_dict()
        bad = nonfinite_entries({"model": state["model"], "optimizer": state["optimizer"]["state"]})
        if bad:
            when = (f"epoch {self.epoch + 1}, step {self.step_in_epoch}" if self.step_in_epoch
                    else f"the end of epoch {self.epoch}")
            raise TrainingError(f"the weights became non-finite ({bad[0]}) at {when}: {path} not written; "
                                f"{self._last_good_words('no checkpoint has been saved yet')} "
                                "(try a lower optim.lr, or train.amp=off)")
        if (self.dist.is_main and name == "last.pt" and self.last_good and self.last_good.startswith(str(path) + " ")
                and largest_parameter(self.model) > DIVERGED_WEIGHT and path.is_file()):
            # finite but diverged weights never replace the only sane checkpoint: it moves aside
            os.replace(path, self.out / "last_good.pt")
            self.last_good = self.last_good.replace(str(path), str(self.out / "last_good.pt"), 1)
        if self.dist.is_main:
            save_checkpoint(state, path)
        if name == "last.pt":
            self._track(name, self._where(path))
        return path

    def _track(self, name: str, where: str) -> None:
        """After last.pt was saved or loaded: it is the last good checkpoint when its parameters are
        sane (max |w| <= DIVERGED_WEIGHT); finite but diverged weights leave the previous one."""
        big = largest_parameter(self.model)
        if big <= DIVERGED_WEIGHT:
            self.last_good, self.diverged_note = where, ""
        else:
            self.diverged_note = f"{where} holds finite but diverged weights (max |w| {big:.3g})"

    def _last_good_words(self, none: str) -> str:
        words = f"the last good checkpoint is {self.last_good}" if self.last_good else none
        return words + (f"; {self.diverged_note}" if self.diverged_note else "")

    # -- training -----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until cfg.train.epochs; returns the last validation report (or {})."""
        cfg = self.cfg.train
        if self.dist.is_main:
            self.runlog.write_run_description(self.run, self.resumed_from, self.changes, self.cfg)
            self._log(f"training {self.model_name} on {self.cfg.data.dataset} ({len(self.train_set)} images) "
                      f"with {self.cfg.loss.name} for {cfg.epochs} epochs on {self.device}"
                      + (f" x{self.dist.world_size} processes" if self.dist.enabled else "")
                      + f", {torch.get_num_threads()} threads")
            if cfg.amp == "bf16" and self.device.type == "cpu" and not native_bf16_cpu():
                self._log("warning: train.amp=bf16 on a CPU without native bf16 (AVX-512 BF16 or AMX): bf16 is "
                          "emulated here and can run many times slower than train.amp=off", err=True)
            if self.resumed_from:
                r = self.resumed_from
                self._log(f"resumed from epoch {r['epoch']}, step {r['step']} ({r['checkpoint']})")
                for key, old, new in self.changes:
                    extra = (f": the epoch goes on at sample {self.samples_in_epoch} of each process"
                             if key == "train.batch_size" else "")
                    self._log(f"resume: {key} {old!r} -> {new!r} (applied from here on{extra})")
        flag = self.stop_flag
        try:
            with stop_on_signals(flag):
                if self.pending is not None:  # stopped after the epoch's checkpoint, before its record
                    self._end_epoch(dict(self.pending["record"]), time.perf_counter(),
                                    bool(self.pending["validate"]))
                while self.epoch < cfg.epochs:
                    t0 = time.perf_counter()
                    stats = self._train_epoch(flag)
                    if stats is None:  # interrupted: the partial sums of all processes go into last.pt
                        sums = all_reduce_sum_(torch.tensor([self.epoch_loss_sum, float(self.epoch_images)],
                                                            dtype=torch.float64, device=self.device))
                        self.epoch_loss_sum, self.epoch_images = float(sums[0]), int(sums[1])
                        path = self.save("last.pt")
                        raise TrainingInterrupted(path)
                    self.epoch += 1
                    self.step_in_epoch = self.samples_in_epoch = 0
                    self.epoch_loss_sum, self.epoch_images = 0.0, 0
                    with warnings.catch_warnings():  # a resume after an epoch's last step made no optimiser step
                        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                        self.scheduler.step()
                    record: dict[str, Any] = {"epoch": self.epoch, **stats,
                                              "time_s": round(time.perf_counter() - t0, 3)}
                    validate_now = self.val_set is not None and (self.epoch % cfg.val_every == 0
                                                                 or self.epoch == cfg.epochs)
                    self._end_epoch(record, t0, validate_now)
        except TrainingInterrupted:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            if self.dist.enabled and not isinstance(e, TrainingError) and peer_failure(e):  # another rank died: one line, not gloo's traceback
                reason = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:160]  # gloo's source location off
                error = TrainingError(f"another process of this run stopped ({reason}): training stopped; "
                                      + self._last_good_words("no checkpoint has been saved yet"))
                try:
                    self.runlog.log_file_only(f"stopped: {error}")
                except OSError:
                    pass
                raise error from None
            try:
                self.runlog.log_file_only(f"stopped: {type(e).__name__}: {first}")
            except OSError:  # the disk that failed may refuse the log line too: the error matters more
                pass
            raise
        finally:
            if self.writer is not None:
                self.writer.flush()
        if self.dist.is_main:
            self._plot_curves()
        # Leave together, so no rank tears down the process group while rank 0 still writes
        # curves.png. Suspected cause (not reproduced in 8 reruns) of one SIGABRT of rank 1,
        # "terminate called without an active exception", at the end of the 2-process gloo test.
        barrier()
        return self.last_report

    def _end_epoch(self, record: dict[str, Any], t0: float, validate_now: bool) -> None:
        """Save the epoch before validating it, so that a validation that fails (a bad file, a
        crash) loses nothing: last.pt then holds the epoch's record as pending, and a resume runs
        the validation and writes the record (replacing a line an earlier try may have left)."""
        cfg = self.cfg.train
        self.pending = {"record": dict(record), "validate": validate_now}
        self.save("last.pt")
        if validate_now:
            tv = time.perf_counter()
            try:
                report = self.validate()
            except _ValidationStopped:  # last.pt holds the epoch with its validation pending
                raise TrainingInterrupted(self.out / "last.pt") from None
            self.last_report = report
            record["val"] = compact_report(report)
            val_s = time.perf_counter() - tv
            self._timing["val_s"] += val_s
            self._timing["vals"] += 1
            record["time_s"] = round(float(record.get("time_s", 0.0)) + val_s, 3)
        record["time"] = utc_now()
        eta = self.eta_seconds()
        self.runlog.write_record(record, cfg.epochs, eta if self.epoch < cfg.epochs else None)
        self.pending = None
        if validate_now:
            score = lookup(self.last_report, cfg.best_metric)
            if not math.isnan(score) and score > self.best:
                self.best = score
                self.save("best.pt")
            self.save("last.pt")  # the best score so far, nothing pending
        if cfg.save_every and self.epoch % cfg.save_every == 0:
            self.save(f"epoch_{self.epoch}.pt")

    def eta_seconds(self, steps_left_in_epoch: int | None = None) -> float | None:
        """Seconds left for the whole run at this session's speed (None before its first step).
        `steps_left_in_epoch`: None between epochs, else the steps left in the running epoch."""
        t, cfg = self._timing, self.cfg.train
        if not t["steps"]:
            return None
        steps_per_epoch = math.ceil(len(self.train_set) / (self.dist.world_size * cfg.batch_size))
        epochs_after = cfg.epochs - self.epoch - (0 if steps_left_in_epoch is None else 1)
        steps = (steps_left_in_epoch or 0) + max(epochs_after, 0) * steps_per_epoch
        vals_left = 0 if self.val_set is None else sum(
            1 for e in range(self.epoch + 1, cfg.epochs + 1) if e % cfg.val_every == 0 or e == cfg.epochs)
        val_s = t["val_s"] / t["vals"] if t["vals"] else 0.0
        return steps * t["train_s"] / t["steps"] + vals_left * val_s

    def _plot_curves(self) -> None:
        """curves.png (loss, val IoU and recall per group) next to metrics.jsonl; a figure is not
        worth failing a finished training for, so problems become a log line."""
        from iaseg.metrics import plot_training_curves

        try:
            plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        except (OSError, ValueError) as e:
            self._log(f"training curves not plotted: {e}")

    def _train_epoch(self, flag: dict[str, bool]) -> dict[str, Any] | None:
        cfg = self.cfg.train
        self.net.train()
        skip = self.step_in_epoch
        loader = self._loader(self.train_set, True, self.epoch, skip=self.samples_in_epoch)
        total = len(loader) + skip
        bar = _progress(total, f"epoch {self.epoch + 1}/{cfg.epochs}", self.progress and self.dist.is_main, skip)
        n_images, t0 = 0, time.perf_counter()   # this session's images of the epoch, for the speed
        for batch in loader:
            t_step = time.perf_counter()
            inputs = model_inputs(batch, self.input_names, self.device, cfg.channels_last)
            target = batch["label"].to(self.device, non_blocking=True)
            with autocast_context(self.device, cfg.amp):
                logits = self.net(*inputs)
            loss = self.criterion(logits.float(), target)
            # one all-reduce carries "any rank diverged" and "any rank was asked to stop"
            flags = all_reduce_sum_(torch.tensor([float(not torch.isfinite(loss)), float(flag["stop"])],
                                                 device=self.device))
            if flags[0] > 0:
                where = self._last_good_words("no checkpoint has been saved yet (it diverged in the run's first epoch)"
                                              if not self.diverged_note else "no checkpoint with sane weights is left")
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {self.epoch + 1}, step {self.step_in_epoch + 1}: "
                    f"training stopped; {where} (try a lower optim.lr, or train.amp=off)")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step_in_epoch += 1
            self.samples_in_epoch += target.shape[0]
            self.epoch_loss_sum += loss.item() * target.shape[0]
            self.epoch_images += target.shape[0]
            n_images += target.shape[0]
            self._timing["train_s"] += time.perf_counter() - t_step
            self._timing["steps"] += 1
            if bar is not None:
                rate = n_images / max(time.perf_counter() - t0, 1e-9)
                eta = self.eta_seconds(total - self.step_in_epoch)
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}",
                                run_eta=duration(eta) if eta is not None else "?", refresh=False)
                bar.update(1)
            if self.after_step is not None:
                self.after_step(self, self.epoch, self.step_in_epoch)
            if flags[1] > 0 or flag["stop"]:
                flag["stop"] = True
                if bar is not None:
                    bar.close()
                return None
        if bar is not None:
            bar.close()
        sums = all_reduce_sum_(torch.tensor([self.epoch_loss_sum, float(self.epoch_images), float(n_images)],
                                            dtype=torch.float64, device=self.device))
        elapsed = time.perf_counter() - t0
        out = {"train_loss": float(sums[0] / max(sums[1], 1)), "images": int(sums[1]),
               "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": round(float(sums[2]) / max(elapsed, 1e-9), 2)}
        weights = getattr(self.criterion, "last_dynamic_weights", None)
        if weights is not None:
            out["dynamic_weights"] = [round(float(w), 5) for w in torch.as_tensor(weights).flatten()]
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        from iaseg.metrics import BoundaryMetrics, build_report

        assert self.val_set is not None
        loader = self._loader(self.val_set, False, 0)
        images: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        boundary = BoundaryMetrics(self.num_classes, self.ignore_index, device=self.device)
        cm = evaluate_loader(self.net, loader, self.input_names, self.num_classes, self.ignore_index,
                             self.device, amp=self.cfg.train.amp, channels_last=self.cfg.train.channels_last,
                             progress=False, keep_images=images if self.writer is not None else None,
                             max_images=self.cfg.train.log_images,
                             observers=[lambda batch, logits, pred, target: boundary.update(pred, target),
                                        self._stop_validation])
        boundary.all_reduce()
        with warnings.catch_warnings():  # undefined classes show as '-' in the epoch line
            warnings.simplefilter("ignore")
            report = build_report(cm.matrix.cpu(), list(self.description.classes),
                                  {k: list(v) for k, v in self.description.groups.items()},
                                  meta={"epoch": self.epoch, "split": self.cfg.data.val_split})
            report["boundary"] = boundary.result(list(self.description.classes),
                                                 {k: list(v) for k, v in self.description.groups.items()})
        if self.writer is not None:
            self.runlog.tensorboard_images(images, self.description, self.epoch)
        return report

    def _stop_validation(self, *batch: Any) -> None:
        """Ctrl-C/SIGTERM during a validation stops it at the next batch (a long validation would
        otherwise outlast a scheduler's grace period): last.pt, saved before it, holds the epoch
        with the validation pending, which a resume runs. Several processes finish it together
        (their all-reduce at its end needs every one)."""
        if self.stop_flag["stop"] and not self.dist.enabled:
            raise _ValidationStopped

    # -- logging ------------------------------------------------------------------------------
    def _log(self, text: str, err: bool = False) -> None:
        self.runlog.log(text, err)

    def close(self) -> None:
        self.runlog.close()
        cleanup()


def _progress(total: int, desc: str, enabled: bool, initial: int = 0) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                file=sys.stderr)


def train(cfg: Config, out_dir: str | Path, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> dict[str, Any]:
    """Train and return the final validation report."""
    trainer = Trainer(cfg, out_dir, resume=resume, progress=progress, overwrite=overwrite)
    try:
        return trainer.fit()
    finally:
        trainer.close()
