"""The written record of a training run, kept by process 0: the console and train.log, one line per
epoch in metrics.jsonl (strict JSON, timestamped), TensorBoard events, and run.json / config.yaml
(who ran it, with what, every session). Other processes write nothing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from iaseg.engine.config import Config, one_line
from iaseg.engine.run_folder import config_header, utc_now
from iaseg.io import append_text, atomic_write_text, json_safe, json_text, write_error
from iaseg.metrics.tables import pct


def duration(seconds: float) -> str:
    """3725 -> '1h02m', 95 -> '1m35s'."""
    s = int(round(max(seconds, 0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def compact_report(report: dict[str, Any]) -> dict[str, Any]:
    """What an epoch's line keeps of a validation report: the means, groups and classes, and the
    boundary F and trimap IoU (per width) of the groups and the mean."""
    out = {"mean": report["mean"], "groups": report["groups"], "per_class": report["per_class"]}
    if report.get("boundary"):
        f, t = report["boundary"]["boundary_f"], report["boundary"]["trimap_iou"]
        out["boundary"] = {"f": {**{g: v["f"] for g, v in f["groups"].items()}, "mean": f["mean"]["f"]},
                           "trimap_widths": t["widths"],
                           "trimap_iou": {**t["groups"], "mean": t["mean"]}}
    return out


class RunLog:
    """The run folder's logs and records. `is_main`: this process writes them (process 0)."""

    def __init__(self, out: Path, is_main: bool) -> None:
        self.out, self.is_main = out, is_main
        self.file: Path | None = out / "train.log" if is_main else None
        self.writer: Any = None   # TensorBoard's SummaryWriter, once opened

    def open_tensorboard(self, enabled: bool) -> None:
        if not (enabled and self.is_main):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("tensorboard is not installed: no event files (pip install tensorboard)", file=sys.stderr)
            return
        self.writer = SummaryWriter(str(self.out / "tb"))

    def log(self, text: str, err: bool = False) -> None:
        """A line on the console (stderr with `err`) and in train.log."""
        if self.is_main:
            print(text, flush=True, file=sys.stderr if err else sys.stdout)
            self.log_file_only(text)

    def log_file_only(self, text: str) -> None:
        if self.file is not None:
            append_text(self.file, f"{utc_now()}  {text}\n")

    def write_record(self, record: dict[str, Any], epochs: int, eta: float | None) -> None:
        """Append the epoch's line to metrics.jsonl (after dropping lines of this epoch or later
        that an interrupted earlier try wrote), log it (with the run's ETA when `eta` is given)
        and send it to TensorBoard."""
        if not self.is_main:
            return
        path = self.out / "metrics.jsonl"
        text = json_text(record, indent=None)
        lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
        kept = [line for line in lines if _epoch_of(line) < record["epoch"]]
        if len(kept) < len(lines):
            atomic_write_text(path, "".join(kept) + text)
        else:
            append_text(path, text)
        record = json_safe(record)
        line = f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  " \
               f"lr {record['lr']:.2e}  {record['images_per_s']:.1f} img/s"
        val = record.get("val")
        if val:
            m = val["mean"]
            top = list(val["groups"])[-1]
            g = val["groups"][top]
            line += (f"  | val mIoU {pct(m['iou'])}  mean P/R {pct(m['precision'])}/{pct(m['recall'])}"
                     f"  {top} recall {pct(g['recall'])}")
        if eta is not None:
            line += f"  | run ETA {duration(eta)}"
        self.log(line)
        if self.writer is not None:
            self._scalars(record, val)

    def _scalars(self, record: dict[str, Any], val: dict[str, Any] | None) -> None:
        step = record["epoch"]
        self.writer.add_scalar("train/loss", record["train_loss"], step)
        self.writer.add_scalar("train/lr", record["lr"], step)
        self.writer.add_scalar("train/images_per_s", record["images_per_s"], step)
        for i, w in enumerate(record.get("dynamic_weights", [])):
            self.writer.add_scalar(f"train/dynamic_weight_F{i + 1}", w, step)
        if val:
            for metric, v in val["mean"].items():
                self.writer.add_scalar(f"val/mean/{metric}", _nan(v), step)
            for group, values in val["groups"].items():
                for metric, v in values.items():
                    self.writer.add_scalar(f"val/{group}/{metric}", _nan(v), step)
            for cls, values in val["per_class"].items():
                for metric, v in values.items():
                    self.writer.add_scalar(f"val_class_{metric}/{cls}", _nan(v), step)

    def tensorboard_images(self, images: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], description: Any,
                           epoch: int) -> None:
        """Image, ground truth and prediction side by side, one panel per kept validation image."""
        from iaseg.visualize import colorize

        for i, (img, label, pred) in enumerate(images):
            panel = torch.cat([img.float().cpu(),
                               torch.from_numpy(colorize(label.numpy(), description)).permute(2, 0, 1) / 255.0,
                               torch.from_numpy(colorize(pred.numpy(), description)).permute(2, 0, 1) / 255.0],
                              dim=2)
            self.writer.add_image(f"val_prediction/{i}", panel.clamp(0, 1), epoch)

    def write_run_description(self, run: dict[str, Any], resumed_from: dict[str, Any] | None,
                              changes: list[tuple[str, Any, Any]], cfg: Config) -> None:
        """run.json (every session of the run) and config.yaml (the config in force, with a
        comment header: it stays loadable as a config)."""
        info = {**run, "resumed_from": resumed_from,
                "changes": [{"key": k, "old": o, "new": n} for k, o, n in changes]}
        path = self.out / "run.json"
        sessions: list[Any] = []
        if resumed_from and path.is_file():
            try:
                sessions = json.loads(path.read_text())["sessions"]
                if not isinstance(sessions, list):
                    raise TypeError("'sessions' is not a list")
            except (OSError, ValueError, KeyError, TypeError) as e:
                # the record of the run's earlier sessions is not thrown away: kept beside, and said
                aside = path.with_name(f"run.json.corrupt-{utc_now().replace(':', '')}")
                try:
                    os.replace(path, aside)
                except OSError as err:
                    raise write_error(aside, err) from None
                sessions = []
                self.log(f"warning: {path} is unreadable ({type(e).__name__}: {one_line(e)}): kept as "
                         f"{aside.name}, and a new run.json starts with this session", err=True)
        atomic_write_text(path, json.dumps({"sessions": sessions + [info]}, indent=1, default=str) + "\n")
        atomic_write_text(self.out / "config.yaml", config_header(info) + cfg.to_yaml())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _epoch_of(line: str) -> float:
    try:
        return float(json.loads(line).get("epoch", -1))
    except (ValueError, AttributeError, TypeError):
        return -1.0


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)
