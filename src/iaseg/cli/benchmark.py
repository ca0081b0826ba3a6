"""`iaseg benchmark`: inference, training-step and input-pipeline throughput (`iaseg.speed`).

    iaseg benchmark --model erfpspnet --size 360x720 --batch 1 --backend all --threads 2
    iaseg benchmark --mode train --size 360x480 --batch 8 --loss all --threads 2
    iaseg benchmark --mode pipeline --dataset camvid --root data/camvid --batch 8 --workers 2
    iaseg benchmark --mode pipeline --config camvid_strong_ce --root data/camvid --workers 1   # + its augmentation
    iaseg benchmark --checkpoint best.pt --backend all --dataset camvid --root data/camvid   # + int8 accuracy
    iaseg benchmark --mode video --checkpoint best.pt --frames 100 --threads 2   # predict's path vs the model

Inference and train modes first measure the machine's matmul peak (a few seconds; --no-peak skips
it) and show each row's GFLOP/s and % of the peak of its precision. With --checkpoint and a
labelled split, the int8 rows are calibrated on that dataset's train images and scored against
the fp32 model on the split: mean IoU and top-group recall, PASS or FAIL against the limits of
`iaseg export --int8` (reported only: a FAIL does not change the exit status).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CLIError, add_checkpoint_argument, add_device_argument, parse_size

if TYPE_CHECKING:  # pragma: no cover
    from iaseg.speed import BenchmarkSettings


def add_arguments(p: argparse.ArgumentParser) -> None:
    from iaseg.speed import LOSSES, MODES

    p.add_argument("--mode", choices=MODES, default="inference")
    p.add_argument("--model", type=_model_name, default="erfpspnet",
                   help="erfpspnet, bierfpspnet or any network as 'package.module:factory' (default erfpspnet)")
    add_checkpoint_argument(p, exported=False, required=False, note="its weights (default: random init)")
    p.add_argument("--num-classes", type=int, default=None, help="classes of a random-init model (default 11)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="input HxW (default: the --checkpoint's in inference mode, else 360x720 for "
                        "inference/pipeline, 360x480 for train)")
    p.add_argument("--spatial-size", type=parse_size, default=None,
                   help="BiERF-PSPNet spatial input HxW (default: the --checkpoint's at its size, else "
                        "1024x2048 for 360x720)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 1; train 8)")
    p.add_argument("--backend", choices=["naive", "eager", "compile", "onnxruntime", "torchscript", "openvino", "all"],
                   default="all", help="inference backend, or all of them side by side (default)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8", "all"], default="auto",
                   help="with one --backend: its precision (auto = iaseg's default for the device)")
    add_device_argument(p, "cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch and ONNX Runtime")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 5; train 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 30; train 5)")
    p.add_argument("--no-compile", action="store_true", help="leave torch.compile rows out of --backend all")
    p.add_argument("--cuda-graphs", action="store_true", help="eager on CUDA: replay CUDA graphs")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON to FILE")
    p.add_argument("--no-peak", action="store_true", help="skip measuring the machine's matmul peak (no %% peak column)")
    g = p.add_argument_group("train mode")
    g.add_argument("--loss", choices=[*LOSSES, "all"], default="all", help="loss of the training step")
    g.add_argument("--train-precision", default="all", metavar="{fp32,fast,fast-previous,all}",
                   help="fp32 eager; fast (bf16 autocast + channels_last on CPU, fp16 AMP + channels_last "
                        "on CUDA), fast-previous (the fast path before the CPU training-speed work: torch's "
                        "dropout masks, fp32 trunk and head; iaseg.models.paths), or all side by side (default); "
                        "a comma-separated list picks several (fp32,fast)")
    g.add_argument("--crop", type=_crop, default=None,
                   help="also time training on HxW crops of the frames (default 288x384 where it fits --size; "
                        "'off': full frames only)")
    g = p.add_argument_group("video mode (the whole predict path against the model alone; needs --checkpoint)")
    g.add_argument("--input", default=None, help="a video to run (default: a synthetic H.264 clip)")
    g.add_argument("--frames", type=int, default=None, help="synthetic clip length in frames (default 100)")
    g.add_argument("--frame-size", type=parse_size, default=None,
                   help="synthetic clip frame HxW (default 360x720)")
    g = p.add_argument_group("pipeline mode; inference mode: the int8 accuracy check")
    g.add_argument("--dataset", default=None, help="dataset name for iaseg.data.build_dataset")
    g.add_argument("--root", type=Path, default=None, help="dataset root")
    g.add_argument("--split", default=None, help="default: train (pipeline), val (the int8 accuracy check)")
    g.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    g.add_argument("--config", default=None, metavar="CONFIG",
                   help="pipeline: the loader of this training config (its dataset, size, options; one row without "
                        "and one with its augmentation)")
    g.add_argument("--accuracy-images", type=int, default=None, metavar="N",
                   help="int8 accuracy check: at most N images of the split (a seeded subset; default all)")
    g.add_argument("--calib-images", type=int, default=32, metavar="N",
                   help="int8 accuracy check: calibrate the int8 rows on N train images (default 32)")


def _crop(value: str) -> str | tuple[int, int]:
    return "off" if value == "off" else parse_size(value)


def _model_name(name: str) -> str:
    from iaseg.models import MODELS, is_import_path

    if is_import_path(name) or name in MODELS:
        return name
    raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {sorted(MODELS)} or "
                                     "'package.module:factory')")


def _print_row(row: dict[str, Any], done: int, total: int) -> None:
    """Each row on stderr as soon as it is measured (the table follows on stdout), with a warning
    when it is noisy."""
    from iaseg.speed import noise_warning, progress_line

    print(progress_line(row, done, total), file=sys.stderr, flush=True)
    warning = noise_warning(row)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def settings_of(args: argparse.Namespace) -> "BenchmarkSettings":
    """The parsed options as the settings `iaseg.speed.benchmark` takes."""
    from dataclasses import fields

    from iaseg.speed import BenchmarkSettings

    from .common import device_from

    settings = BenchmarkSettings(**{f.name: getattr(args, f.name) for f in fields(BenchmarkSettings)})
    if settings.device == "auto":  # the others as given (the report names the device asked for)
        settings.device = str(device_from("auto"))
    return settings


def command_line(args: argparse.Namespace) -> str:
    """The options that shape the measurement, as an `iaseg benchmark` command (for the report)."""
    parts = ["iaseg", "benchmark", "--mode", args.mode]
    only = {"train": ("loss", "train_precision", "crop"), "pipeline": ("workers", "config"),
            "inference": ("backend", "precision", "checkpoint", "accuracy_images", "calib_images"),
            "video": ("checkpoint", "input", "frames", "frame_size")}
    for opt in ("model", "checkpoint", "num_classes", "size", "spatial_size", "batch", "backend",
                "precision", "device", "threads", "warmup", "repeats", "loss", "train_precision",
                "dataset", "root", "split", "workers", "config", "accuracy_images", "calib_images", "input", "frames",
                "frame_size", "crop"):
        v = getattr(args, opt, None)
        modes = [mode for mode, opts in only.items() if opt in opts]  # the modes an option belongs to
        if v is None or (modes and args.mode not in modes) or \
                (args.mode == "train" and opt in ("dataset", "root", "split")) or \
                (opt == "calib_images" and not getattr(args, "dataset", None)):
            continue
        if isinstance(v, tuple):
            v = "x".join(map(str, v))
        parts += ["--" + opt.replace("_", "-"), str(v)]
    parts += [f"--{flag.replace('_', '-')}" for flag in ("no_compile", "cuda_graphs", "no_peak")
              if getattr(args, flag, False)]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from iaseg.speed import benchmark, format_report
    from iaseg.io import write_json

    if args.batch is not None and args.batch < 1:
        raise CLIError("--batch must be >= 1")
    if (args.repeats is not None and args.repeats < 1) or (args.warmup is not None and args.warmup < 0):
        raise CLIError("--repeats must be >= 1 and --warmup >= 0")
    if args.frames is not None and args.frames < 1:
        raise CLIError("--frames must be >= 1")
    if args.mode == "video" and not args.checkpoint:
        raise CLIError("--mode video needs --checkpoint")
    if (args.accuracy_images is not None and args.accuracy_images < 1) or args.calib_images < 1:
        raise CLIError("--accuracy-images and --calib-images must be >= 1")
    if args.precision not in ("auto", "all") and args.backend in ("all", "naive"):
        raise CLIError(f"--precision {args.precision} needs one --backend (eager, compile, onnxruntime, torchscript, "
                       "openvino)")
    print(f"benchmarking {args.mode} speed; each row is printed as soon as it is measured", file=sys.stderr,
          flush=True)
    if args.mode in ("inference", "train") and not args.no_peak:  # the modes that measure it
        print("measuring the machine's matmul peak first (a few seconds; --no-peak skips it)", file=sys.stderr,
              flush=True)
    try:
        report = benchmark(settings_of(args), command_line(args), on_row=_print_row)
    except ImportError as e:  # an optional dependency (ONNX Runtime, ...)
        raise CLIError(str(e)) from None
    print(format_report(report))
    if args.json is not None:
        write_json(args.json, report, default=str)
        print(f"wrote {args.json}")
    return 0
