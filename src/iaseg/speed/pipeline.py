"""Input-pipeline speed: batches per second out of a dataset's DataLoader, with or without a
training config's augmentation."""
from __future__ import annotations

from typing import Any

import torch

from .settings import BenchmarkSettings
from .timing import RowCallback, finish_row, noisy_rows_note, summarize, time_calls


def run_pipeline(args: BenchmarkSettings, on_row: RowCallback | None = None) -> dict[str, Any]:
    """Batches per second out of a split's loader. With `args.config` (a training config), the
    loader a run of that config reads: its dataset, size and options, and with its augmentation
    drawn per (seed, epoch, index) as in training; one row without and one with augmentation."""
    from iaseg.data import build_dataset, build_loader  # looked up at call time (tests substitute them)

    config = args.config
    datasets: list[tuple[str, Any]] = []
    if config is not None:
        from iaseg.data.loader import SeededItems
        from iaseg.engine.config import load_config

        d = load_config(config).data
        name, root = d.dataset, args.root if args.root is not None else d.root
        split = args.split or d.train_split
        opts = dict(d.options)
        size = {"size": tuple(d.size)} if d.size else {}
        if d.spatial_size:
            size["spatial_size"] = tuple(d.spatial_size)
        label = f"{name} {split} {'x'.join(map(str, d.size)) if d.size else 'native'}"
        datasets.append((f"{label}, no augmentation", build_dataset(name, root, split=split, **size, **opts)))
        if d.augment:
            augmented = build_dataset(name, root, split=split, augment=d.augment, **size, **opts)
            datasets.append((f"{label}, augment {_describe(d.augment)}", SeededItems(augmented, 0, 0)))
    else:
        if args.dataset is None or args.root is None:
            raise ValueError("pipeline mode needs --dataset NAME and --root DIR (or --config CONFIG)")
        name, root = args.dataset, args.root
        split = args.split or "train"
        datasets.append((f"{name} {split}", build_dataset(name, root, split=split)))

    batch = args.batch or 8
    warmup = 2 if args.warmup is None else args.warmup
    repeats = 20 if args.repeats is None else args.repeats
    rows = []
    for k, (row_name, dataset) in enumerate(datasets):
        loader = build_loader(dataset, batch_size=batch, num_workers=args.workers)
        it = iter(_cycle(loader))
        times = time_calls(lambda: next(it), warmup, repeats, torch.device("cpu"))
        batch_ms = summarize(times)
        rows.append(finish_row({"name": row_name, "status": "ok", "batch_ms": batch_ms,
                                "images_per_s": 1000 * batch / batch_ms["median"]}, k + 1, len(datasets), on_row))
    return {"settings": {"dataset": name, "root": str(root), "split": split, "batch": batch,
                         "workers": args.workers, "warmup": warmup, "repeats": repeats,
                         "threads": torch.get_num_threads(), "config": None if config is None else str(config)},
            "results": rows}


def _describe(augment: Any) -> str:
    if augment is True:
        return "(defaults)"
    return ", ".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in augment.items())


def _cycle(loader: Any):
    while True:
        yield from loader


def format_pipeline(report: dict[str, Any]) -> str:
    s = report["settings"]
    head = f"input pipeline, batch {s['batch']}, {s['workers']} workers" + (f" ({s['config']})" if s.get("config") else "")
    lines = [f"{head}:"] + [f"  {r['name']}: {r['images_per_s']:.1f} images/s (median {r['batch_ms']['median']:.1f} "
                            f"ms/batch, IQR {r['batch_ms']['iqr']:.1f} ms)" for r in report["results"]]
    return "\n".join(lines) + noisy_rows_note(report["results"])
