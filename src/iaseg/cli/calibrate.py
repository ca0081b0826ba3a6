"""`iaseg calibrate`: fit a decision rule (per-class logit offsets) to recall/precision targets on
a labelled split, without retraining (see `iaseg.decision`).

It prints the recall of every class of the targeted groups before -> after, and refuses (exit 1,
no rule written) a rule that lowers the recall of a class of a group named in a recall target by
more than --max-class-drop points (a group's mean recall can rise while one of its classes
falls), or the recall of a class named in a precision target (a precision target can be met by
labelling almost nothing as that class); --allow-class-drop writes it anyway. The policy (matched
operating point, class-drop verdict, rule families) lives in iaseg.decision.policy. The model is a checkpoint, a run folder (its
best.pt) or an exported .onnx/.ts/.xml file run through the same runners as `iaseg predict`."""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
from pathlib import Path

from .common import SCORED, CLIError, add_checkpoint_argument, add_data_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    from iaseg.decision import DEFAULT_MAX_PIXELS

    add_checkpoint_argument(p, note=SCORED)
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
    p.add_argument("--allow-seen-data", action="store_true",
                   help="calibrate even on images or CamVid sequences the model trained on (refused otherwise: "
                        "such a rule's promise is in-sample); the rule records it")
    p.add_argument("--cross-fit", action="append", default=[], metavar="CHECKPOINT",
                   help="cross-fitting (repeatable): calibrate on each of these models' own validation data (a "
                        "leave-one-sequence-out model's left-out sequence), pool those out-of-sample logits, and "
                        "write the rule for --checkpoint (e.g. the model trained on every sequence)")
    p.add_argument("--max-miss-rate", type=float, metavar="ALPHA",
                   help="risk control: the smallest single offset on --risk-group with expected per-image miss rate "
                        "of the group <= ALPHA (conformal risk control), valid for new images exchangeable with the "
                        "calibration images; the rule records the guarantee")
    p.add_argument("--delta", type=float, metavar="DELTA",
                   help="with --max-miss-rate: miss rate <= ALPHA with probability >= 1 - DELTA (Learn-then-Test)")
    p.add_argument("--risk-group", metavar="GROUP", help="the group of --max-miss-rate (default: the most important)")
    p.add_argument("--compare-families", metavar="FILE.json",
                   help="with two or more --cross-fit models: hold each one's data out in turn, calibrate every "
                        "family on the others (the matched point of --max-miou-drop, default 0.5) and score it on "
                        "the held-out data; writes FILE.json and FILE.md")
    p.add_argument("--family", default=None, choices=("single", "group", "class", "shrunk"),
                   help="rule family: single (one offset on the objective's group, e.g. G3), group (one offset per "
                        "group), class (one per class; default), shrunk (per-class pulled toward per-group); single with "
                        "--max-miss-rate")
    p.add_argument("--shrinkage", type=float, default=0.5, metavar="S",
                   help="--family shrunk: b = (1 - S) b_class + S b_group, S in [0, 1] (default 0.5)")


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
    from iaseg.decision import DecisionRule, parse_objective, parse_target, write_calibration_outputs
    from iaseg.decision.cache import pool
    from iaseg.decision.policy import CalibrationPolicy, calibrate_rule
    from iaseg.decision.provenance import validation_record
    from iaseg.inference.open import open_model
    from iaseg.io import json_safe
    from iaseg.metrics import pct
    from iaseg.metrics.html import markdown_page

    from .common import data_settings, device_from, output_file, parse_options, resolve_checkpoint, subset_key

    if args.offset:
        return _given_offsets(args)
    if args.max_miss_rate is not None:
        if args.target or args.max_miou_drop is not None or args.family not in (None, "single"):
            raise CLIError("--max-miss-rate chooses a single group offset by risk control: give no --target or "
                           "--max-miou-drop, and --family single (the default with it)")
        if not 0 < args.max_miss_rate < 1 or (args.delta is not None and not 0 < args.delta < 1):
            raise CLIError("--max-miss-rate and --delta are fractions in (0, 1), e.g. 0.3 and 0.1")
    elif args.delta is not None or args.risk_group is not None:
        raise CLIError("--delta and --risk-group are for --max-miss-rate")
    elif not args.target and args.max_miou_drop is None:
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
    if args.compare_families:
        output_file(args.compare_families, "--compare-families")
        if len(args.cross_fit) < 2:
            raise CLIError("--compare-families needs two or more --cross-fit models (each part is held out in turn)")
    if args.cross_fit and args.cache:
        raise CLIError("--cache names one model's cache; with --cross-fit each model's cache goes next to --out")
    checkpoint = resolve_checkpoint(args.checkpoint)
    device = device_from(args.device)
    model, meta, ckpt, path = open_model(checkpoint, device, "exact", "auto", args.amp)
    if meta.decision_rule is not None:
        raise CLIError(f"{checkpoint} applies a decision rule already (exported with --decision-rule): calibrate "
                       "the model without it")
    desc = meta.description
    targets = [parse_target(t, desc) for t in args.target]
    objective = parse_objective(args.maximize, desc)
    input_size = tuple(args.size) if args.size else tuple(meta.input_size)
    sources: list[dict] = []
    if args.cross_fit:  # each model on data it never trained on; the rule is for --checkpoint
        del model
        parts, roots = [], []
        for i, spec in enumerate(args.cross_fit):
            part_ckpt = resolve_checkpoint(spec)
            part_model, part_meta, part_dict, part_path = open_model(part_ckpt, device, "exact", "auto", args.amp)
            if tuple(part_meta.description.classes) != tuple(desc.classes):
                raise CLIError(f"--cross-fit {part_ckpt}: its classes {list(part_meta.description.classes)} are not "
                               f"those of {checkpoint}")
            record = validation_record(part_dict)
            if record is None:
                raise CLIError(f"--cross-fit {part_ckpt}: the checkpoint records no validation split (config "
                               "data.val_split) to calibrate on")
            part_args = argparse.Namespace(**{**vars(args), "split": record["split"]})
            settings = data_settings(part_args, part_dict, part_meta)
            settings["options"] = {**record["options"], **parse_options(args.options)}
            seen = _seen(part_dict, settings, record["split"], args.allow_seen_data, f"--cross-fit {part_ckpt}")
            parts.append(_collect(part_args, part_ckpt, part_model, part_meta, part_path, settings, input_size,
                                  out.with_name(f"{out.stem}.cache-{i}.pt"), device))
            del part_model
            roots.append(settings["root"])
            sources.append({"checkpoint": part_ckpt, "dataset": settings["name"], "split": record["split"],
                            "options": settings["options"] or None, "images": len(parts[-1].names or []),
                            "seen_data": seen})
        if args.compare_families:
            _compare_families(args, parts, desc)
        data = pool(parts, [s["checkpoint"] for s in sources])
        settings = {"name": sources[0]["dataset"], "root": roots[0], "options": {}}
        seen = "; ".join(s["seen_data"] for s in sources if s["seen_data"]) or None
        print(f"calibrate: cross-fitting: {len(parts)} models on data they never trained on, {len(data.names):,} "
              f"images pooled; the rule is applied to {checkpoint}")
    else:
        settings = data_settings(args, ckpt, meta)
        seen = _seen(ckpt, settings, args.split, args.allow_seen_data, "--split " + args.split)
        cache_path = Path(args.cache) if args.cache else out.with_name(out.stem + ".cache.pt")
        data = _collect(args, checkpoint, model, meta, path, settings, input_size, cache_path, device)
    if device.type == "cuda":
        data = data.to(device)
    log = None if args.no_progress else (lambda s: print("  " + s, file=sys.stderr))
    policy = CalibrationPolicy(targets, args.max_miou_drop, args.max_class_drop, args.allow_class_drop, args.family,
                               args.shrinkage, args.max_miss_rate, args.delta, args.risk_group)
    try:
        fit = calibrate_rule(data, desc, objective, policy, log)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if fit.no_offset is not None:
        print(f"iaseg calibrate: {fit.no_offset}; no rule written", file=sys.stderr)
        return 1
    result, targets = fit.result, fit.targets
    for line in fit.notes:
        print(line)
    for s in result.status:
        print(f"{s['target']}: {pct(s['before'])} -> {pct(s['after'])} ({'met' if s['met'] else 'NOT met'})")
    print(f"{objective.label}: {pct(result.objective_before)} -> {pct(result.objective_after)}")
    recalls = result.class_recalls(fit.shown)
    print("recall of the targeted classes (calibration data): " + ", ".join(
        f"{desc.classes[k]} {pct(b)} -> {pct(a)}" for k, b, a in recalls))
    if not result.met:
        for line in result.unmet_lines():
            print(f"iaseg calibrate: {line}", file=sys.stderr)
        if not args.allow_unmet:
            print("iaseg calibrate: no rule written (use --allow-unmet to write the closest rule found)",
                  file=sys.stderr)
            return 1
    if fit.drop_line:
        print(f"iaseg calibrate: {fit.drop_line}", file=sys.stderr)
        if fit.refused:
            return 1
    info = {
        "calibration": {"checkpoint": checkpoint, "model": meta.model_name, "path": path,
                        "dataset": settings["name"], "root": str(settings["root"]),
                        "split": "cross-fit" if sources else args.split,
                        "options": settings["options"] or None,
                        "images": data.info.get("images"), "subset": subset_key(args), "pixels": data.num_pixels,
                        "labelled_pixels": data.info.get("labelled_pixels"), "input_size": list(input_size),
                        "seen_data": seen, "cross_fit": sources or None},
        "result": result.summary(),
        "class_recall": json_safe({desc.classes[k]: {"before": b, "after": a} for k, b, a in recalls}),
        "guarantee": fit.guarantee,
        "max_class_drop": args.max_class_drop, "class_drop_allowed": bool(fit.drops), "family": fit.family,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "iaseg": __version__,
    }
    if data.names is not None:  # what the rule is expected to do on new data, as intervals
        from iaseg.decision.promise import promise_of_fit

        info["promise"] = promise_of_fit(data, result, desc, targets, objective, in_sample=seen is not None)
        print(f"promise: {info['promise']['summary']}")
    rule = DecisionRule(result.offsets, desc.classes, [str(t) for t in targets], info)
    paths = write_calibration_outputs(rule, result, data, desc, out)
    paths.append(markdown_page(out.with_suffix(".html"), out.with_suffix(".md"), f"Decision rule {out.name}",
                               [out.with_suffix(".png")]))
    from iaseg.decision.apply import describe_rule

    print(describe_rule(rule, str(out)))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _compare_families(args: argparse.Namespace, parts: list, desc) -> None:
    """--compare-families: every family calibrated on all cross-fit parts but one, scored on that
    one (iaseg.decision.comparison.compare_families); JSON and markdown written, the table printed."""
    from iaseg.decision.comparison import compare_families, families_markdown
    from iaseg.decision.families import FAMILIES
    from iaseg.decision.provenance import sequences_of
    from iaseg.io import atomic_write_bytes, write_json

    if len(parts) < 2:
        raise CLIError("--compare-families needs two or more --cross-fit models (each part is held out in turn)")
    named = {}
    for i, part in enumerate(parts):
        name = ",".join(sorted(sequences_of(part.names or []))) or f"part{i}"
        named[name if name not in named else f"{name}#{i}"] = part
    drop = args.max_miou_drop if args.max_miou_drop is not None else 0.5
    comparison = compare_families(named, desc, args.risk_group or desc.group_names[-1], drop, FAMILIES,
                                  args.shrinkage, args.max_class_drop)
    target = Path(args.compare_families)
    table = families_markdown(comparison)
    write_json(target, comparison)
    atomic_write_bytes(target.with_suffix(".md"), table.encode())
    print(table, end="")
    print(f"wrote {target}, {target.with_suffix('.md')}")


def _seen(ckpt: dict, settings: dict, split: str, allow: bool, what: str) -> str | None:
    """Refuse (CLIError) calibration data the model trained on, unless `allow`: then one warning
    line, and the text is recorded in the rule. Returns that text, or None for unseen data."""
    from iaseg.decision.provenance import seen_by_model

    checked, text = seen_by_model(ckpt, settings["name"], settings["root"], split, settings["options"])
    if not checked:
        print(f"iaseg calibrate: warning: {what}: the model records no training data, so it cannot be checked that "
              "the calibration images are new to it", file=sys.stderr)
    if text is None:
        return None
    if not allow:
        raise CLIError(f"{what}: {text}: a rule calibrated there promises more than it keeps on new data; "
                       "calibrate on unseen sequences (or --cross-fit), or --allow-seen-data")
    print(f"iaseg calibrate: warning: {text}: the rule's promise is in-sample and optimistic (--allow-seen-data)",
          file=sys.stderr)
    return text


def _collect(args: argparse.Namespace, checkpoint: str, model, meta, path: str, settings: dict,
             input_size: tuple, cache_path: Path, device):
    """The calibration data of one model on args.split: from `cache_path` when it was made with
    the same model, data and settings, else computed (the network runs once) and cached."""
    from iaseg.data import build_loader
    from iaseg.decision import CACHE_VERSION, CalibrationData, collect_logits

    from .common import labelled_dataset, subset_key

    desc = meta.description
    key = {"checkpoint_sha256": _model_sha256(Path(checkpoint)), "path": path, "dataset": settings["name"],
           "root": str(settings["root"]), "split": args.split, "options": settings["options"],
           "input_size": list(input_size), "full_resolution": bool(args.full_resolution), "amp": args.amp,
           "max_pixels": args.max_pixels, "seed": args.seed, "classes": list(desc.classes),
           "cache_version": CACHE_VERSION,
           **({"subset": subset_key(args)} if subset_key(args) else {})}  # keys of earlier caches stay valid
    key = json.loads(json.dumps(key, default=str))
    if cache_path.is_file():
        data = CalibrationData.load(cache_path)
        if data.info.get("key") == key:
            print(f"calibrate: using cached logits {cache_path} ({data.num_pixels:,} pixels)")
            return data
        print(f"calibrate: {cache_path} was made for other settings; recomputing it", file=sys.stderr)
    dataset = labelled_dataset(args, settings, meta, input_size)
    loader = build_loader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    try:
        data = collect_logits(model, loader, meta.input_names, desc.num_classes, desc.ignore_index, device,
                              amp=args.amp, input_size=input_size if args.full_resolution else None,
                              max_pixels=args.max_pixels, seed=args.seed, progress=not args.no_progress)
    except ValueError as e:
        raise CLIError(f"{settings['name']} {args.split}: {e}") from None
    data.info.update({"key": key, "classes": list(desc.classes), "checkpoint": checkpoint})
    data.save(cache_path)
    sub = f" (random sample of {data.info['labelled_pixels']:,})" if data.info["subsampled"] else ""
    print(f"calibrate: cached {data.num_pixels:,} labelled pixels{sub} in {cache_path}")
    return data


def _given_offsets(args: argparse.Namespace) -> int:
    """--offset NAME=VALUE ...: the rule with exactly these offsets (classes of a named group all
    get VALUE), written without reading data; `iaseg evaluate --decision-rule` scores it."""
    import torch

    from iaseg import __version__
    from iaseg.decision import DecisionRule
    from iaseg.decision.targets import _resolve_name

    from iaseg.inference.open import open_model

    from .common import device_from, output_file, resolve_checkpoint

    if args.target or args.max_miou_drop is not None:
        raise CLIError("--offset writes the given offsets: drop --target / --max-miou-drop")
    out = output_file(args.out)
    if out.suffix.lower() != ".json":
        raise CLIError(f"--out {out}: the rule is a .json file")
    checkpoint = resolve_checkpoint(args.checkpoint)
    meta = open_model(checkpoint, device_from("cpu")).meta
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

