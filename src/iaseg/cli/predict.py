"""`iaseg predict`: segment an image, a folder of images (--recursive: its whole tree) or a video.

Images and folders: per input image `<name>` (its stem; `sub/dir/stem` below a folder given
with --recursive, so the output tree mirrors the input tree):
    DIR/masks/<name>.png      colour mask in the dataset palette
    DIR/overlays/<name>.png   mask blended over the image   (--overlay)
    DIR/labels/<name>.png     single-channel class ids      (--save-labels)
A video: DIR/<stem>_overlay.mp4, the mask blended over each frame at the source frame rate
(--highlight: only the most important group; --legend: class names); --save-frames also
writes the PNGs above per frame, named `<stem>_<frame index:06d>`. The MP4 carries no audio.
Masks have the input's size. Images are resized to the network as in training (PIL bilinear,
antialiased); --keep-aspect pads them to the network's aspect ratio instead of stretching.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

from .common import (CLIError, add_checkpoint_argument, add_decision_rule_argument, add_device_argument, device_from,
                     output_folder, parse_size, resolve_checkpoint)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(p)
    p.add_argument("--input", required=True, help="an image, a folder of images, or a video file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--recursive", action="store_true",
                   help="also segment the images in the sub-folders of --input (the output tree mirrors it)")
    p.add_argument("--save-labels", action="store_true", help="also write class-id PNGs to OUT/labels/")
    p.add_argument("--overlay", action="store_true", help="also write masks blended over the images")
    p.add_argument("--save-frames", action="store_true",
                   help="video input: also write the per-frame PNGs (masks, and --overlay/--save-labels)")
    p.add_argument("--legend", action="store_true", help="draw the class colours and names on masks, overlays and video")
    p.add_argument("--highlight", nargs="?", const="", metavar="GROUP",
                   help="overlays and video colour only the classes of GROUP (default: the most important group)")
    p.add_argument("--keep-aspect", action="store_true",
                   help="pad images to the network's aspect ratio (bands mirrored from the image, cut off again) instead of stretching")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the training size)")
    add_device_argument(p)
    p.add_argument("--backend", default="auto", choices=("auto", "eager", "compile", "onnxruntime", "torchscript",
                                                         "openvino"),
                   help="inference backend (default for checkpoints on CPU: openvino when installed, else eager; "
                        "the file's own for .onnx/.ts/.xml)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                   help="auto: bf16 on CPUs with native bf16, fp16 on CUDA, else fp32")
    add_decision_rule_argument(p)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from iaseg.inference import load_runner
    from iaseg.inference.frames import is_video, iter_frames, list_images
    from iaseg.inference.predictor import Predictor
    from iaseg.inference.stream import model_fps, predict_stream
    from iaseg.inference.video import VIDEO_EXTENSIONS, VideoWriter, video_info
    from iaseg.visualize import blend, blend_table, colorize, draw_legend, highlight_classes, save_png

    if args.batch_size < 1:
        raise CLIError("--batch-size must be >= 1")
    output_folder(args.out)  # before any work
    src, out = Path(args.input), Path(args.out)
    video = is_video(src) and src.is_file()
    if video and not args.save_frames and (args.overlay or args.save_labels):
        raise CLIError("--overlay/--save-labels write per-frame PNGs of a video: add --save-frames "
                       "(the annotated MP4 is written anyway)")
    if args.save_frames and not video:
        raise CLIError(f"--save-frames is for video input; {src} is not a video ({', '.join(VIDEO_EXTENSIONS)})")
    try:  # input errors (name collisions too) before loading the model
        if video:
            info = video_info(src)
            total = info.frames or None  # the progress bar's total (and ETA) where the header has it
        else:
            total = len(list_images(src, args.recursive))
    except ImportError as e:  # an optional dependency (PyAV for video)
        raise CLIError(str(e)) from None
    checkpoint = resolve_checkpoint(args.checkpoint)
    device = device_from(args.device)
    # the fastest checked inference path for this machine (iaseg.inference.load_runner): BN
    # folded, channels_last, bf16 where the CPU has native bf16; --precision fp32 for exact
    runner = load_runner(checkpoint, backend=None if args.backend == "auto" else args.backend,
                         precision=args.precision, device=device,
                         input_size=tuple(args.size) if args.size else None)
    print(f"running {runner.describe()}")
    desc = runner.description
    input_size = tuple(args.size) if args.size else runner.input_size
    if input_size is None:
        raise CLIError("the model records no input size: give --size HxW")
    only = None
    if args.highlight is not None:
        try:
            only = highlight_classes(desc, args.highlight or None)
        except ValueError as e:
            raise CLIError(f"--highlight: {e}") from None
    from iaseg.decision.apply import rule_for_model

    applied = rule_for_model(args.decision_rule, runner.meta, checkpoint)  # refuses a second rule
    # a rule of offsets itself (not its bound decide): Predictor's fast label maps use its offsets
    decide = applied.rule if applied.decide is not None else None
    if applied.line:  # images and video alike: never a silent rule
        print(applied.line)
    predictor = Predictor(runner, runner.meta.with_(input_size=input_size), device, decide,
                          keep_aspect=args.keep_aspect)
    legend = (lambda a, classes=None: draw_legend(a, desc, classes)) if args.legend else (lambda a, classes=None: a)
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="predicting", unit="frame" if video else "img", file=sys.stderr, leave=False)
    table = blend_table(desc, only=only)
    with VideoWriter(out / f"{src.stem}_overlay.mp4", info.rate) if video else nullcontext() as writer:

        def write(name: str, image: np.ndarray, label: np.ndarray) -> None:  # in the writing thread, in order
            if writer is not None:
                writer.write(legend(blend(image, label, table), only))
            if writer is None or args.save_frames:
                save_png(legend(colorize(label, desc)), out / "masks" / f"{name}.png")
                if args.overlay:
                    save_png(legend(blend(image, label, table), only), out / "overlays" / f"{name}.png")
                if args.save_labels:
                    save_png(label.astype(np.uint8), out / "labels" / f"{name}.png")

        try:  # reading, the network and writing overlap (iaseg.inference.stream)
            stats = predict_stream(iter_frames(src, args.recursive), predictor, write, args.batch_size,
                                   on_batch=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
    count = stats.frames
    if writer is not None:
        print(f"wrote {writer.path}: {writer.frames} frames at {float(info.rate):.4g} fps, {info.width}x{info.height}")
    print(f"segmented {count} {'frame' if video else 'image'}(s) from {src} into {out}")
    if stats.first is not None:  # the whole path against the network alone on this machine, now
        alone = model_fps(predictor, stats.first)
        print(f"speed: {stats.fps:.1f} {'frames' if video else 'images'}/s end to end, the model alone "
              f"{alone:.1f}/s ({stats.fps / alone:.2f}x; batch {args.batch_size})")
    return 0

