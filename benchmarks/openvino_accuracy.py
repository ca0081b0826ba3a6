"""What does each precision cost in accuracy? Mean IoU and G3 recall of one checkpoint on a
labelled split through plain fp32 PyTorch, iaseg's eager default, OpenVINO fp32 / bf16 / int8 and
ONNX Runtime int8, all on the same images; int8 calibrated on a seeded subset of the TRAIN split.

    PYTHONPATH=src python benchmarks/openvino_accuracy.py --checkpoint weights/camvid_erfpspnet_ce.pt \
        --root ../shared/data/camvid [--split val] [--calib 30] [--threads 2] [--no-onnxruntime]

Prints one line per path: mIoU, the most important group's recall (G3), their change vs the
plain fp32 reference, argmax agreement with it, and for the int8 rows the verdict of
iaseg.inference.accuracy_guard (limits: -0.5 mIoU points, -1 G3 recall point). Needs the
`openvino` extra (pip install 'iaseg[openvino]'). Results are in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from iaseg.checkpoint import model_from_checkpoint
from iaseg.data import build_dataset
from iaseg.inference import (ModelMetadata, accuracy_guard, agreement, load_runner, machine_info, mean_iou,
                             runner_from_model, split_accuracy)
from iaseg.inference.images import dataset_samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--split", default="val")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--calib", type=int, default=30, help="training images for int8 calibration (seeded subset)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration subset")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-onnxruntime", action="store_true", help="leave out the ONNX Runtime int8 row")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, info = model_from_checkpoint(args.checkpoint)
    meta = ModelMetadata.from_checkpoint_meta(info)
    desc, size = meta.description, meta.input_size
    data = build_dataset(args.dataset, args.root, args.split, size=size)
    samples = []
    for start in range(0, len(data), args.batch):
        items = [data[i] for i in range(start, min(start + args.batch, len(data)))]
        samples.append(((torch.stack([it["image"] for it in items]),), torch.stack([it["label"] for it in items])))
    calib = [x for x, _ in dataset_samples(args.dataset, args.root, "train", meta, args.calib, seed=args.seed)]

    reference = load_runner(args.checkpoint, backend="eager", precision="fp32", fold_bn=False,
                            channels_last=False, fuse=False)
    paths = {
        "fp32 PyTorch (reference)": lambda: reference,
        "iaseg eager default": lambda: load_runner(args.checkpoint, backend="eager"),
        "openvino fp32": lambda: runner_from_model(model, meta, "openvino", "fp32", threads=args.threads),
        "openvino bf16": lambda: runner_from_model(model, meta, "openvino", "bf16", threads=args.threads),
        "openvino int8": lambda: runner_from_model(model, meta, "openvino", "int8", threads=args.threads,
                                                   calibration=calib),
    }
    if not args.no_onnxruntime:
        paths["onnxruntime int8"] = lambda: runner_from_model(model, meta, "onnxruntime", "int8",
                                                              threads=args.threads, calibration=calib)
    versions = machine_info()
    print(f"{args.checkpoint} on {args.dataset} {args.split} ({len(data)} images at {size[0]}x{size[1]}), "
          f"int8 calibrated on {len(calib)} {args.dataset} train images (seed {args.seed}); torch {torch.__version__}, "
          f"openvino {versions['openvino']}, nncf {versions['nncf']}, onnxruntime {versions['onnxruntime']}, "
          f"{versions['cpu'] or platform.machine()}, {torch.get_num_threads()} threads")
    ref_conf = None
    for name, make in paths.items():
        t0 = time.perf_counter()
        runner = make()
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        conf = mean_iou(runner, samples, desc.num_classes, desc.ignore_index)["confusion"]
        seconds = time.perf_counter() - t0
        acc = split_accuracy(conf, desc)
        if ref_conf is None:
            ref_conf, ref = conf, acc
        agree = agreement(reference, runner, [x for x, _ in samples])["argmax_agreement"] if runner is not reference else 1.0
        verdict = ""
        if runner.precision == "int8":
            guard = accuracy_guard(ref_conf, conf, desc, allow_drop=True)
            verdict = "  guard: " + ("pass" if guard["passed"] else "REFUSE")
        print(f"{name:26s} ({runner.backend} {runner.precision}): mIoU {acc['miou']:.2f} "
              f"({acc['miou'] - ref['miou']:+.2f}), G3 recall {acc['top_group_recall']:.2f} "
              f"({acc['top_group_recall'] - ref['top_group_recall']:+.2f}), argmax agreement {100 * agree:.2f}%, "
              f"built in {built:.0f} s, split in {seconds:.0f} s{verdict}", flush=True)


if __name__ == "__main__":
    main()
