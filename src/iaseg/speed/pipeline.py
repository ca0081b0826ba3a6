"""Input-pipeline speed: batches per second out of a dataset's DataLoader."""
from __future__ import annotations

import argparse
from typing import Any

import torch

from .timing import RowCallback, finish_row, noisy_rows_note, summarize, time_calls


def run_pipeline(args: argparse.Namespace, on_row: RowCallback | None = None) -> dict[str, Any]:
    if args.dataset is None or args.root is None:
        raise ValueError("pipeline mode needs --dataset NAME and --root DIR")
    from iaseg.data import build_dataset, build_loader  # looked up at call time (tests substitute them)

    batch = args.batch or 8
    warmup = 2 if args.warmup is None else args.warmup
    repeats = 20 if args.repeats is None else args.repeats
    split = getattr(args, "split", None) or "train"
    dataset = build_dataset(args.dataset, args.root, split=split)
    loader = build_loader(dataset, batch_size=batch, num_workers=args.workers)
    it = iter(_cycle(loader))
    times = time_calls(lambda: next(it), warmup, repeats, torch.device("cpu"))
    batch_ms = summarize(times)
    row = finish_row({"name": f"{args.dataset} {split}", "status": "ok", "batch_ms": batch_ms,
                      "images_per_s": 1000 * batch / batch_ms["median"]}, 1, 1, on_row)
    return {"settings": {"dataset": args.dataset, "root": str(args.root), "split": split, "batch": batch,
                         "workers": args.workers, "warmup": warmup, "repeats": repeats,
                         "threads": torch.get_num_threads()},
            "results": [row]}


def _cycle(loader: Any):
    while True:
        yield from loader


def format_pipeline(report: dict[str, Any]) -> str:
    s = report["settings"]
    r = report["results"][0]
    return (f"input pipeline {s['dataset']} {s['split']}, batch {s['batch']}, {s['workers']} workers: "
            f"{r['images_per_s']:.1f} images/s (median {r['batch_ms']['median']:.1f} ms/batch, "
            f"IQR {r['batch_ms']['iqr']:.1f} ms)" + noisy_rows_note(report["results"]))
