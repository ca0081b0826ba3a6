"""`iaseg evaluate`: a checkpoint on a dataset split -> report.json / report.md / report.csv /
confusion_matrix.png (per class and per importance group, the paper's Tables II and V, with
boundary F-score and trimap IoU), per_image.npz (one confusion matrix per image, for the
hierarchical bootstrap of `iaseg compare --group`), report.html (one self-contained page: the
tables, figures, a few overlays and an operating-point explorer) and, with --frontier,
frontier.json (the confusion matrices of every logit offset on one group, for matched operating
points)."""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from .common import SCORED, add_checkpoint_argument, add_data_arguments, add_decision_rule_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(p, note=SCORED)
    p.add_argument("--backend", default="exact",
                   choices=("exact", "auto", "eager", "compile", "onnxruntime", "torchscript", "openvino"),
                   help="exact (default for checkpoints): the network as trained, fp32 unless --amp; auto: the "
                        "path `predict` uses; or a named backend (its precision with --precision). Exported "
                        "files run on their own runtime")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                   help="precision of a non-exact backend (auto: the backend's default on this machine)")
    p.add_argument("--out", required=True, help="output folder for the report files")
    add_decision_rule_argument(p)
    p.add_argument("--frontier", nargs="?", const="", metavar="GROUP",
                   help="also score every offset of a grid added to the logits of GROUP (default: the most "
                        "important group) in the same pass: frontier.json")
    p.add_argument("--frontier-offsets", default="-1:4:0.05", metavar="START:STOP:STEP",
                   help="the offset grid of --frontier, ends included (default -1:4:0.05; write --frontier-offsets=-2:3:0.1 "
                        "when START is negative)")
    p.add_argument("--boundary-tolerance", type=int, metavar="PX",
                   help="boundary F-score match distance in pixels (default: 0.75%% of the image diagonal)")
    p.add_argument("--trimap-widths", default="2,4,8,16", metavar="D,D,...",
                   help="trimap IoU band widths in pixels (default 2,4,8,16)")
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from iaseg.data import build_loader
    from iaseg.engine.evaluator import evaluate_loader
    from iaseg.inference.open import open_model
    from iaseg.metrics import BoundaryMetrics, build_report, pct, write_report
    from iaseg.metrics.frontier import OffsetSweep, save_frontier
    from iaseg.metrics.html import OverlayPicker, evaluation_page, explorer_data
    from iaseg.metrics.per_image import PerImageConfusion, save_per_image

    from .common import CLIError, data_settings, device_from, labelled_dataset, output_folder, resolve_checkpoint

    offsets = _offsets(args.frontier_offsets)  # option errors before any work
    widths = _widths(args.trimap_widths)
    output_folder(args.out)
    checkpoint = resolve_checkpoint(args.checkpoint)
    device = device_from(args.device)
    model, meta, ckpt, path = open_model(checkpoint, device, args.backend, args.precision, args.amp)
    settings = data_settings(args, ckpt, meta)
    input_size = tuple(args.size) if args.size else meta.input_size
    desc = meta.description
    from iaseg.decision.apply import rule_for_model

    # read before the data: a bad rule, or a second rule on a model with a baked one, fails at once
    applied = rule_for_model(args.decision_rule, meta, checkpoint)
    rule, decide = applied.rule, applied.decide
    rule_info = rule.to_dict() if rule is not None else None
    if applied.line:
        print(applied.line)
    if rule is not None:
        same = _calibration_overlap(rule.info.get("calibration") or {}, settings, args.split)
        if same:
            print(f"iaseg evaluate: warning: {args.decision_rule} was calibrated on {same}, the data evaluated here: "
                  "these numbers are optimistic; evaluate the rule on a held-out split", file=sys.stderr)
    dataset = labelled_dataset(args, settings, meta, input_size)
    loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    classes, groups = list(desc.classes), {k: list(v) for k, v in desc.groups.items()}
    per_image = PerImageConfusion(desc.num_classes, desc.ignore_index)
    boundary = BoundaryMetrics(desc.num_classes, desc.ignore_index, tolerance=args.boundary_tolerance,
                               widths=widths)
    observers = [lambda batch, logits, pred, target: per_image.update(pred, target, batch["path"]),
                 lambda batch, logits, pred, target: boundary.update(pred, target)]
    promise_cm = None
    if rule is not None and isinstance(rule.info.get("promise"), dict):  # realised vs promised
        from iaseg.metrics import ConfusionMatrix

        promise_cm = ConfusionMatrix(desc.num_classes, desc.ignore_index)
        unbake = -rule.offsets.view(1, -1, 1, 1) if applied.baked else None  # a baked model's outputs are z + b
        observers.append(lambda batch, logits, pred, target: promise_cm.update(
            (logits if unbake is None else logits + unbake.to(logits.device)).argmax(1), target))
    # the sweep also feeds report.html's operating-point explorer, so it always runs (one pass,
    # a histogram per batch); frontier.json is written only with --frontier
    group = args.frontier or desc.group_names[-1]
    if group not in desc.groups:
        raise CLIError(f"--frontier {group!r}: no such group (groups: {', '.join(desc.groups)})")
    sweep = OffsetSweep(desc.num_classes, desc.ignore_index, {group: desc.group_indices()[desc.group_names.index(group)]},
                        offsets, base_offsets=rule.offsets if decide is not None else None)
    observers.append(lambda batch, logits, pred, target: sweep.update(logits, target))
    overlays = OverlayPicker(desc, count=4)
    observers.append(overlays.update)
    cm = evaluate_loader(model, loader, meta.input_names, desc.num_classes, desc.ignore_index, device,
                         amp=args.amp, progress=not args.no_progress,
                         input_size=input_size if args.full_resolution else None, decide=decide,
                         observers=observers)
    seed = ((ckpt.get("config") or {}).get("train") or {}).get("seed")
    report = build_report(cm.matrix.cpu(), classes, groups,
                          meta={
                              "checkpoint": str(Path(checkpoint)), "model": meta.model_name,
                              "dataset": settings["name"], "root": str(settings["root"]), "split": args.split,
                              "options": settings["options"] or None,
                              "images": len(dataset), "subset": getattr(dataset, "subset", None),
                              "input_size": list(input_size),
                              "resolution": "labels' native" if args.full_resolution else "network input",
                              "decision_rule": rule_info, "device": str(device), "amp": args.amp, "path": path,
                              "train_seed": seed if isinstance(seed, int) else None,
                              "epoch": ckpt.get("epoch"),
                              "torch": torch.__version__, "python": platform.python_version(),
                              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          })
    report["boundary"] = boundary.result(classes, groups)
    if promise_cm is not None:
        from iaseg.decision.promise import check_promise

        report["promise_check"], lines = check_promise(rule.info["promise"], promise_cm.matrix.cpu(), cm.matrix.cpu(),
                                                       desc)
        for line in lines:
            print(line if not report["promise_check"]["broken"] else f"iaseg evaluate: warning: {line}",
                  file=sys.stderr if report["promise_check"]["broken"] else sys.stdout)
    paths = write_report(report, args.out)
    paths["per_image"] = save_per_image(Path(args.out) / "per_image.npz", per_image.names, per_image.counts,
                                        classes, desc.ignore_index)
    frontier = sweep.to_dict(classes)
    if args.frontier is not None:
        paths["frontier"] = save_frontier(Path(args.out) / "frontier.json", frontier)
    command = None if args.decision_rule else \
        f"iaseg calibrate --checkpoint {shlex.quote(checkpoint)} --offset {group}={{offset}} --out {group}_{{offset}}.json"
    paths["html"] = evaluation_page(Path(args.out), explorer_data(frontier, group, groups, command), overlays.items)
    m = report["mean"]
    top = list(report["groups"])[-1]
    print(f"{len(dataset)} images: mean precision {pct(m['precision'])}, recall {pct(m['recall'])}, "
          f"IoU {pct(m['iou'])}; {top} recall {pct(report['groups'][top]['recall'])}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _calibration_overlap(calibration: dict[str, Any], settings: dict[str, Any], split: str) -> str | None:
    """'DATASET SPLIT' when a rule was calibrated on the dataset, root and split evaluated (other
    dataset options are mentioned: a different sequence selection of one split may not overlap)."""
    if calibration.get("split") != split or calibration.get("dataset") != settings["name"]:
        return None
    if str(calibration.get("root")) != str(settings["root"]):
        return None
    text = f"{settings['name']} {split}"
    if (calibration.get("options") or None) != (settings["options"] or None):
        text += " (with other dataset options: check that the images do not overlap)"
    return text


def _widths(text: str) -> tuple[int, ...]:
    from .common import CLIError

    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CLIError(f"--trimap-widths {text!r}: expected pixel widths such as 2,4,8,16") from None
    if not widths or min(widths) < 1:
        raise CLIError(f"--trimap-widths {text!r}: widths must be >= 1 pixel")
    return widths


def _offsets(text: str) -> list[float]:
    """'START:STOP:STEP' -> the grid, ends included (rounded to 6 decimals)."""
    from .common import CLIError

    try:
        start, stop, step = (float(v) for v in text.split(":"))
    except ValueError:
        raise CLIError(f"--frontier-offsets {text!r}: expected START:STOP:STEP, e.g. -1:4:0.05") from None
    if not (step > 0 and stop >= start) or (stop - start) / step > 10_000:
        raise CLIError(f"--frontier-offsets {text!r}: need STEP > 0, STOP >= START and at most 10,000 offsets")
    n = int(round((stop - start) / step))
    return sorted({round(start + i * step, 6) for i in range(n + 1)})
