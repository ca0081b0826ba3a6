"""`iaseg predict`: segment an image, a folder of images or a video.

Writes, per input image (or video frame) `<stem>`:
    DIR/masks/<stem>.png      colour mask in the dataset palette
    DIR/overlays/<stem>.png   mask blended over the image   (--overlay)
    DIR/labels/<stem>.png     single-channel class ids      (--save-labels)
Video frames are named `<stem>_<frame index:06d>`. Masks have the input image's size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import CLIError, device_from, output_folder, parse_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="an iaseg checkpoint (.pt) or exported .onnx model")
    p.add_argument("--input", required=True, help="an image, a folder of images, or a video file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--save-labels", action="store_true", help="also write class-id PNGs to OUT/labels/")
    p.add_argument("--overlay", action="store_true", help="also write masks blended over the images")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the training size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto", choices=("auto", "eager", "compile", "onnxruntime", "torchscript",
                                                         "openvino"),
                   help="inference backend (default for checkpoints on CPU: openvino when installed, else eager; "
                        "the file's own for .onnx/.ts/.xml)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                   help="auto: bf16 on CPUs with native bf16, fp16 on CUDA, else fp32")
    p.add_argument("--decision-rule", help="decision rule JSON from `iaseg calibrate`")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from iaseg.inference import load_runner
    from iaseg.inference.frames import iter_frames
    from iaseg.inference.predictor import Predictor
    from iaseg.models import default_spatial_size, takes_spatial
    from iaseg.visualize import colorize, overlay, save_png

    if args.batch_size < 1:
        raise CLIError("--batch-size must be >= 1")
    output_folder(args.out)  # before any work
    device = device_from(args.device)
    # the fastest checked inference path for this machine (iaseg.inference.load_runner): BN
    # folded, channels_last, bf16 where the CPU has native bf16; --precision fp32 for exact
    runner = load_runner(args.checkpoint, backend=None if args.backend == "auto" else args.backend,
                         precision=args.precision, device=device)
    print(f"running {runner.describe()}")
    desc = runner.description
    input_size = tuple(args.size) if args.size else runner.input_size
    if input_size is None:
        raise CLIError("the model records no input size: give --size HxW")
    spatial = runner.spatial_size
    if takes_spatial(runner.model_name) and spatial is None:
        spatial = default_spatial_size(input_size)
    decide = None
    if args.decision_rule and runner.meta.decision_rule is not None:
        raise CLIError(f"{args.checkpoint} already applies a decision rule (exported with --decision-rule): "
                       "drop --decision-rule")
    if args.decision_rule:
        from iaseg.decision import load_rule

        decide = load_rule(args.decision_rule, desc).decide
    predictor = Predictor(runner, runner.model_name, input_size, spatial, device, decide)
    out = Path(args.out)
    src = Path(args.input)
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="predicting", unit="img", file=sys.stderr, leave=False)
    count = 0

    def flush(names: list[str], images: list[np.ndarray]) -> None:
        for name, image, label in zip(names, images, predictor(images)):
            save_png(colorize(label, desc), out / "masks" / f"{name}.png")
            if args.overlay:
                save_png(overlay(image, label, desc), out / "overlays" / f"{name}.png")
            if args.save_labels:
                save_png(label.astype(np.uint8), out / "labels" / f"{name}.png")
        if bar is not None:
            bar.update(len(names))

    names: list[str] = []
    images: list[np.ndarray] = []
    try:
        for name, image in iter_frames(src):
            names.append(name)
            images.append(image)
            if len(names) == args.batch_size:
                flush(names, images)
                count += len(names)
                names, images = [], []
    except ImportError as e:  # an optional dependency (PyAV for video)
        raise CLIError(str(e)) from None
    if names:
        flush(names, images)
        count += len(names)
    if bar is not None:
        bar.close()
    print(f"segmented {count} image(s) from {src} into {out}")
    return 0
