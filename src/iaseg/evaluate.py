"""`iaseg evaluate`: a checkpoint on a dataset split -> report.json / report.md / report.csv /
confusion_matrix.png (per class and per importance group, the paper's Tables II and V)."""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.models import TWO_INPUT_MODELS

Decide = Callable[[torch.Tensor], torch.Tensor]


def argmax_decision(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(1)


def iter_logits(net: nn.Module | Callable[..., torch.Tensor], loader: Any, model_name: str,
                device: torch.device | str, amp: str = "off", channels_last: bool = False,
                input_size: tuple[int, int] | None = None, progress: bool = True,
                desc: str = "evaluating") -> Iterator[tuple[dict[str, Any], torch.Tensor, torch.Tensor]]:
    """Run the network over a loader: yields (batch, float32 logits at the label size, target).

    `input_size` resizes images before the network (labels stay as loaded); logits smaller
    than the labels (e.g. Cityscapes at full 1024x2048) are bilinearly upsampled to them."""
    from iaseg.engine.trainer import autocast_context, model_inputs

    device = torch.device(device)
    if isinstance(net, nn.Module):
        net.eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader.dataset), desc=desc, unit="img", leave=False, file=sys.stderr)
    with torch.no_grad():
        for batch in loader:
            inputs = list(model_inputs(batch, model_name, device, channels_last))
            if input_size is not None and tuple(inputs[0].shape[-2:]) != tuple(input_size):
                inputs[0] = F.interpolate(inputs[0], size=input_size, mode="bilinear", align_corners=False)
            target = batch["label"].to(device)
            with autocast_context(device, amp):
                logits = net(*inputs)
            logits = logits.float()
            if logits.shape[-2:] != target.shape[-2:]:
                logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
            yield batch, logits, target
            if bar is not None:
                bar.update(target.shape[0])
    if bar is not None:
        bar.close()


@torch.no_grad()
def evaluate_loader(net: nn.Module | Callable[..., torch.Tensor], loader: Any, model_name: str,
                    num_classes: int, ignore_index: int, device: torch.device | str, amp: str = "off",
                    channels_last: bool = False, progress: bool = True,
                    input_size: tuple[int, int] | None = None, decide: Decide | None = None,
                    keep_images: list | None = None, max_images: int = 0) -> Any:
    """Accumulate a confusion matrix over a loader.

    Predictions are made at the network's input size; when the labels are larger (e.g.
    Cityscapes at full 1024x2048) the logits are bilinearly upsampled to the label size first.
    `input_size` resizes images before the network (labels stay as loaded). `decide` turns
    logits into class ids (default argmax; decision rules plug in here).
    """
    from iaseg.metrics import ConfusionMatrix

    decide = decide or argmax_decision
    cm = ConfusionMatrix(num_classes, ignore_index, device=torch.device(device))
    for batch, logits, target in iter_logits(net, loader, model_name, device, amp, channels_last,
                                             input_size, progress):
        pred = decide(logits)
        cm.update(pred, target)
        if keep_images is not None and len(keep_images) < max_images:
            for i in range(min(max_images - len(keep_images), pred.shape[0])):
                img = batch["image"][i]
                if img.shape[-2:] != pred.shape[-2:]:
                    img = F.interpolate(img[None], size=pred.shape[-2:], mode="bilinear", align_corners=False)[0]
                keep_images.append((img.cpu(), target[i].cpu(), pred[i].cpu()))
    cm.all_reduce()
    return cm


def dataset_settings(ckpt: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Dataset name/root/options from the CLI, defaulting to what the checkpoint was trained on."""
    from iaseg.cli import CLIError

    data = (ckpt.get("config") or {}).get("data", {})
    name = args.dataset or data.get("dataset")
    if not name:
        raise CLIError("the checkpoint records no dataset: give --dataset and --root")
    same = name == data.get("dataset")
    root = args.root if args.root is not None else (data.get("root") if same else None)
    options = dict(data.get("options") or {}) if same else {}
    description = args.description or (data.get("description") if same else None)
    if description:
        options["description"] = description
    if root is None and name != "synthetic":
        raise CLIError(f"no {name} folder: give --root DIR (published weights do not record the training machine's path)")
    return {"name": name, "root": root, "options": options}


def load_model_for_cli(checkpoint: str, device_spec: str) -> tuple[torch.device, nn.Module, dict[str, Any]]:
    """(device, fp32 eval model, metadata) of a checkpoint; bad input becomes a one-line CLIError."""
    from iaseg.checkpoint import CheckpointError, model_from_checkpoint
    from iaseg.cli import CLIError
    from iaseg.engine.distributed import DistInfo, resolve_device

    try:
        device = resolve_device(device_spec, DistInfo())
        model, meta = model_from_checkpoint(checkpoint, device=device)
    except (CheckpointError, ValueError) as e:
        raise CLIError(str(e)) from None
    return device, model, meta


def add_data_arguments(p: argparse.ArgumentParser, purpose: str = "evaluate") -> None:
    """Dataset, resolution and device options shared by `evaluate` and `calibrate`."""
    from iaseg.models.info import parse_size

    p.add_argument("--dataset", help="camvid | cityscapes | folder | synthetic (default: the training dataset)")
    p.add_argument("--root", help="dataset root folder (default: the training root)")
    p.add_argument("--split", default="val", help=f"split to {purpose} on (default: val)")
    p.add_argument("--description", help="dataset description YAML (folder datasets)")
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the training size)")
    p.add_argument("--full-resolution", action="store_true",
                   help="score at the labels' native resolution (logits upsampled), e.g. Cityscapes 1024x2048")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=None, help="data loader workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off", help="autocast precision")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="an iaseg checkpoint (.pt)")
    p.add_argument("--out", required=True, help="output folder for the report files")
    p.add_argument("--decision-rule", help="decision rule JSON from `iaseg calibrate` (per-class offsets)")
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    from iaseg.cli import CLIError
    from iaseg.data import build_dataset, build_loader
    from iaseg.metrics import build_report, write_report

    device, model, meta = load_model_for_cli(args.checkpoint, args.device)
    ckpt = meta["checkpoint"]
    settings = dataset_settings(ckpt, args)
    input_size = tuple(args.size) if args.size else meta["input_size"]
    spatial = {"spatial_size": meta["spatial_size"]} if meta["model_name"] in TWO_INPUT_MODELS else {}
    try:
        dataset = build_dataset(settings["name"], settings["root"], args.split,
                                size=None if args.full_resolution else input_size, **spatial, **settings["options"])
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    desc = meta["description"]
    if dataset.description.num_classes != desc.num_classes:
        raise CLIError(f"dataset {settings['name']!r} has {dataset.description.num_classes} classes, the checkpoint "
                       f"{desc.num_classes}")
    decide = None
    rule_info = None
    if args.decision_rule:
        from iaseg.decision import load_rule

        rule = load_rule(args.decision_rule, desc)
        decide, rule_info = rule.decide, rule.to_dict()
    loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    cm = evaluate_loader(model, loader, meta["model_name"], desc.num_classes, desc.ignore_index, device,
                         amp=args.amp, progress=not args.no_progress,
                         input_size=input_size if args.full_resolution else None, decide=decide)
    report = build_report(cm.matrix.cpu(), list(desc.classes), {k: list(v) for k, v in desc.groups.items()},
                          meta={
                              "checkpoint": str(Path(args.checkpoint)), "model": meta["model_name"],
                              "dataset": settings["name"], "root": str(settings["root"]), "split": args.split,
                              "images": len(dataset), "input_size": list(input_size),
                              "resolution": "labels' native" if args.full_resolution else "network input",
                              "decision_rule": rule_info, "device": str(device), "amp": args.amp,
                              "torch": torch.__version__, "python": platform.python_version(),
                              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          })
    paths = write_report(report, args.out)
    m = report["mean"]
    top = list(report["groups"])[-1]
    print(f"{len(dataset)} images: mean precision {_pct(m['precision'])}, recall {_pct(m['recall'])}, "
          f"IoU {_pct(m['iou'])}; {top} recall {_pct(report['groups'][top]['recall'])}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _pct(v: Any) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"
