"""`iaseg export`: a checkpoint to ONNX, TorchScript or OpenVINO IR, checked against the checkpoint.

    iaseg export --checkpoint best.pt --out erfpspnet.onnx
    iaseg export --checkpoint best.pt --out erfpspnet-int8.onnx \\
        --int8 --calib-root data/camvid/train --val-root data/camvid/val --val-labels data/camvid/valannot
    iaseg export --checkpoint best.pt --out erfpspnet.xml        # + erfpspnet.bin
    iaseg export --checkpoint best.pt --out erfpspnet-int8.xml --int8 \\
        --calib-root data/camvid --calib-dataset camvid --val-root data/camvid --val-dataset camvid

int8 exports (ONNX Runtime static quantization or NNCF for OpenVINO) given labelled validation
images pass an accuracy guard: mean IoU may drop by at most 0.5 points and the most important
group's recall by at most 1 point against the same model in fp32, else the files are removed
and the command fails (exit 1; --allow-accuracy-drop keeps them with a warning). An OpenVINO int8
IR records the guard's figures and its checkpoint's weights digest; written beside the
checkpoint as STEM.int8*.xml, one whose guard passed becomes what `iaseg predict` and
`load_runner(checkpoint)` run at its size (iaseg.inference.checked_int8):

    iaseg export --checkpoint weights/ce.pt --out weights/ce.int8-360x720.xml --size 360x720 --int8 \
        --calib-root data/camvid --calib-dataset camvid --val-root data/camvid --val-dataset camvid

The format comes from the extension of --out (.onnx, .ts, .pt, .xml); --format, when given, must
agree with it (checked before anything is written). Files are written into a hidden folder
beside --out and moved into place only when the export and its checks pass: a failure leaves
no file behind.

The exported graph has BatchNorm folded into the convolutions, a dynamic batch axis and a fixed
H x W (the checkpoint's input size or --size; BiERF-PSPNet: context and spatial sizes). Inputs
are named 'image' (ERF-PSPNet) or 'context' and 'spatial' (BiERF-PSPNet), the output 'logits'.
The dataset description, model name and sizes travel inside the file (ONNX metadata_props;
TorchScript extra file + FILE.json), so `iaseg.inference.load_runner(FILE)` needs nothing else.
After writing, the file is run on a few inputs at batch 2 and compared with the checkpoint in
plain fp32 eager PyTorch: max |logit diff| and argmax agreement are printed, and the command
fails (exit 1, nothing written) when fp32 agreement is below --min-agreement (99.9 %)
(`iaseg.inference.parity_check`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from .common import CLIError, add_checkpoint_argument, add_decision_rule_argument, output_file, parse_size

FORMATS = {"onnx": ".onnx", "torchscript": ".ts", "checkpoint": ".pt", "openvino": ".xml"}
CHECKPOINT_SUFFIXES = (".pt", ".pth")  # what load_runner (and so predict/evaluate) reads as a checkpoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(p, exported=False)
    p.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="default: from the extension of --out (.onnx onnx, .ts torchscript, .pt checkpoint, "
                        ".xml openvino); when given, it must agree with the extension")
    p.add_argument("--out", required=True,
                   help="output file: .onnx, .ts (TorchScript), .pt (slim checkpoint) or .xml (OpenVINO IR, with a "
                        ".bin beside it); written only when the export and its checks succeed")
    p.add_argument("--half", action="store_true",
                   help="--format checkpoint: store the weights in fp16 (half the size; computation stays fp32)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="input HxW (context size for BiERF-PSPNet; default: the checkpoint's)")
    p.add_argument("--spatial-size", type=parse_size, default=None,
                   help="BiERF-PSPNet spatial input HxW (default: the checkpoint's, else 1024x2048 for 360x720)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 to 20 (default 17)")
    p.add_argument("--no-fold-bn", action="store_true", help="keep BatchNorm layers in the graph")
    add_decision_rule_argument(p, "baked into the graph: outputs become logits + offsets, so a plain argmax "
                                  "applies it (recorded in the file's metadata)")
    p.add_argument("--min-agreement", type=float, default=None, metavar="PCT",
                   help="fail below this argmax agreement with the checkpoint, in %% "
                        "(default 99.9 for fp32; int8: report only unless given)")
    p.add_argument("--parity-count", type=int, default=4, help="inputs for the parity check (default 4)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    g = p.add_argument_group("int8 (ONNX Runtime static quantization or OpenVINO NNCF, CPU)")
    g.add_argument("--int8", action="store_true", help="write an int8 model (needs --calib-root)")
    g.add_argument("--allow-accuracy-drop", action="store_true",
                   help="keep an int8 model that loses more than 0.5 mIoU or 1 point of top-group recall "
                        "on the labelled validation images (default: remove it and fail)")
    g.add_argument("--calib-root", type=Path,
                   help="calibration images: a folder, or a dataset root with --calib-dataset")
    g.add_argument("--calib-dataset", default=None,
                   help="dataset name read with iaseg.data.build_dataset (split train)")
    g.add_argument("--calib-count", type=int, default=32, help="calibration images (default 32)")
    g.add_argument("--calib-method", choices=["minmax", "percentile", "entropy"], default="minmax",
                   help="ONNX Runtime calibration method (OpenVINO: NNCF's default)")
    g.add_argument("--val-root", type=Path, help="validation images for the accuracy change (folder or dataset root)")
    g.add_argument("--val-labels", type=Path, help="label images with the same names as --val-root's (for mIoU)")
    g.add_argument("--val-dataset", default=None, help="dataset name for --val-root (split val)")
    g.add_argument("--val-count", type=int, default=None, help="validation images (default: all)")


def _samples(root: Path, dataset: str | None, split: str, meta: Any, count: int | None,
             labels: Path | None = None) -> list[tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]:
    from iaseg.inference.images import dataset_samples, folder_inputs, labelled_folder_samples

    if dataset:
        return dataset_samples(dataset, root, split, meta, count)
    if labels is not None:
        return labelled_folder_samples(root, labels, meta, count)
    return [(x, None) for x in folder_inputs(root, meta, count)]


def _batched(samples: list[tuple[tuple[torch.Tensor, ...], Any]], batch: int) -> list[tuple[torch.Tensor, ...]]:
    xs = [s[0] for s in samples]
    return [tuple(torch.cat(parts) for parts in zip(*xs[i:i + batch])) for i in range(0, len(xs), batch)]


def _fmt_agreement(a: dict[str, Any]) -> str:
    return (f"max |logit diff| {a['max_abs_diff']:.3g}, argmax agreement {100 * a['argmax_agreement']:.3f}% "
            f"of {a['pixels']:,} pixels ({a['images']} images; near ties {100 * a['near_ties']:.3f}%"
            + (f"; {a['nonfinite']:,} pixels with NaN/inf logits, never counted as agreeing" if a.get("nonfinite")
               else "") + ")")


def format_of(out: Path) -> str | None:
    """The export format that the extension of `out` names (the suffixes `load_runner` reads),
    or None for an unknown extension."""
    from iaseg.inference.runner_base import ONNX_SUFFIXES, OPENVINO_SUFFIXES, TORCHSCRIPT_SUFFIXES

    suffix = out.suffix.lower()
    for fmt, suffixes in (("onnx", ONNX_SUFFIXES), ("torchscript", TORCHSCRIPT_SUFFIXES),
                          ("openvino", OPENVINO_SUFFIXES), ("checkpoint", CHECKPOINT_SUFFIXES)):
        if suffix in suffixes:
            return fmt
    return None


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = format_of(out)
    if fmt is None:
        raise CLIError(f"--out {out}: cannot tell the format from {out.suffix or 'a name without extension'!r}; "
                       "use .onnx, .ts (TorchScript), .pt (checkpoint) or .xml (OpenVINO)")
    if args.format is not None and args.format != fmt:
        raise CLIError(f"--format {args.format} contradicts --out {out.name}, whose extension means {fmt}; "
                       f"use {FORMATS[args.format]} or drop --format")
    args.format = fmt
    output_file(args.out, "--out", *((".bin",) if fmt == "openvino" else ()))  # a folder in the way: before any work
    # everything is written into a hidden folder beside --out and moved into place only on
    # success: a failed export or check leaves nothing behind (and an older file untouched)
    from iaseg.io import replace_files, write_error

    stage = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    try:  # a read-only folder: one line before any work
        stage.mkdir(parents=True)
    except OSError as e:
        raise write_error(out, e) from None
    try:
        rc = _export_checkpoint(args, stage / out.name) if fmt == "checkpoint" else _export(args, stage / out.name)
        if rc == 0:  # an OpenVINO IR's .bin sorts before its .xml, as readers need
            replace_files((f, out.parent / f.name) for f in sorted(stage.iterdir()))
        else:
            print(f"nothing written to {out}")
        return rc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _shown(path: Path) -> Path:
    """The final name of a staged file (the hidden folder left out)."""
    return path.parent.parent / path.name


def _export(args: argparse.Namespace, out: Path) -> int:
    from iaseg.checkpoint import load_checkpoint, model_from_checkpoint
    from iaseg.inference import (agreement, export_onnx, export_torchscript, format_guard, guarded_accuracy,
                                 load_runner, onnx_bytes, parity_check, quantize_int8, runner_from_model)
    from iaseg.inference.accuracy import MAX_MIOU_DROP, MAX_TOP_GROUP_RECALL_DROP
    from iaseg.inference.checked_int8 import accuracy_record, checkpoint_weights_digest

    if args.threads:
        torch.set_num_threads(args.threads)
    if not 17 <= args.opset <= 20:
        raise CLIError(f"--opset {args.opset}: iaseg exports opset 17 to 20")
    if args.int8 and args.format not in ("onnx", "openvino"):
        raise CLIError("--int8 needs --format onnx (ONNX Runtime) or openvino (NNCF)")
    if args.format == "openvino":
        from iaseg.inference import openvino_available

        if not openvino_available():
            raise CLIError("--format openvino needs the openvino package: pip install 'iaseg[openvino]'")
    if args.int8 and args.calib_root is None:
        raise CLIError("--int8 needs calibration images: --calib-root DIR")
    if args.val_labels is not None and args.val_root is None:
        raise CLIError("--val-labels needs --val-root")
    if args.half:
        raise CLIError("--half is for --format checkpoint (ONNX/TorchScript exports are fp32 or --int8)")
    ckpt = load_checkpoint(args.checkpoint)
    model, meta = model_from_checkpoint(ckpt, source=args.checkpoint)
    source_digest = checkpoint_weights_digest(model)  # before a decision rule is baked in
    if args.size is not None and args.size != meta.input_size:
        meta = meta.at_size(args.size)  # spatial: --spatial-size or the default ratio
    if args.spatial_size is not None:
        if meta.num_inputs == 1:
            raise CLIError(f"--spatial-size: {meta.model_name} has a single input")
        meta = meta.with_(spatial_size=args.spatial_size)
    if meta.input_size is None:
        raise CLIError(f"{args.checkpoint} states no input size: pass --size HxW")
    meta = meta.complete()
    rule = None
    if args.decision_rule:
        from iaseg.decision import bake_decision_rule, load_rule

        try:
            rule = load_rule(args.decision_rule, meta.description)
        except (ValueError, OSError) as e:
            raise CLIError(f"--decision-rule: {str(e).strip().splitlines()[0]}") from None
        model = bake_decision_rule(model, rule)
        meta = meta.with_(decision_rule=rule.to_dict())

    t0 = time.perf_counter()
    if args.format == "torchscript":
        export_torchscript(model, meta, out, fold_bn=not args.no_fold_bn)
    elif args.format == "openvino":
        from iaseg.inference import export_openvino

        calib = _samples(args.calib_root, args.calib_dataset, "train", meta, args.calib_count) if args.int8 else []
        out = export_openvino(model, meta, out, precision="int8" if args.int8 else "fp32",
                              calibration=[s[0] for s in calib] or None, fold_bn=not args.no_fold_bn,
                              opset=args.opset)
    elif not args.int8:
        export_onnx(model, meta, out, opset=args.opset, fold_bn=not args.no_fold_bn)
    else:
        calib = _samples(args.calib_root, args.calib_dataset, "train", meta, args.calib_count)
        fp32 = onnx_bytes(model, meta, opset=args.opset, fold_bn=not args.no_fold_bn)
        quantize_int8(fp32, out, [s[0] for s in calib], method=args.calib_method)
    sizes = f"{meta.input_names[0]} {meta.input_size[0]}x{meta.input_size[1]}"
    if meta.num_inputs == 2:
        sizes += f", spatial {meta.spatial_size[0]}x{meta.spatial_size[1]}"
    kind = {"onnx": f"onnx opset {args.opset}", "torchscript": "torchscript", "openvino": "openvino IR"}[args.format]
    files = _written(out)
    print(f"exported {meta.model_name} ({meta.description.name}, {meta.description.num_classes} classes) to "
          f"{' + '.join(str(_shown(f)) for f in files)}: {kind}, {'int8' if args.int8 else 'fp32'}, N x 3 x {sizes} "
          f"(dynamic batch), {sum(f.stat().st_size for f in files) / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")

    val = None
    if args.val_root is not None:
        val = _samples(args.val_root, args.val_dataset, "val", meta, args.val_count, args.val_labels)
    parity_inputs = _batched(val[: args.parity_count], 2) if val else None
    result = parity_check(ckpt, out, inputs=parity_inputs, count=args.parity_count,
                          offsets=None if rule is None else rule.offsets)
    minimum = args.min_agreement if args.min_agreement is not None else (None if args.int8 else 99.9)
    ok = minimum is None or 100 * result["argmax_agreement"] >= minimum
    verdict = "" if minimum is None else (f"  OK (>= {minimum}%)" if ok else f"  FAILED (< {minimum}%)")
    print(f"parity vs checkpoint (fp32 eager): {_fmt_agreement(result)}{verdict}")

    if args.int8 and val:
        backend = "openvino" if args.format == "openvino" else "onnxruntime"
        fp32_runner = runner_from_model(model, meta, backend=backend, precision="fp32", threads=args.threads)
        int8_runner = load_runner(out, threads=args.threads)
        a = agreement(fp32_runner, int8_runner, _batched(val, 2))
        print(f"int8 vs fp32 on {len(val)} validation images: {_fmt_agreement(a)}")
        labelled = [(x, y) for x, y in val if y is not None]
        if labelled:
            guard = guarded_accuracy(fp32_runner, int8_runner, labelled, meta.description, allow_drop=True)
            top = guard["top_group"]
            print(f"accuracy on {len(labelled)} labelled images: {format_guard(guard)}")
            if not guard["passed"]:
                if args.allow_accuracy_drop:
                    print(f"WARNING: int8 accuracy guard failed (limits: mean IoU -{MAX_MIOU_DROP}, {top} recall "
                          f"-{MAX_TOP_GROUP_RECALL_DROP} points); kept because of --allow-accuracy-drop")
                else:
                    print(f"int8 accuracy guard FAILED (limits: mean IoU -{MAX_MIOU_DROP}, {top} recall "
                          f"-{MAX_TOP_GROUP_RECALL_DROP} points); more calibration images, another "
                          "--calib-method or fp32/bf16 may do; --allow-accuracy-drop keeps it")
                    return 1
            if args.format == "openvino":  # kept in the IR: what makes it load_runner's default (checked_int8)
                from iaseg.inference.openvino import record_accuracy_check

                data = f"{args.val_dataset} val" if args.val_dataset else f"folder {args.val_root}"
                record_accuracy_check(out, accuracy_record(guard, data, source_digest))
                _default_hint(args.checkpoint, _shown(out), guard["passed"] and rule is None)
    return 0 if ok else 1


def _default_hint(checkpoint: Path, out: Path, qualifies: bool) -> None:
    """Say whether load_runner(checkpoint) will run this checked int8 IR by default."""
    from iaseg.inference.checked_int8 import is_candidate

    ckpt = Path(checkpoint)
    if not qualifies:
        print("not a default for the checkpoint: only an int8 IR whose accuracy check passed and that bakes in "
              "no decision rule is")
    elif is_candidate(ckpt, out):
        print(f"accuracy check recorded: iaseg predict/load_runner on {ckpt} now run this int8 IR by default at "
              f"its size (OpenVINO installed, precision auto)")
    else:
        print(f"accuracy check recorded; to make it the default for {ckpt}, write it beside the checkpoint as "
              f"{ckpt.stem}.int8*.xml (e.g. {ckpt.parent / (ckpt.stem + '.int8.xml')})")


def _written(out: Path) -> list[Path]:
    """The files of an export: an OpenVINO IR is PATH.xml + PATH.bin."""
    return [out, out.with_suffix(".bin")] if out.suffix == ".xml" else [out]


def _export_checkpoint(args: argparse.Namespace, out: Path) -> int:
    """--format checkpoint: a slim weights file (`iaseg.checkpoint.release_checkpoint`), checked
    against the source checkpoint with both run as plain fp32 eager."""
    from iaseg.checkpoint import release_checkpoint, save_checkpoint
    from iaseg.inference import parity_check

    if args.int8 or args.size or args.spatial_size:
        raise CLIError("--int8/--size/--spatial-size do not apply to --format checkpoint")
    slim = release_checkpoint(args.checkpoint, half=args.half)
    save_checkpoint(slim, out)
    print(f"wrote {_shown(out)}: {slim['model_name']} ({len(slim['classes'])} classes), "
          f"{'fp16' if args.half else 'fp32'} weights, {out.stat().st_size / 1e6:.1f} MB")
    result = parity_check(args.checkpoint, out, count=args.parity_count)
    minimum = args.min_agreement if args.min_agreement is not None else (99.0 if args.half else 99.9)
    ok = 100 * result["argmax_agreement"] >= minimum
    print(f"parity vs {args.checkpoint} (both fp32 eager): {_fmt_agreement(result)}  "
          + (f"OK (>= {minimum}%)" if ok else f"FAILED (< {minimum}%)"))
    return 0 if ok else 1

