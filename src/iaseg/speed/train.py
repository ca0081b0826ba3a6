"""Training-step speed: forward, loss, backward and Adam for each loss (CE, weighted CE, IAL), in
fp32 and in the fast setting (bf16 autocast or fp16 AMP, channels_last)."""
from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any, Callable, Sequence

import torch

from .peak import percent_of_peak
from .timing import RowCallback, finish_row, noisy_rows_note, results_table, summarize, time_calls

LOSSES = ("ce", "weighted_ce", "ial")


def _loss(name: str, num_classes: int, ignore_index: int, groups: list[list[int]],
          class_weights: torch.Tensor) -> tuple[torch.nn.Module, str]:
    """(loss module, where it came from). Losses come from iaseg.losses.build_loss (imported
    lazily); plain and weighted CE fall back to torch's CrossEntropyLoss when it is missing or
    refuses the arguments, IAL has no fallback (ImportError/ValueError/...: the row is skipped)."""
    error: Exception | None = None
    try:
        from iaseg.losses import build_loss  # type: ignore[import-not-found]

        if name == "ce":
            return build_loss("ce", ignore_index=ignore_index), "iaseg.losses"
        if name == "weighted_ce":
            return build_loss("weighted_ce", class_weights=class_weights, ignore_index=ignore_index), "iaseg.losses"
        return build_loss("ial", class_weights=class_weights, groups=groups, ignore_index=ignore_index), "iaseg.losses"
    except (ImportError, KeyError, TypeError, ValueError) as e:
        error = e
    if name == "ce":
        return torch.nn.CrossEntropyLoss(ignore_index=ignore_index), "torch.nn.CrossEntropyLoss"
    if name == "weighted_ce":
        return torch.nn.CrossEntropyLoss(weight=class_weights, ignore_index=ignore_index), "torch.nn.CrossEntropyLoss"
    if isinstance(error, ImportError):
        raise ImportError("the IAL loss needs iaseg.losses, which this build lacks") from None
    raise ValueError(f"iaseg.losses.build_loss('ial', ...) failed: {type(error).__name__}: {error}") from None


def train_step(model: torch.nn.Module, loss_fn: torch.nn.Module, x: Sequence[torch.Tensor], y: torch.Tensor,
               fast: bool, device: torch.device) -> Callable[[], float]:
    """One training step as `iaseg benchmark --mode train` times it (Adam 1e-3; with `fast`, bf16
    autocast on the CPU or fp16 AMP on CUDA; the loss in float32), as a closure returning the loss."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if fast and device.type == "cuda" else None

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=fast):
            logits = model(*x)
        loss = loss_fn(logits.float(), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return float(loss.detach()) if device.type == "cpu" else 0.0

    return step


def step_gflops(model: torch.nn.Module, xs: Sequence[torch.Tensor]) -> float:
    """GFLOPs of one training step's forward and backward per image, counted by the counter of
    `iaseg model-info` (torch.utils.flop_counter: convolutions and matmuls; element-wise work,
    the loss and Adam are not counted). Counted on one image in eval mode (the same convolutions;
    BatchNorm needs no batch statistics there), the model's gradients cleared afterwards."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(*(t[:1] for t in xs)).float().sum().backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def run_train(args: argparse.Namespace, on_row: RowCallback | None = None) -> dict[str, Any]:
    """Time a training step for each (precision, loss); `on_row` hears of each row as soon as it
    is measured."""
    from iaseg.data import load_description
    from iaseg.models import build_model, default_spatial_size, takes_spatial
    from iaseg.models.paths import previous_training_path

    device = torch.device(args.device)
    size = args.size or (360, 480)
    batch = args.batch or 8
    warmup = 2 if args.warmup is None else args.warmup
    repeats = 5 if args.repeats is None else args.repeats
    classes = args.num_classes or 11
    desc = load_description("camvid" if classes == 11 else "cityscapes")
    if desc.num_classes != classes:
        raise ValueError(f"--num-classes {classes}: use 11 (CamVid) or 19 (Cityscapes)")
    g = torch.Generator().manual_seed(0)
    sizes = [size] + ([args.spatial_size or default_spatial_size(size)] if takes_spatial(args.model) else [])
    x32 = [torch.rand(batch, 3, *s, generator=g) for s in sizes]
    y = torch.randint(0, classes, (batch, *size), generator=g)
    y[torch.rand(y.shape, generator=g) < 0.05] = desc.ignore_index  # some void pixels, as in real labels
    freq = torch.rand(classes, generator=g) + 0.05
    class_weights = (1 / torch.log(1.02 + freq / freq.sum())).float()  # the paper's formula on made-up frequencies
    groups = desc.group_indices()
    losses = list(LOSSES) if args.loss == "all" else [args.loss]
    precisions = ["fp32", "fast-previous", "fast"] if args.train_precision == "all" else [args.train_precision]
    results: list[dict[str, Any]] = []
    total = len(precisions) * len(losses)
    ok: dict[str, dict[str, Any]] = {}
    torch.manual_seed(0)
    gflops = step_gflops(build_model(args.model, classes), x32)
    for prec in precisions:
        fast = prec.startswith("fast")
        fmt = torch.channels_last if fast else torch.contiguous_format
        xs = [t.to(device, memory_format=fmt) for t in x32]
        for loss_name in losses:
            amp = "fp16-amp" if device.type == "cuda" else "bf16-autocast"
            row: dict[str, Any] = {"name": f"{loss_name} {prec}", "loss": loss_name,
                                   "precision": amp if fast else "fp32", "channels_last": fast}
            try:
                loss_fn, source = _loss(loss_name, classes, desc.ignore_index, groups, class_weights.to(device))
            except (ImportError, ValueError) as e:
                row.update(status="skipped", reason=f"{type(e).__name__}: {e}")
                results.append(finish_row(row, len(results) + 1, total, on_row))
                continue
            torch.manual_seed(0)
            model = build_model(args.model, classes).to(device).train()
            if fast:
                model = model.to(memory_format=torch.channels_last)
            step = train_step(model, loss_fn.to(device), xs, y.to(device), fast, device)
            # fast-previous: the fast path as it was before the CPU training-speed work, side by side
            with previous_training_path() if prec == "fast-previous" else nullcontext():
                step_ms = summarize(time_calls(step, warmup, repeats, device))
            row.update(status="ok", loss_impl=source, step_ms=step_ms, images_per_s=1000 * batch / step_ms["median"],
                       gflops_per_s=gflops * batch / (step_ms["median"] / 1000))
            ok[row["name"]] = row
            base = ok.get(f"{loss_name} fp32")  # measured first when both precisions run
            if base is not None:
                row["speedup"] = row["images_per_s"] / base["images_per_s"]
            results.append(finish_row(row, len(results) + 1, total, on_row))
    ratios = {}
    for loss_name in losses:
        a, b = ok.get(f"{loss_name} fast"), ok.get(f"{loss_name} fast-previous")
        if a and b:
            ratios[f"{loss_name}_fast_speedup_over_previous"] = a["images_per_s"] / b["images_per_s"]
    for prec in precisions:
        a, b = ok.get(f"ial {prec}"), ok.get(f"weighted_ce {prec}")
        if a and b:
            ratios[f"ial_over_weighted_ce_{prec}"] = a["step_ms"]["median"] / b["step_ms"]["median"]
    return {"settings": {"model": args.model, "num_classes": classes, "size": list(size), "batch": batch,
                         "warmup": warmup, "repeats": repeats, "device": str(device),
                         "threads": torch.get_num_threads(), "optimizer": "Adam"},
            "model": {"gflops_per_step_image": gflops},
            "results": results, "ratios": ratios}


def train_row(r: dict[str, Any]) -> dict[str, Any]:
    """The table cells of a measured training-step row."""
    s = r["step_ms"]
    return {"step": r["name"], "precision": r["precision"], "channels_last": str(r["channels_last"]),
            "images/s": round(r["images_per_s"], 2), "median ms": round(s["median"], 1),
            "IQR ms": round(s["iqr"], 1), "min ms": round(s["min"], 1), "max ms": round(s["max"], 1),
            "GFLOP/s": round(r["gflops_per_s"], 1), "% peak": percent_of_peak(r),
            "speed-up": f"{r.get('speedup', float('nan')):.2f}x"}


def format_train(report: dict[str, Any]) -> str:
    s = report["settings"]
    head = (f"training step (forward, loss, backward, Adam) {s['model']} {s['batch']}x{s['size'][0]}x{s['size'][1]}, "
            f"{s['device']}, {s['threads']} threads; {s['warmup']} warm-up + {s['repeats']} timed steps; "
            f"{report['model']['gflops_per_step_image']:.2f} GFLOPs per image and step (forward + backward)")
    cols = ["step", "precision", "channels_last", "images/s", "median ms", "IQR ms", "min ms", "max ms", "GFLOP/s",
            *(["% peak"] if report.get("peak") else []), "speed-up"]
    text = head + "\n" + results_table(report["results"], cols, "step", "images/s", train_row)
    for k, v in report["ratios"].items():
        unit = "x images/s" if "speedup" in k else "x step time"
        text += f"\n{k.replace('_', ' ')}: {v:.3f}{unit}"
    return text + "\nspeed-up: over the fp32 row of the same loss" + noisy_rows_note(report["results"])
