"""`iaseg calibrate`: fit a decision rule (per-class logit offsets) to recall/precision targets on
a labelled split, without retraining (see `iaseg.decision`).

It prints the recall of every class of the targeted groups before -> after, and refuses (exit 1,
no rule written) a rule that lowers the recall of a class of a group named in a recall target by
more than --max-class-drop points (a group's mean recall can rise while one of its classes
falls); --allow-class-drop writes it anyway. The model is a checkpoint, a run folder (its
best.pt) or an exported .onnx/.ts/.xml file run through the same runners as `iaseg predict`."""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
from pathlib import Path

from .common import CLIError, add_data_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    from iaseg.decision import DEFAULT_MAX_PIXELS

    p.add_argument("--checkpoint", required=True,
                   help="an iaseg checkpoint (.pt), a run folder (its best.pt), or an exported model (.onnx, .ts, "
                        ".xml: give --dataset and --root)")
    p.add_argument("--target", action="append", default=[], metavar="NAME.METRIC>=VALUE",
                   help="e.g. 'G3.recall>=0.65', 'Pedestrian.recall>=0.8', 'Car.precision>=0.9' (repeatable; "
                        "NAME is a group or class, case-insensitive; METRIC recall|precision|iou)")
    p.add_argument("--max-miou-drop", type=float, default=None, metavar="POINTS",
                   help="add the target mean.iou >= (mean IoU without a rule) - POINTS / 100: with --maximize "
                        "G3.recall, the matched operating point (the most G3 recall for at most POINTS of mean IoU)")
    p.add_argument("--maximize", default="miou",
                   help="objective kept as high as possible: miou (default) | mean_recall | mean_precision | "
                        "accuracy | NAME.METRIC")
    p.add_argument("--offset", action="append", default=[], metavar="NAME=VALUE",
                   help="write the rule that adds VALUE to the logits of group or class NAME (repeatable), "
                        "with no search and no data: e.g. an operating point picked in report.html's explorer")
    p.add_argument("--out", required=True, help="rule JSON to write (report .md and trade-off .png go next to it)")
    p.add_argument("--cache", help="calibration cache file (default: next to --out, <stem>.cache.pt); "
                                   "reused when checkpoint, data and settings match")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"keep at most this many labelled pixels, a random sample (default {DEFAULT_MAX_PIXELS:,}; "
                        "memory ~ 2 bytes x classes per pixel)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pixel subsample")
    add_data_arguments(p, purpose="calibrate")
    p.add_argument("--allow-unmet", action="store_true",
                   help="write the rule even if a target cannot be met (the closest rule found)")
    p.add_argument("--max-class-drop", type=float, default=2.0, metavar="POINTS",
                   help="refuse a rule that lowers the recall of any class of a group named in a recall target by "
                        "more than this many percentage points (default 2.0)")
    p.add_argument("--allow-class-drop", action="store_true",
                   help="write the rule even when it lowers such a class's recall more than --max-class-drop")


def _model_sha256(path: Path) -> str:
    """SHA-256 of a model's bytes (an OpenVINO IR's .xml and .bin together)."""
    h = hashlib.sha256()
    for part in [path] + ([path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else []):
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def run(args: argparse.Namespace) -> int:
    from iaseg import __version__
    from iaseg.data import build_loader
    from iaseg.decision import (CalibrationData, DecisionRule, calibrate, collect_logits, parse_objective,
                                parse_target, targeted_classes, write_calibration_outputs)
    from iaseg.metrics import pct
    from iaseg.metrics.html import markdown_page

    from .common import data_settings, labelled_dataset, output_file, resolve_checkpoint, subset_key
    from .evaluate import load_network

    if args.offset:
        return _given_offsets(args)
    if not args.target and args.max_miou_drop is None:
        raise CLIError("give at least one --target, e.g. --target 'G3.recall>=0.65', or --max-miou-drop "
                       "(or --offset NAME=VALUE)")
    if args.max_miou_drop is not None and not 0 <= args.max_miou_drop <= 100:
        raise CLIError(f"--max-miou-drop {args.max_miou_drop:g}: give percentage points between 0 and 100")
    if args.max_pixels < 1:
        raise CLIError("--max-pixels must be >= 1")
    out = output_file(args.out)
    if args.cache:
        output_file(args.cache, "--cache")
    if out.suffix.lower() != ".json":
        raise CLIError(f"--out {out}: the rule is a .json file")
    if args.max_class_drop < 0:
        raise CLIError("--max-class-drop must be >= 0 (percentage points)")
    checkpoint = resolve_checkpoint(args.checkpoint)
    device, model, meta, ckpt, path = load_network(checkpoint, args.device, "exact", "auto", args.amp)
    if meta.decision_rule is not None:
        raise CLIError(f"{checkpoint} applies a decision rule already (exported with --decision-rule): calibrate "
                       "the model without it")
    desc = meta.description
    targets = [parse_target(t, desc) for t in args.target]
    objective = parse_objective(args.maximize, desc)
    settings = data_settings(args, ckpt, meta)
    input_size = tuple(args.size) if args.size else tuple(meta.input_size)
    key = {"checkpoint_sha256": _model_sha256(Path(checkpoint)), "path": path, "dataset": settings["name"],
           "root": str(settings["root"]), "split": args.split, "options": settings["options"],
           "input_size": list(input_size), "full_resolution": bool(args.full_resolution), "amp": args.amp,
           "max_pixels": args.max_pixels, "seed": args.seed, "classes": list(desc.classes),
           **({"subset": subset_key(args)} if subset_key(args) else {})}  # keys of earlier caches stay valid
    key = json.loads(json.dumps(key, default=str))
    cache_path = Path(args.cache) if args.cache else out.with_name(out.stem + ".cache.pt")
    data = None
    if cache_path.is_file():
        data = CalibrationData.load(cache_path)
        if data.info.get("key") != key:
            print(f"calibrate: {cache_path} was made for other settings; recomputing it", file=sys.stderr)
            data = None
        else:
            print(f"calibrate: using cached logits {cache_path} ({data.num_pixels:,} pixels)")
    if data is None:
        dataset = labelled_dataset(args, settings, meta, input_size)
        loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
        try:
            data = collect_logits(model, loader, meta.model_name, desc.num_classes, desc.ignore_index, device,
                                  amp=args.amp, input_size=input_size if args.full_resolution else None,
                                  max_pixels=args.max_pixels, seed=args.seed, progress=not args.no_progress)
        except ValueError as e:
            raise CLIError(f"{settings['name']} {args.split}: {e}") from None
        data.info.update({"key": key, "classes": list(desc.classes), "checkpoint": checkpoint})
        data.save(cache_path)
        sub = f" (random sample of {data.info['labelled_pixels']:,})" if data.info["subsampled"] else ""
        print(f"calibrate: cached {data.num_pixels:,} labelled pixels{sub} in {cache_path}")
    del model
    if device.type == "cuda":
        data = data.to(device)
    if args.max_miou_drop is not None:  # the matched operating point: at most this far below the plain model
        from iaseg.decision import confusion_from_cache

        from iaseg.metrics.confusion import class_metrics

        plain = confusion_from_cache(data)  # the model without a rule
        base = float(parse_objective("miou", desc).value(plain))
        floor = _floor(base - args.max_miou_drop / 100)
        targets.append(parse_target(f"mean.iou>={max(floor, 0.0)}", desc))
        print(f"calibrate: mean IoU without a rule {pct(base)}: target mean.iou>={floor:g} (--max-miou-drop "
              f"{args.max_miou_drop:g})")
        if objective.metric == "recall":  # raising a group's mean recall must not sink one of its classes
            recall = class_metrics(plain)["recall"]
            floors = []
            for k in objective.classes:
                if math.isfinite(float(recall[k])) and float(recall[k]) > args.max_class_drop / 100:
                    low = _floor(float(recall[k]) - args.max_class_drop / 100)
                    floors.append(parse_target(f"{desc.classes[k]}.recall>={low}", desc))
            targets += floors
            print("calibrate: keeping each class of the objective within --max-class-drop "
                  f"{args.max_class_drop:g} points of its recall: " + ", ".join(str(t) for t in floors))
    log = None if args.no_progress else (lambda s: print("  " + s, file=sys.stderr))
    result = calibrate(data, targets, objective, log=log, improve=args.max_miou_drop is not None)
    for s in result.status:
        print(f"{s['target']}: {pct(s['before'])} -> {pct(s['after'])} ({'met' if s['met'] else 'NOT met'})")
    print(f"{objective.label}: {pct(result.objective_before)} -> {pct(result.objective_after)}")
    recalls = result.class_recalls(targeted_classes(targets))
    print("recall of the targeted classes (calibration data): " + ", ".join(
        f"{desc.classes[k]} {pct(b)} -> {pct(a)}" for k, b, a in recalls))
    drops = result.recall_drops(args.max_class_drop)
    if not result.met:
        for line in result.unmet_lines():
            print(f"iaseg calibrate: {line}", file=sys.stderr)
        if not args.allow_unmet:
            print("iaseg calibrate: no rule written (use --allow-unmet to write the closest rule found)",
                  file=sys.stderr)
            return 1
    if drops:
        k, b, a = drops[0]
        more = f" (and {len(drops) - 1} more class(es))" if len(drops) > 1 else ""
        floor = math.floor(1000 * (b - args.max_class_drop / 100)) / 1000
        verdict = "written anyway (--allow-class-drop)" if args.allow_class_drop else \
            f"no rule written (--target '{desc.classes[k]}.recall>={floor:g}' keeps it, --allow-class-drop writes it)"
        print(f"iaseg calibrate: the rule lowers {desc.classes[k]} recall by {100 * (b - a):.1f} points "
              f"({pct(b)} -> {pct(a)}){more}, more than --max-class-drop {args.max_class_drop:g}; {verdict}",
              file=sys.stderr)
        if not args.allow_class_drop:
            return 1
    info = {
        "calibration": {"checkpoint": checkpoint, "model": meta.model_name, "path": path,
                        "dataset": settings["name"], "root": str(settings["root"]), "split": args.split,
                        "options": settings["options"] or None,
                        "images": data.info.get("images"), "subset": key.get("subset"), "pixels": data.num_pixels,
                        "labelled_pixels": data.info.get("labelled_pixels"), "input_size": list(input_size)},
        "result": result.summary(),
        "class_recall": {desc.classes[k]: {"before": _finite(b), "after": _finite(a)} for k, b, a in recalls},
        "max_class_drop": args.max_class_drop, "class_drop_allowed": bool(drops),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "iaseg": __version__,
    }
    rule = DecisionRule(result.offsets, desc.classes, [str(t) for t in targets], info)
    paths = write_calibration_outputs(rule, result, data, desc, out)
    paths.append(markdown_page(out.with_suffix(".html"), out.with_suffix(".md"), f"Decision rule {out.name}",
                               [out.with_suffix(".png")]))
    print(f"{rule!r}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _given_offsets(args: argparse.Namespace) -> int:
    """--offset NAME=VALUE ...: the rule with exactly these offsets (classes of a named group all
    get VALUE), written without reading data; `iaseg evaluate --decision-rule` scores it."""
    import torch

    from iaseg import __version__
    from iaseg.decision import DecisionRule
    from iaseg.decision.targets import _resolve_name

    from .common import output_file, resolve_checkpoint
    from .evaluate import load_network

    if args.target or args.max_miou_drop is not None:
        raise CLIError("--offset writes the given offsets: drop --target / --max-miou-drop")
    out = output_file(args.out)
    if out.suffix.lower() != ".json":
        raise CLIError(f"--out {out}: the rule is a .json file")
    checkpoint = resolve_checkpoint(args.checkpoint)
    _, _, meta, _, _ = load_network(checkpoint, "cpu", "exact", "auto", "off")
    desc = meta.description
    offsets = torch.zeros(desc.num_classes)
    given = {}
    for item in args.offset:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number):
            raise CLIError(f"--offset {item!r}: expected NAME=VALUE with a number, e.g. --offset G3=0.75")
        name, ids = _resolve_name(name, desc, f"--offset {item!r}")
        offsets[list(ids)] = number
        given[name] = number
    info = {"offsets_given": given, "checkpoint": checkpoint,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "iaseg": __version__}
    rule = DecisionRule(offsets, desc.classes, [], info)
    rule.save(out)
    print(f"{rule!r}")
    print(f"wrote {out}")
    return 0


def _floor(v: float) -> float:
    """v rounded down to 6 decimals: a target written from it is met by v itself."""
    return math.floor(1e6 * v) / 1e6


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
