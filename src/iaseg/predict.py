"""`iaseg predict`: segment an image, a folder of images or a video.

Writes, per input image (or video frame) `<stem>`:
    DIR/masks/<stem>.png      colour mask in the dataset palette
    DIR/overlays/<stem>.png   mask blended over the image   (--overlay)
    DIR/labels/<stem>.png     single-channel class ids      (--save-labels)
Video frames are named `<stem>_<frame index:06d>`. Masks have the input image's size.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from iaseg.models import TWO_INPUT_MODELS

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def iter_frames(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, H x W x 3 uint8 RGB) for an image, each image of a folder, or each video frame."""
    from iaseg.cli import CLIError

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise CLIError(f"{path}: no images ({', '.join(sorted(IMAGE_EXTS))}) in this folder")
        for f in files:
            yield f.stem, _read_image(f)
    elif path.suffix.lower() in VIDEO_EXTS:
        yield from _iter_video(path)
    elif path.is_file():
        yield path.stem, _read_image(path)
    else:
        raise CLIError(f"{path}: no such file or folder")


def _read_image(path: Path) -> np.ndarray:
    from iaseg.cli import CLIError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise CLIError(f"{path}: cannot read image ({e})") from None


def _iter_video(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    from iaseg.cli import CLIError

    try:
        import av
    except ImportError:
        raise CLIError("reading video needs PyAV: pip install av") from None
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                yield f"{path.stem}_{i:06d}", frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise CLIError(f"{path}: cannot read video ({e})") from None


def save_png(array: np.ndarray, path: Path) -> None:
    """Encode in memory, then write atomically: a crash never leaves half a PNG."""
    from iaseg.io import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


class Predictor:
    """Callable: list of H x W x 3 uint8 images -> list of H x W int64 label maps (input sizes)."""

    def __init__(self, net: Callable[..., torch.Tensor], model_name: str, input_size: tuple[int, int],
                 spatial_size: tuple[int, int] | None, device: torch.device,
                 decide: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.net, self.model_name, self.device = net, model_name, device
        self.input_size, self.spatial_size = tuple(input_size), spatial_size
        self.decide = decide or (lambda logits: logits.argmax(1))

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        x = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255) for im in images]
        batch = torch.stack([F.interpolate(t[None], size=self.input_size, mode="bilinear",
                                           align_corners=False)[0] for t in x]).to(self.device)
        inputs = [batch]
        if self.model_name in TWO_INPUT_MODELS:
            assert self.spatial_size is not None
            inputs.append(torch.stack([F.interpolate(t[None], size=self.spatial_size, mode="bilinear",
                                                     align_corners=False)[0] for t in x]).to(self.device))
        logits = self.net(*inputs)  # the runner owns precision (bf16/fp16/fp32)
        out = []
        for i, im in enumerate(images):
            li = F.interpolate(logits[i:i + 1].float(), size=im.shape[:2], mode="bilinear", align_corners=False)
            out.append(self.decide(li)[0].cpu().numpy())
        return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    from iaseg.models.info import parse_size

    p.add_argument("--checkpoint", required=True, help="an iaseg checkpoint (.pt) or exported .onnx model")
    p.add_argument("--input", required=True, help="an image, a folder of images, or a video file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--save-labels", action="store_true", help="also write class-id PNGs to OUT/labels/")
    p.add_argument("--overlay", action="store_true", help="also write masks blended over the images")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=parse_size, help="network input HxW (default: the training size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto", choices=("auto", "eager", "compile", "onnxruntime", "torchscript"),
                   help="inference backend (default: eager for checkpoints, the file's own for .onnx/.ts)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                   help="auto: bf16 on CPUs with native bf16, fp16 on CUDA, else fp32")
    p.add_argument("--decision-rule", help="decision rule JSON from `iaseg calibrate`")
    p.add_argument("--no-progress", action="store_true")


def _load(args: argparse.Namespace, device: torch.device) -> tuple[Callable[..., torch.Tensor], dict[str, Any]]:
    """The fastest checked inference path for this machine (iaseg.inference.load_runner):
    BN folded, channels_last, bf16 where the CPU has native bf16; --precision fp32 for exact."""
    from iaseg.checkpoint import CheckpointError
    from iaseg.cli import CLIError
    from iaseg.inference import load_runner

    backend = None if args.backend == "auto" else args.backend
    try:
        runner = load_runner(args.checkpoint, backend=backend, precision=args.precision, device=device)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        raise CLIError(str(e).strip().splitlines()[0]) from None
    return runner, {"model_name": runner.model_name, "description": runner.description,
                    "input_size": runner.input_size, "spatial_size": runner.spatial_size,
                    "decision_rule": runner.meta.decision_rule}


def run(args: argparse.Namespace) -> int:
    from iaseg.cli import CLIError
    from iaseg.engine.distributed import DistInfo, resolve_device
    from iaseg.visualize import colorize, overlay

    if args.batch_size < 1:
        raise CLIError("--batch-size must be >= 1")
    try:
        device = resolve_device(args.device, DistInfo())
    except ValueError as e:
        raise CLIError(str(e)) from None
    net, meta = _load(args, device)
    desc = meta["description"]
    input_size = tuple(args.size) if args.size else meta["input_size"]
    if input_size is None:
        raise CLIError("the model records no input size: give --size HxW")
    spatial = meta.get("spatial_size")
    if meta["model_name"] in TWO_INPUT_MODELS and spatial is None:
        from iaseg.models import default_spatial_size

        spatial = default_spatial_size(input_size)
    decide = None
    if args.decision_rule and meta["decision_rule"] is not None:
        raise CLIError(f"{args.checkpoint} already applies a decision rule (exported with --decision-rule): "
                       "drop --decision-rule")
    if args.decision_rule:
        from iaseg.decision import load_rule

        decide = load_rule(args.decision_rule, desc).decide
    predictor = Predictor(net, meta["model_name"], input_size, spatial, device, decide)
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
    for name, image in iter_frames(src):
        names.append(name)
        images.append(image)
        if len(names) == args.batch_size:
            flush(names, images)
            count += len(names)
            names, images = [], []
    if names:
        flush(names, images)
        count += len(names)
    if bar is not None:
        bar.close()
    print(f"segmented {count} image(s) from {src} into {out}")
    return 0
