"""Does the fast inference path cost accuracy? Mean IoU of one checkpoint on a labelled split
through each inference path, all on the same images, next to the plain fp32 reference.

    PYTHONPATH=src python benchmarks/fast_path_accuracy.py --checkpoint weights/camvid_erfpspnet_ial.pt \
        --root ../shared/data/camvid [--split val] [--int8-calib 32] [--threads 2]

Paths: fp32 eager with BatchNorm as trained (the reference), the default path of `load_runner`
(BN folded, conv+ReLU fused, channels_last, bf16 on CPUs with native bf16), and ONNX Runtime int8
calibrated on the first N training images. Prints one line per path: mIoU, change vs the
reference, argmax agreement with the reference. Results are in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from iaseg.data import build_dataset
from iaseg.inference import agreement, load_runner, mean_iou


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--split", default="val")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--int8-calib", type=int, default=32, help="training images for int8 calibration (0: skip int8)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    reference = load_runner(args.checkpoint, backend="eager", precision="fp32", fold_bn=False,
                            channels_last=False, fuse=False)
    size = reference.input_size
    desc = reference.description
    data = build_dataset(args.dataset, args.root, args.split, size=size)
    samples = []
    for start in range(0, len(data), args.batch):
        items = [data[i] for i in range(start, min(start + args.batch, len(data)))]
        samples.append(((torch.stack([it["image"] for it in items]),), torch.stack([it["label"] for it in items])))
    paths = {"fp32 eager (reference)": reference, "default path": load_runner(args.checkpoint)}
    if args.int8_calib:
        train = build_dataset(args.dataset, args.root, "train", size=size)
        calib = [(train[i]["image"].unsqueeze(0),) for i in range(min(args.int8_calib, len(train)))]
        paths["onnxruntime int8"] = load_runner(args.checkpoint, backend="onnxruntime", precision="int8",
                                                calibration=calib, threads=args.threads)
    print(f"{args.checkpoint} on {args.dataset} {args.split} ({len(data)} images at {size[0]}x{size[1]}), "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    ref_miou = None
    for name, runner in paths.items():
        t0 = time.perf_counter()
        miou = mean_iou(runner, samples, desc.num_classes, desc.ignore_index)["miou"]
        seconds = time.perf_counter() - t0
        ref_miou = miou if ref_miou is None else ref_miou
        agree = agreement(reference, runner, [x for x, _ in samples])["argmax_agreement"] if runner is not reference else 1.0
        print(f"{name:24s} ({runner.backend} {runner.precision}): mIoU {miou:.2f} (change {miou - ref_miou:+.2f} "
              f"points), argmax agreement {100 * agree:.2f}%, {seconds:.1f} s for the split")


if __name__ == "__main__":
    main()
