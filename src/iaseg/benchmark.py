"""`iaseg benchmark`: inference, training-step and input-pipeline throughput.

    iaseg benchmark --model erfpspnet --size 360x720 --batch 1 --backend all --threads 2
    iaseg benchmark --mode train --size 360x480 --batch 8 --loss all --threads 2
    iaseg benchmark --mode pipeline --dataset camvid --root data/camvid --batch 8 --workers 2

Protocol: inputs are made once and moved to the device before timing (no data loading or
host-to-device copy inside the timed region; the cast to the runner's precision is timed);
`--warmup` untimed calls, then `--repeats` timed calls, each ended by torch.cuda.synchronize on
GPU; the median and spread (IQR, min, max) are reported. Every row of a table is measured in
the same process, one after the other, so ratios between rows are meaningful even on a busy
machine; absolute numbers are only as good as the machine's idleness.

The 'naive' row is the plain PyTorch way: `iaseg.models.build_model(...)` in eval mode under
torch.no_grad, float32, default (NCHW) memory format, no folding or fusion. Speed-ups are over
that row. 'default' marks what `iaseg.inference.load_runner` does when given no options.
The --json schema is documented in docs/speed.md.
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import statistics
import time
from typing import Any, Callable, Sequence

import torch

SCHEMA = "iaseg.benchmark/1"
MODES = ("inference", "train", "pipeline")
LOSSES = ("ce", "weighted_ce", "ial")


# ----------------------------------------------------------------------------------------------
# timing

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], warmup: int, repeats: int, device: torch.device) -> list[float]:
    """Seconds of each of `repeats` calls of fn after `warmup` untimed ones; synchronised on GPU."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR, min, max and mean of durations, in milliseconds."""
    if not times:
        raise ValueError("no timings")
    ms = sorted(1000 * t for t in times)
    if len(ms) >= 2:
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    else:
        q1 = q3 = ms[0]
    return {"median": statistics.median(ms), "p25": q1, "p75": q3, "iqr": q3 - q1,
            "min": ms[0], "max": ms[-1], "mean": statistics.fmean(ms), "n": len(ms)}


# ----------------------------------------------------------------------------------------------
# inference

class NaiveRunner:
    """The plain PyTorch baseline: the network in eval mode, torch.no_grad, float32, NCHW."""

    backend = "naive"
    precision = "fp32"

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model = copy.deepcopy(model).to(device).float().eval()
        self.device = device

    def options(self) -> dict[str, Any]:
        return {"backend": "naive", "precision": "fp32", "device": str(self.device)}

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(*(t.to(self.device) for t in inputs))


def _source(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """(float32 model, ModelMetadata) from --checkpoint or a seeded random init."""
    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.data import load_description
    from iaseg.inference import ModelMetadata
    from iaseg.models import build_model, default_spatial_size

    size = args.size or (360, 720)
    if args.checkpoint:
        model, meta = model_from_checkpoint(args.checkpoint)  # its network wins over --model
    else:
        classes = args.num_classes or 11
        desc = load_description("camvid" if classes == 11 else "cityscapes")
        if classes != desc.num_classes:
            raise ValueError(f"--num-classes {classes}: use 11 (CamVid) or 19 (Cityscapes), or --checkpoint")
        torch.manual_seed(0)
        model = build_model(args.model, classes).eval()
        meta = ModelMetadata(args.model, desc)
    spatial = args.spatial_size or (default_spatial_size(size) if meta.num_inputs == 2 else None)
    return model, meta.with_(input_size=size, spatial_size=spatial)


def _inference_configs(args: argparse.Namespace, device: torch.device) -> list[tuple[str, str, dict[str, Any]]]:
    """(backend, precision, extra options) rows to measure, the naive baseline first."""
    from iaseg.inference import default_precision, native_bf16_cpu

    rows: list[tuple[str, str, dict[str, Any]]] = [("naive", "fp32", {})]
    cpu = device.type == "cpu"
    if args.backend == "all":
        fast = ["bf16"] if cpu and native_bf16_cpu() else (["fp16", "bf16"] if not cpu else [])
        rows += [("eager", "fp32", {})] + [("eager", p, {}) for p in fast]
        if not cpu:
            rows += [("eager", "fp16", {"cuda_graphs": True})]
        if not args.no_compile and _compile_available():
            rows += [("compile", "fp32", {})] + [("compile", p, {}) for p in fast[:1]]
        if _onnxruntime_available():
            rows += [("onnxruntime", "fp32", {})] + ([("onnxruntime", "int8", {})] if cpu else [])
        rows += [("torchscript", "fp32", {})]
        return rows
    if args.backend == "naive":
        return rows
    precisions = {"eager": ["fp32", "bf16", "fp16"], "compile": ["fp32", "bf16", "fp16"],
                  "onnxruntime": ["fp32", "int8"], "torchscript": ["fp32"]}[args.backend]
    if args.precision == "all":
        chosen = precisions
    elif args.precision == "auto":
        chosen = [default_precision(device, args.backend)]
    else:
        chosen = [args.precision]
    extra = {"cuda_graphs": True} if args.cuda_graphs and args.backend == "eager" else {}
    return rows + [(args.backend, p, dict(extra)) for p in chosen]


def _compile_available() -> bool:
    import shutil

    return shutil.which("cc") is not None or shutil.which("gcc") is not None or torch.cuda.is_available()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run_inference(args: argparse.Namespace) -> dict[str, Any]:
    from iaseg.inference import agreement, default_precision, runner_from_model
    from iaseg.inference.probe import structured_scenes
    from iaseg.models import describe, image_inputs

    device = torch.device(args.device)
    model, meta = _source(args)
    batch = args.batch or 1
    warmup = 5 if args.warmup is None else args.warmup
    repeats = 30 if args.repeats is None else args.repeats
    g = torch.Generator().manual_seed(0)
    sizes = [meta.input_size] + ([meta.spatial_size] if meta.num_inputs == 2 else [])
    inputs = tuple(torch.rand(batch, 3, *s, generator=g) for s in sizes)
    info = describe(model, tuple(t[:1] for t in inputs))
    inputs = tuple(t.to(device) for t in inputs)  # on the device before timing: no host copies timed
    default = ("eager", default_precision(device, "eager"))
    naive = NaiveRunner(model, device)
    reference = naive(*inputs).float().cpu()
    results: list[dict[str, Any]] = []
    for backend, precision, extra in _inference_configs(args, device):
        row: dict[str, Any] = {"name": f"{backend} {precision}" + (" +graphs" if extra.get("cuda_graphs") else ""),
                               "backend": backend, "precision": precision,
                               "default": (backend, precision) == default and not extra}
        t0 = time.perf_counter()
        try:
            if backend == "naive":
                runner: Any = naive
            else:
                calib = None
                if precision == "int8":  # speed does not depend on the calibration images
                    imgs = structured_scenes(4, meta.input_size, meta.description.num_classes, seed=1)[0]
                    calib = [image_inputs(meta.model_name, imgs[i:i + 1], spatial_size=meta.spatial_size) for i in range(4)]
                runner = runner_from_model(model, meta, backend, precision, device, threads=args.threads,
                                           calibration=calib, **extra)
            out = runner(*inputs).float().cpu()
        except Exception as e:  # noqa: BLE001 - one failing backend must not end the table
            row.update(status="failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            results.append(row)
            continue
        row["setup_s"] = time.perf_counter() - t0
        row["options"] = runner.options()
        latency = summarize(time_calls(lambda: runner(*inputs), warmup, repeats, device))
        agree = agreement(lambda *_: reference, lambda *_: out, [inputs])
        row.update(status="ok", latency_ms=latency, fps=1000 * batch / latency["median"],
                   gflops_per_s=info["gflops"] * batch / (latency["median"] / 1000),
                   agreement={k: agree[k] for k in ("argmax_agreement", "max_abs_diff", "near_ties")})
        results.append(row)
        del runner
    base = next((r for r in results if r["backend"] == "naive" and r["status"] == "ok"), None)
    for r in results:
        if r["status"] == "ok" and base is not None:
            r["speedup"] = r["fps"] / base["fps"]
    return {"settings": {"model": meta.model_name, "num_classes": meta.description.num_classes,
                         "size": list(meta.input_size),
                         "spatial_size": list(meta.spatial_size) if meta.spatial_size else None,
                         "batch": batch, "warmup": warmup, "repeats": repeats, "device": str(device),
                         "threads": torch.get_num_threads(), "checkpoint": args.checkpoint,
                         "weights": "checkpoint" if args.checkpoint else "random init (seed 0)"},
            "model": {"params": info["params"], "gflops_per_image": info["gflops"]},
            "results": results}


def format_inference(report: dict[str, Any]) -> str:
    from iaseg.models import format_table

    rows = []
    for r in report["results"]:
        if r["status"] != "ok":
            rows.append({"path": r["name"], "fps": "-", "note": f"{r['status']}: {r.get('reason', '')}"})
            continue
        lat = r["latency_ms"]
        rows.append({"path": r["name"] + (" (default)" if r["default"] else ""),
                     "fps": round(r["fps"], 2), "median ms": round(lat["median"], 2),
                     "IQR ms": round(lat["iqr"], 2), "min ms": round(lat["min"], 2), "max ms": round(lat["max"], 2),
                     "GFLOP/s": round(r["gflops_per_s"], 1), "speed-up": f"{r.get('speedup', float('nan')):.2f}x",
                     "agree %": f"{100 * r['agreement']['argmax_agreement']:.2f}",
                     "setup s": round(r["setup_s"], 1)})
    s = report["settings"]
    size = "x".join(map(str, s["size"]))
    if s["spatial_size"]:
        size += " + spatial " + "x".join(map(str, s["spatial_size"]))
    head = (f"{s['model']} {size}, batch {s['batch']}, {s['device']}, {s['threads']} threads, "
            f"{report['model']['params']:,} params, {report['model']['gflops_per_image']:.2f} GFLOPs/image, "
            f"weights: {s['weights']}; {s['warmup']} warm-up + {s['repeats']} timed calls")
    cols = ["path", "fps", "median ms", "IQR ms", "min ms", "max ms", "GFLOP/s", "speed-up", "agree %", "setup s"]
    if any(r["status"] != "ok" for r in report["results"]):
        cols.append("note")
    note = ("speed-up: over the naive row (plain PyTorch fp32 eager); agree %: argmax agreement with the naive "
            "row on the benchmark input" + (" (random weights: a weak check)" if not s["checkpoint"] else ""))
    return head + "\n" + format_table(rows, cols) + "\n" + note


# ----------------------------------------------------------------------------------------------
# training step

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


def _train_step(model: torch.nn.Module, loss_fn: torch.nn.Module, x: Sequence[torch.Tensor], y: torch.Tensor,
                fast: bool, device: torch.device) -> Callable[[], float]:
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


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    from iaseg.data import load_description
    from iaseg.models import build_model, default_spatial_size

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
    sizes = [size] + ([args.spatial_size or default_spatial_size(size)] if args.model == "bierfpspnet" else [])
    x32 = [torch.rand(batch, 3, *s, generator=g) for s in sizes]
    y = torch.randint(0, classes, (batch, *size), generator=g)
    y[torch.rand(y.shape, generator=g) < 0.05] = desc.ignore_index  # some void pixels, as in real labels
    freq = torch.rand(classes, generator=g) + 0.05
    class_weights = (1 / torch.log(1.02 + freq / freq.sum())).float()  # the paper's formula on made-up frequencies
    groups = desc.group_indices()
    losses = list(LOSSES) if args.loss == "all" else [args.loss]
    precisions = ["fp32", "fast"] if args.train_precision == "all" else [args.train_precision]
    results: list[dict[str, Any]] = []
    for prec in precisions:
        fast = prec == "fast"
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
                results.append(row)
                continue
            torch.manual_seed(0)
            model = build_model(args.model, classes).to(device).train()
            if fast:
                model = model.to(memory_format=torch.channels_last)
            step = _train_step(model, loss_fn.to(device), xs, y.to(device), fast, device)
            step_ms = summarize(time_calls(step, warmup, repeats, device))
            row.update(status="ok", loss_impl=source, step_ms=step_ms, images_per_s=1000 * batch / step_ms["median"])
            results.append(row)
    ok = {r["name"]: r for r in results if r["status"] == "ok"}
    for r in results:
        base = ok.get(f"{r['loss']} fp32")
        if r["status"] == "ok" and base is not None:
            r["speedup"] = r["images_per_s"] / base["images_per_s"]
    ratios = {}
    for prec in precisions:
        a, b = ok.get(f"ial {prec}"), ok.get(f"weighted_ce {prec}")
        if a and b:
            ratios[f"ial_over_weighted_ce_{prec}"] = a["step_ms"]["median"] / b["step_ms"]["median"]
    return {"settings": {"model": args.model, "num_classes": classes, "size": list(size), "batch": batch,
                         "warmup": warmup, "repeats": repeats, "device": str(device),
                         "threads": torch.get_num_threads(), "optimizer": "Adam"},
            "results": results, "ratios": ratios}


def format_train(report: dict[str, Any]) -> str:
    from iaseg.models import format_table

    rows = []
    for r in report["results"]:
        if r["status"] != "ok":
            rows.append({"step": r["name"], "images/s": "-", "note": f"{r['status']}: {r.get('reason', '')}"})
            continue
        s = r["step_ms"]
        rows.append({"step": r["name"], "precision": r["precision"], "channels_last": str(r["channels_last"]),
                     "images/s": round(r["images_per_s"], 2), "median ms": round(s["median"], 1),
                     "IQR ms": round(s["iqr"], 1), "min ms": round(s["min"], 1), "max ms": round(s["max"], 1),
                     "speed-up": f"{r.get('speedup', float('nan')):.2f}x"})
    s = report["settings"]
    head = (f"training step (forward, loss, backward, Adam) {s['model']} {s['batch']}x{s['size'][0]}x{s['size'][1]}, "
            f"{s['device']}, {s['threads']} threads; {s['warmup']} warm-up + {s['repeats']} timed steps")
    cols = ["step", "precision", "channels_last", "images/s", "median ms", "IQR ms", "min ms", "max ms", "speed-up"]
    if any(r["status"] != "ok" for r in report["results"]):
        cols.append("note")
    text = head + "\n" + format_table(rows, cols)
    for k, v in report["ratios"].items():
        text += f"\n{k.replace('_', ' ')}: {v:.3f}x step time"
    return text + "\nspeed-up: over the fp32 row of the same loss"


# ----------------------------------------------------------------------------------------------
# input pipeline

def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    if args.dataset is None or args.root is None:
        raise ValueError("pipeline mode needs --dataset NAME and --root DIR")
    try:
        from iaseg.data import build_dataset, build_loader  # type: ignore[attr-defined]
    except ImportError:
        raise ValueError("pipeline mode needs iaseg.data.build_dataset and build_loader, "
                         "which this build lacks") from None
    batch = args.batch or 8
    warmup = 2 if args.warmup is None else args.warmup
    repeats = 20 if args.repeats is None else args.repeats
    dataset = build_dataset(args.dataset, args.root, split=args.split)
    loader = build_loader(dataset, batch_size=batch, num_workers=args.workers)
    it = iter(_cycle(loader))
    times = time_calls(lambda: next(it), warmup, repeats, torch.device("cpu"))
    batch_ms = summarize(times)
    return {"settings": {"dataset": args.dataset, "root": str(args.root), "split": args.split, "batch": batch,
                         "workers": args.workers, "warmup": warmup, "repeats": repeats,
                         "threads": torch.get_num_threads()},
            "results": [{"name": f"{args.dataset} {args.split}", "status": "ok", "batch_ms": batch_ms,
                         "images_per_s": 1000 * batch / batch_ms["median"]}]}


def _cycle(loader: Any):
    while True:
        yield from loader


def format_pipeline(report: dict[str, Any]) -> str:
    s = report["settings"]
    r = report["results"][0]
    return (f"input pipeline {s['dataset']} {s['split']}, batch {s['batch']}, {s['workers']} workers: "
            f"{r['images_per_s']:.1f} images/s (median {r['batch_ms']['median']:.1f} ms/batch, "
            f"IQR {r['batch_ms']['iqr']:.1f} ms)")


# ----------------------------------------------------------------------------------------------

def benchmark(args: argparse.Namespace, command: str | None = None) -> dict[str, Any]:
    """Run the benchmark described by parsed `iaseg benchmark` options (any object with those
    attributes); return the JSON-able report. `command` (the command line that reproduces it)
    is recorded in the report."""
    from iaseg.inference import machine_info

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available")
    runners = {"inference": run_inference, "train": run_train, "pipeline": run_pipeline}
    report = {"schema": SCHEMA, "mode": args.mode,
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "command": command,
              "machine": machine_info(device)}
    report.update(runners[args.mode](args))
    return report


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    head = (f"machine: {m['cpu']} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads"
            f"{', AMX' if m['cpu_amx'] else ''}{', native bf16' if m['cpu_bf16'] else ''}), "
            f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, GPU {m['gpu'] or '-'}; {report['date']}")
    body = {"inference": format_inference, "train": format_train, "pipeline": format_pipeline}[report["mode"]](report)
    return head + "\n" + body
