"""Inference speed: every backend and precision of `iaseg.inference` side by side with the plain
PyTorch baseline (the 'naive' row), with their argmax agreement; with trained weights and a
labelled split, the int8 rows' accuracy against fp32 (`iaseg.inference.guarded_accuracy`)."""
from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import torch

from .peak import percent_of_peak
from .settings import BenchmarkSettings
from .timing import RowCallback, finish_row, noisy_rows_note, results_table, summarize, time_calls


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


def _source(args: BenchmarkSettings) -> tuple[torch.nn.Module, Any]:
    """(float32 model, ModelMetadata) from --checkpoint or a seeded random init."""
    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.data import load_description
    from iaseg.inference import ModelMetadata
    from iaseg.models import build_model

    if args.checkpoint:
        model, meta = model_from_checkpoint(args.checkpoint)  # its network wins over --model
        # the network as it runs: the checkpoint's sizes unless --size says otherwise (a spatial
        # size belongs to its context size, so it is kept only with that context size)
        size = args.size or tuple(meta.input_size)
        if meta.num_inputs == 2 and not args.spatial_size and size == tuple(meta.input_size) and meta.spatial_size:
            return model, meta.with_(input_size=size, spatial_size=tuple(meta.spatial_size))
    else:
        size = args.size or (360, 720)
        classes = args.num_classes or 11
        desc = load_description("camvid" if classes == 11 else "cityscapes")
        if classes != desc.num_classes:
            raise ValueError(f"--num-classes {classes}: use 11 (CamVid) or 19 (Cityscapes), or --checkpoint")
        torch.manual_seed(0)
        model = build_model(args.model, classes).eval()
        meta = ModelMetadata(args.model, desc)
    return model, meta.with_(input_size=size, spatial_size=args.spatial_size).complete()


def _inference_configs(args: BenchmarkSettings, device: torch.device) -> list[tuple[str, str, dict[str, Any]]]:
    """(backend, precision, extra options) rows to measure, the naive baseline first."""
    from iaseg.inference import default_precision, native_bf16_cpu, openvino_available
    from iaseg.inference.openvino import nncf_available

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
        if cpu and openvino_available():
            rows += [("openvino", p, {}) for p in ["fp32", *fast[:1]]]
            if nncf_available():
                rows += [("openvino", "int8", {})]
        return rows
    if args.backend == "naive":
        return rows
    precisions = {"eager": ["fp32", "bf16", "fp16"], "compile": ["fp32", "bf16", "fp16"],
                  "onnxruntime": ["fp32", "int8"], "torchscript": ["fp32"],
                  "openvino": ["fp32", "bf16", "int8"]}[args.backend]
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


def _accuracy_setup(args: BenchmarkSettings, meta: Any, configs: list[tuple[str, str, dict[str, Any]]]
                    ) -> tuple[dict[str, Any] | None, list[Any], list[Any] | None]:
    """(the int8 accuracy check's report entry, its labelled samples, int8 calibration inputs).
    The entry is None without int8 rows; its status is 'not run' (with the reason) without
    --checkpoint or a labelled --dataset split. int8 rows are calibrated on --calib-images of
    the dataset's train split when the check runs (else on probe scenes: speed does not depend
    on them)."""
    from iaseg.inference.accuracy import MAX_MIOU_DROP, MAX_TOP_GROUP_RECALL_DROP
    from iaseg.inference.images import dataset_samples

    if not any(p == "int8" for _, p, _ in configs):
        return None, [], None
    check: dict[str, Any] = {"status": "not run", "reference": "naive fp32",
                             "limits": {"miou_drop": MAX_MIOU_DROP, "top_group_recall_drop": MAX_TOP_GROUP_RECALL_DROP}}
    dataset = args.dataset
    missing = [what for what, given in (("trained weights (--checkpoint)", args.checkpoint),
                                        ("a labelled split (--dataset, --root)", dataset)) if not given]
    if missing:
        check["reason"] = "needs " + " and ".join(missing)
        return check, [], None
    split = args.split or "val"
    samples = dataset_samples(dataset, args.root, split, meta, args.accuracy_images)
    labelled = [(x, y) for x, y in samples if y is not None]
    check.update(dataset=dataset, split=split)
    if not labelled:
        check["reason"] = f"{dataset} {split} has no labels"
        return check, [], None
    calib = [x for x, _ in dataset_samples(dataset, args.root, "train", meta, args.calib_images)]
    check.update(status="run", images=len(labelled), calibration={"dataset": dataset, "split": "train",
                                                                  "images": len(calib)})
    return check, labelled, calib


def int8_accuracy(reference: torch.Tensor, runner: Any, samples: list[Any], description: Any,
                  what: str) -> dict[str, Any]:
    """accuracy_guard of `runner` against the reference's confusion matrix on labelled samples,
    reported and never raised: 'passed' False is a FAIL (the guard's warning is silenced, the
    table prints it)."""
    from iaseg.inference import guarded_accuracy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return guarded_accuracy(reference, runner, samples, description, allow_drop=True, what=what)


def run_inference(args: BenchmarkSettings, on_row: RowCallback | None = None) -> dict[str, Any]:
    """Measure every configured row (the naive baseline first); `on_row` hears of each one as
    soon as it is measured."""
    from iaseg.inference import agreement, default_precision, mean_iou, runner_from_model
    from iaseg.inference.probe import structured_scenes
    from iaseg.models import describe, image_inputs

    device = torch.device(args.device)
    model, meta = _source(args)
    batch = args.batch or 1
    warmup = 5 if args.warmup is None else args.warmup
    repeats = 30 if args.repeats is None else args.repeats
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.rand(batch, 3, *s, generator=g) for s in meta.sizes)
    info = describe(model, tuple(t[:1] for t in inputs))
    inputs = tuple(t.to(device) for t in inputs)  # on the device before timing: no host copies timed
    from iaseg.inference.checked_int8 import default_int8_ir
    from iaseg.inference.runners import default_backend

    chosen_backend = default_backend(device, "auto", meta, False)[0]
    default: tuple[str, str] | None = (chosen_backend, default_precision(device, chosen_backend))
    naive = NaiveRunner(model, device)
    reference = naive(*inputs).float().cpu()
    results: list[dict[str, Any]] = []
    configs = _inference_configs(args, device)
    # load_runner(checkpoint) runs an accuracy-checked int8 IR beside it where one fits this size:
    # then that file is the default row
    checked = default_int8_ir(args.checkpoint, model, meta, "auto", device, False, None)[0] if args.checkpoint else None
    if checked is not None:
        configs.append(("openvino", "int8", {"file": checked}))
        default = None
    check, labelled, check_calib = _accuracy_setup(args, meta, configs)  # before timing: a bad --root fails fast
    reference_conf = None
    base: dict[str, Any] | None = None
    for backend, precision, extra in configs:
        row: dict[str, Any] = {"name": f"{backend} {precision}" + (" +graphs" if extra.get("cuda_graphs") else "")
                               + (f" {extra['file'].name}" if "file" in extra else ""),
                               "backend": backend, "precision": precision,
                               "default": ((backend, precision) == default and not extra) or "file" in extra}
        t0 = time.perf_counter()
        try:
            if backend == "naive":
                runner: Any = naive
            elif "file" in extra:
                from iaseg.inference import load_runner

                runner = load_runner(extra["file"], threads=args.threads)
            else:
                calib = check_calib if precision == "int8" else None
                if precision == "int8" and calib is None:  # speed does not depend on the calibration images
                    imgs = structured_scenes(4, meta.input_size, meta.description.num_classes, seed=1)[0]
                    calib = [image_inputs(meta.model_name, imgs[i:i + 1], spatial_size=meta.spatial_size) for i in range(4)]
                runner = runner_from_model(model, meta, backend, precision, device, threads=args.threads,
                                           calibration=calib, **extra)
            out = runner(*inputs).float().cpu()
        except Exception as e:  # noqa: BLE001 - one failing backend must not end the table
            row.update(status="failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            results.append(finish_row(row, len(results) + 1, len(configs), on_row))
            continue
        row["setup_s"] = time.perf_counter() - t0
        row["options"] = runner.options()
        latency = summarize(time_calls(lambda: runner(*inputs), warmup, repeats, device))
        agree = agreement(lambda *_: reference, lambda *_: out, [inputs])
        row.update(status="ok", latency_ms=latency, fps=1000 * batch / latency["median"],
                   gflops_per_s=info["gflops"] * batch / (latency["median"] / 1000),
                   agreement={k: agree[k] for k in ("argmax_agreement", "max_abs_diff", "near_ties")})
        if backend == "naive":
            base = row
        if base is not None:
            row["speedup"] = row["fps"] / base["fps"]
        if precision == "int8" and labelled:
            if reference_conf is None:
                reference_conf = mean_iou(naive, labelled, meta.description.num_classes,
                                          meta.description.ignore_index)["confusion"]
            row["accuracy"] = int8_accuracy(reference_conf, runner, labelled, meta.description, row["name"])
        results.append(finish_row(row, len(results) + 1, len(configs), on_row))
        del runner
    return {"settings": {"model": meta.model_name, "num_classes": meta.description.num_classes,
                         "size": list(meta.input_size),
                         "spatial_size": list(meta.spatial_size) if meta.spatial_size else None,
                         "batch": batch, "warmup": warmup, "repeats": repeats, "device": str(device),
                         "threads": torch.get_num_threads(), "checkpoint": args.checkpoint,
                         "weights": "checkpoint" if args.checkpoint else "random init (seed 0)"},
            "model": {"params": info["params"], "gflops_per_image": info["gflops"]},
            "results": results, "accuracy_check": check}


def inference_row(r: dict[str, Any]) -> dict[str, Any]:
    """The table cells of a measured inference row."""
    lat = r["latency_ms"]
    return {"path": r["name"] + (" (default)" if r["default"] else ""),
            "fps": round(r["fps"], 2), "median ms": round(lat["median"], 2),
            "IQR ms": round(lat["iqr"], 2), "min ms": round(lat["min"], 2), "max ms": round(lat["max"], 2),
            "GFLOP/s": round(r["gflops_per_s"], 1), "% peak": percent_of_peak(r),
            "speed-up": f"{r.get('speedup', float('nan')):.2f}x",
            "agree %": f"{100 * r['agreement']['argmax_agreement']:.2f}",
            "setup s": round(r["setup_s"], 1)}


def format_inference(report: dict[str, Any]) -> str:
    s = report["settings"]
    size = "x".join(map(str, s["size"]))
    if s["spatial_size"]:
        size += " + spatial " + "x".join(map(str, s["spatial_size"]))
    head = (f"{s['model']} {size}, batch {s['batch']}, {s['device']}, {s['threads']} threads, "
            f"{report['model']['params']:,} params, {report['model']['gflops_per_image']:.2f} GFLOPs/image, "
            f"weights: {s['weights']}; {s['warmup']} warm-up + {s['repeats']} timed calls")
    peak = ["% peak"] if report.get("peak") else []
    cols = ["path", "fps", "median ms", "IQR ms", "min ms", "max ms", "GFLOP/s", *peak, "speed-up", "agree %", "setup s"]
    note = ("GFLOP/s: counted FLOPs per call (as `iaseg model-info`) over the median time"
            + ("; % peak: of the matmul peak of the row's precision" if peak else "")
            + "\nspeed-up: over the naive row (plain PyTorch fp32 eager); agree %: argmax agreement with the naive "
            "row on the benchmark input" + (" (random weights: a weak check)" if not s["checkpoint"] else ""))
    return (head + "\n" + results_table(report["results"], cols, "path", "fps", inference_row) + "\n" + note
            + noisy_rows_note(report["results"]) + format_accuracy_check(report))


HOW_TO_CHECK = "--checkpoint CKPT --dataset NAME --root DIR [--split val] [--accuracy-images N]"


def format_accuracy_check(report: dict[str, Any]) -> str:
    """The lines under the table about the int8 rows' accuracy against fp32 ('' without int8 rows)."""
    from iaseg.inference import format_guard

    check = report.get("accuracy_check")
    if not check:
        return ""
    if check["status"] != "run":
        return (f"\nint8 accuracy check not run: it {check['reason']}; to score fp32 and each int8 path on a "
                f"labelled split: iaseg benchmark ... {HOW_TO_CHECK}")
    lim, cal = check["limits"], check["calibration"]
    lines = [f"\nint8 accuracy on {check['dataset']} {check['split']} ({check['images']} labelled images; reference "
             f"{check['reference']}; int8 calibrated on {cal['images']} {cal['dataset']} {cal['split']} images; "
             f"limits: mean IoU -{lim['miou_drop']:g}, top-group recall -{lim['top_group_recall_drop']:g} points):"]
    for r in report["results"]:
        if r.get("precision") != "int8":
            continue
        if "accuracy" not in r:
            lines.append(f"  {r['name']}: not scored ({r['status']})")
            continue
        a = r["accuracy"]
        lines.append(f"  {r['name']}: {format_guard(a)}: {'PASS' if a['passed'] else 'FAIL'}")
    return "\n".join(lines)
