"""What the commands share: the user-error type, size parsing, the --checkpoint, --device and
--decision-rule options of every command that takes them (declared here once, so each means the
same everywhere), and the dataset options of `evaluate` and `calibrate`. Only argparse at import
time: `iaseg --help` stays fast."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from iaseg.metadata import ModelMetadata


class CLIError(Exception):
    """A user error found by a command itself (bad option combination, ...): printed as one
    line, exit status 2. Library code raises its own errors instead; `iaseg.cli.main` maps
    those the same way."""


def parse_size(text: str) -> tuple[int, int]:
    """'360x720' -> (360, 720) (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH (e.g. 360x720), got {text!r}") from None
    if h <= 0 or w <= 0 or h % 8 or w % 8:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be positive multiples of 8")
    return h, w


# what --checkpoint of `evaluate` and `calibrate` adds: an exported file carries no training data
SCORED = ("an exported model needs --root, and --dataset unless its classes are a shipped dataset's (camvid, "
          "cityscapes)")
MODEL_FILES = "an iaseg checkpoint (.pt), a run folder (its best.pt), or an exported model (.onnx, .ts, .xml)"


def add_checkpoint_argument(p: argparse.ArgumentParser, exported: bool = True, required: bool = True,
                            note: str = "") -> None:
    """--checkpoint: with `exported` a checkpoint, run folder or exported file (resolve_checkpoint
    and the runners read all three), else a checkpoint file only; `note` adds what the command
    does with it (or without it, when not `required`)."""
    what = MODEL_FILES if exported else "an iaseg checkpoint (.pt)"
    p.add_argument("--checkpoint", required=required, default=None, help=what + (f"; {note}" if note else ""))


def add_device_argument(p: argparse.ArgumentParser, default: str | None = "auto", note: str = "") -> None:
    """--device auto | cpu | cuda | cuda:N, read with device_from (auto: CUDA when available)."""
    shown = f" (default {default})" if default else ""
    p.add_argument("--device", default=default,
                   help="auto | cpu | cuda | cuda:N" + shown + (f"; {note}" if note else ""))


def add_decision_rule_argument(p: argparse.ArgumentParser, note: str = "") -> None:
    """--decision-rule RULE.json from `iaseg calibrate`; the command applies it through
    iaseg.decision.apply.rule_for_model (a second rule on a model with a baked one is refused)."""
    p.add_argument("--decision-rule", metavar="RULE.json",
                   help="decision rule JSON from `iaseg calibrate` (per-class logit offsets)" + (f"; {note}" if note else ""))


def add_data_arguments(p: argparse.ArgumentParser, purpose: str = "evaluate") -> None:
    """Dataset, resolution and device options shared by `evaluate` and `calibrate`."""
    p.add_argument("--dataset", help="camvid | cityscapes | folder | synthetic (default: the training dataset)")
    p.add_argument("--root", help="dataset root folder (default: the training root)")
    p.add_argument("--split", default="val", help=f"split to {purpose} on (default: val)")
    p.add_argument("--description", help="dataset description YAML (folder datasets)")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option (YAML value, repeatable) over the checkpoint's, e.g. "
                        "--option 'sequences=[0006R0]' --option 'exclude_sequences=[]'")
    p.add_argument("--max-images", type=int, metavar="N",
                   help="only N images of the split, drawn at random with --subset-seed (listed in the output)")
    p.add_argument("--images", metavar="LIST",
                   help="only these images: a text file (one name a line) or comma-separated names "
                        "(file name, stem or the end of the path)")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the --max-images draw (default 0)")
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the training size)")
    p.add_argument("--full-resolution", action="store_true",
                   help="score at the labels' native resolution (logits upsampled), e.g. Cityscapes 1024x2048")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=None, help="data loader workers")
    add_device_argument(p)
    p.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off", help="autocast precision")
    p.add_argument("--no-progress", action="store_true")


def resolve_checkpoint(path: str) -> str:
    """--checkpoint as given, or a run folder's best.pt (said on stdout: which file is used)."""
    from pathlib import Path

    folder = Path(path)
    if not folder.is_dir():
        return path
    best = folder / "best.pt"
    if not best.is_file():
        raise CLIError(f"--checkpoint {folder}: a folder without best.pt; give a checkpoint file or a run folder")
    print(f"using {best}")
    return str(best)


def device_from(spec: str) -> "torch.device":
    """--device auto | cpu | cuda | cuda:N as a torch.device (ValueError without CUDA)."""
    from iaseg.engine.distributed import DistInfo, resolve_device

    return resolve_device(spec, DistInfo())


def data_settings(args: argparse.Namespace, ckpt: dict[str, Any], meta: "ModelMetadata | None" = None) -> dict[str, Any]:
    """--dataset/--root/--description, defaulting to the data the checkpoint was trained on, or
    for an exported file (no training config) to the shipped dataset its classes are named after."""
    from iaseg.checkpoint import dataset_settings
    from iaseg.data import DATASETS

    name = meta.description.name if meta is not None else None
    fallback = name if name and name.lower() in DATASETS and name.lower() != "folder" else None
    settings = dataset_settings(ckpt, args.dataset, args.root, args.description, fallback=fallback)
    settings["options"] = {**settings["options"], **parse_options(getattr(args, "options", []))}
    return settings


def config_overrides(args: argparse.Namespace) -> list[str]:
    """--set items plus the shortcuts --epochs, --root and --device of `train` and `sweep`."""
    overrides = list(args.overrides)
    for flag, key in (("epochs", "train.epochs"), ("root", "data.root"), ("device", "train.device")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    return overrides


def parse_options(items: list[str]) -> dict[str, Any]:
    """--option KEY=VALUE items as a dict, values parsed as YAML ('[0006R0]' -> ['0006R0'])."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--option {item!r}: expected KEY=VALUE, e.g. --option 'sequences=[0006R0]'")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise CLIError(f"--option {item!r}: the value is not valid YAML ({str(e).splitlines()[0]})") from None
    return out


def labelled_dataset(args: argparse.Namespace, settings: dict[str, Any], meta: "ModelMetadata",
                     input_size: tuple[int, int]) -> Any:
    """The --split of the dataset of `settings` for `evaluate`/`calibrate`: images at
    `input_size` unless --full-resolution; it must have the model's classes."""
    from iaseg.data import build_dataset

    spatial = {"spatial_size": meta.spatial_size} if meta.num_inputs == 2 else {}
    dataset = build_dataset(settings["name"], settings["root"], args.split,
                            size=None if args.full_resolution else input_size, **spatial, **settings["options"])
    desc = meta.description
    if dataset.description.num_classes != desc.num_classes:
        raise CLIError(f"dataset {settings['name']!r} has {dataset.description.num_classes} classes, the checkpoint "
                       f"{desc.num_classes}")
    return image_subset(args, dataset)


def image_subset(args: argparse.Namespace, dataset: Any) -> Any:
    """--max-images / --images applied to `dataset` (the choice said on stdout, and kept in the
    subset's `.subset` for report.json)."""
    from iaseg.data.subset import describe_choice, read_image_list, subset

    images = read_image_list(args.images) if getattr(args, "images", None) else None
    chosen = subset(dataset, getattr(args, "max_images", None), images, getattr(args, "subset_seed", 0))
    if chosen is not dataset:
        print(f"{args.split}: {describe_choice(chosen.subset)}")
    return chosen


def subset_key(args: argparse.Namespace) -> dict[str, Any] | None:
    """What --max-images / --images / --subset-seed ask for, for cache keys (None: every image)."""
    from iaseg.data.subset import read_image_list

    if args.max_images is None and not args.images:
        return None
    return {"max_images": args.max_images, "images": read_image_list(args.images) if args.images else None,
            "seed": args.subset_seed if args.max_images is not None else None}


def output_folder(path: str, option: str = "--out") -> Path:
    """An output folder option, checked before any work: refused when it, or a folder above
    it, is an existing file (mkdir would fail only after the work is done)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{option} {out} is an existing file; give a folder")
    _parents_are_folders(out, option)
    return out


def output_file(path: str, option: str = "--out", *siblings: str) -> Path:
    """An output file option (and the `siblings` suffixes written beside it, e.g. '.bin'),
    checked before any work: refused when it is an existing folder or a folder above it is a
    file. An existing file is replaced."""
    out = Path(path)
    for target in (out, *(out.with_suffix(s) for s in siblings)):
        if target.is_dir():
            raise CLIError(f"{option} {out}: {target} is an existing folder; give a file name")
    _parents_are_folders(out, option)
    return out


def _parents_are_folders(out: Path, option: str) -> None:
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"{option} {out}: {parent} is a file, not a folder")
            return
