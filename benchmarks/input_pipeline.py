"""Input pipeline throughput: images/s delivered by iaseg.data.build_loader.

    PYTHONPATH=src python benchmarks/input_pipeline.py [--camvid DIR] [--batches 40]

Measures whole batches (decode/generate + resize + collate) after two warm-up batches, with the
main process doing nothing else (torch.set_num_threads(1), as a training step would own the CPU).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from iaseg.data import build_dataset, build_loader, render_scene, scene_rng


def throughput(dataset, batch_size: int, workers: int, batches: int, warmup: int = 2) -> float:
    loader = build_loader(dataset, batch_size, shuffle=True, num_workers=workers, seed=0, drop_last=True)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    n = 0
    t0 = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += batch["image"].shape[0]
    return n / (time.perf_counter() - t0)


def render_ms(size: tuple[int, int], images: int = 40) -> float:
    """Median over images of the best of 3 timings of one synthetic scene, in this process."""
    best = []
    for i in range(images):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            render_scene(size[0], size[1], scene_rng(0, "train", i))
            times.append(time.perf_counter() - t0)
        best.append(min(times))
    return 1000 * sorted(best)[len(best) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--camvid", default=os.environ.get("IASEG_CAMVID", "../shared/data/camvid"))
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    size = (360, 480)
    cases = [("synthetic", build_dataset("synthetic", None, "train", size=size, length=400)),
             ("synthetic + augment", build_dataset("synthetic", None, "train", size=size, length=400, augment=True))]
    if os.path.isdir(os.path.join(args.camvid, "train")):
        cases += [("camvid train", build_dataset("camvid", args.camvid, "train", size=size)),
                  ("camvid train + augment", build_dataset("camvid", args.camvid, "train", size=size, augment=True))]
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, batch {args.batch_size}, {args.workers} workers, "
          f"{size[0]}x{size[1]}, {args.batches} batches after 2 warm-up")
    print(f"{'synthetic render_scene':<24} {render_ms(size):7.1f} ms per image (one core, median of best-of-3)")
    for name, ds in cases:
        print(f"{name:<24} {throughput(ds, args.batch_size, args.workers, args.batches):7.1f} images/s")


if __name__ == "__main__":
    main()
