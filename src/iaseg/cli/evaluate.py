"""`iaseg evaluate`: a checkpoint on a dataset split -> report.json / report.md / report.csv /
confusion_matrix.png (per class and per importance group, the paper's Tables II and V)."""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
from pathlib import Path

from .common import add_data_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="an iaseg checkpoint (.pt)")
    p.add_argument("--out", required=True, help="output folder for the report files")
    p.add_argument("--decision-rule", help="decision rule JSON from `iaseg calibrate` (per-class offsets)")
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from iaseg.data import build_loader
    from iaseg.engine.evaluator import evaluate_loader
    from iaseg.metrics import build_report, pct, write_report

    from .common import data_settings, labelled_dataset, load_model

    device, model, meta, ckpt = load_model(args.checkpoint, args.device)
    settings = data_settings(args, ckpt)
    input_size = tuple(args.size) if args.size else meta.input_size
    dataset = labelled_dataset(args, settings, meta, input_size)
    desc = meta.description
    decide = None
    rule_info = None
    if args.decision_rule:
        from iaseg.decision import load_rule

        rule = load_rule(args.decision_rule, desc)
        decide, rule_info = rule.decide, rule.to_dict()
    loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    cm = evaluate_loader(model, loader, meta.model_name, desc.num_classes, desc.ignore_index, device,
                         amp=args.amp, progress=not args.no_progress,
                         input_size=input_size if args.full_resolution else None, decide=decide)
    report = build_report(cm.matrix.cpu(), list(desc.classes), {k: list(v) for k, v in desc.groups.items()},
                          meta={
                              "checkpoint": str(Path(args.checkpoint)), "model": meta.model_name,
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
    print(f"{len(dataset)} images: mean precision {pct(m['precision'])}, recall {pct(m['recall'])}, "
          f"IoU {pct(m['iou'])}; {top} recall {pct(report['groups'][top]['recall'])}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
