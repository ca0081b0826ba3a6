"""Speed: inference, training-step and input-pipeline throughput (`iaseg benchmark`).

    iaseg benchmark --model erfpspnet --size 360x720 --batch 1 --backend all --threads 2
    iaseg benchmark --mode train --size 360x480 --batch 8 --loss all --threads 2
    iaseg benchmark --mode pipeline --dataset camvid --root data/camvid --batch 8 --workers 2
    iaseg benchmark --mode video --checkpoint weights/camvid_erfpspnet_ce.pt --frames 100

Protocol: inputs are made once and moved to the device before timing (no data loading or
host-to-device copy inside the timed region; the cast to the runner's precision is timed);
`--warmup` untimed calls, then `--repeats` timed calls, each ended by torch.cuda.synchronize on
GPU; the median and spread (IQR, min, max) are reported. Every row of a table is measured in
the same process, one after the other, so ratios between rows are meaningful even on a busy
machine; absolute numbers are only as good as the machine's idleness. A row whose IQR is above
10% of its median (`timing.NOISE_FRACTION`) is marked noisy ("noisy": true in the JSON, a line
under the table, a warning as it is measured). `benchmark(..., on_row=f)` calls `f(row, done,
total)` as soon as each row is measured (`iaseg benchmark` prints `progress_line` of it).

Inference and train modes first measure the machine's matmul peak (`peak.measure_peak`: fp32,
bf16, int8; fp16 too on CUDA) and give every row its achieved GFLOP/s (counted FLOPs over the
median time) and the fraction of the peak of its precision ('peak_fraction'); `--no-peak`
skips it.

The 'naive' row is the plain PyTorch way: `iaseg.models.build_model(...)` in eval mode under
torch.no_grad, float32, default (NCHW) memory format, no folding or fusion. Speed-ups are over
that row. 'default' marks what `iaseg.inference.load_runner` does when given no options.
The --json schema is documented in docs/speed.md.

Modules: `settings` (what to measure), `timing` (the harness), `inference`, `train`, `pipeline`, `video`
(one benchmark each).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

import torch

from .inference import NaiveRunner, format_inference, run_inference
from .peak import add_peak_fractions, format_peak, measure_peak
from .pipeline import format_pipeline, run_pipeline
from .settings import BenchmarkSettings
from .timing import NOISE_FRACTION, RowCallback, noise_warning, summarize, sync, time_calls, timing_of
from .train import LOSSES, format_train, run_train
from .video import format_video, run_video

SCHEMA = "iaseg.benchmark/1"
MODES = ("inference", "train", "pipeline", "video")

__all__ = ["BenchmarkSettings", "LOSSES", "MODES", "NOISE_FRACTION", "SCHEMA", "NaiveRunner", "benchmark", "format_inference",
           "format_peak", "format_pipeline", "format_report", "format_train", "measure_peak", "noise_warning",
           "progress_line", "run_inference", "run_pipeline", "run_train", "run_video", "summarize", "sync", "time_calls"]


def benchmark(args: BenchmarkSettings, command: str | None = None,
              on_row: RowCallback | None = None) -> dict[str, Any]:
    """Run the benchmark `args` describes (`iaseg benchmark` builds them from its options);
    return the JSON-able report. `command` (the command line that reproduces it)
    is recorded in the report; `on_row(row, done, total)` is called as each row is measured."""
    from iaseg.inference import machine_info

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available")
    runners = {"inference": run_inference, "train": run_train, "pipeline": run_pipeline, "video": run_video}
    report = {"schema": SCHEMA, "mode": args.mode,
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "command": command,
              "machine": machine_info(device)}
    if args.mode in ("inference", "train"):  # before the rows, once
        report["peak"] = None if args.no_peak else measure_peak(device, torch.get_num_threads())
    report.update(runners[args.mode](args, on_row))
    if "peak" in report:
        add_peak_fractions(report["results"], report["peak"])
    return report


def progress_line(row: dict[str, Any], done: int, total: int) -> str:
    """One line for a row just measured: '[3/9] eager bf16: 41.20 fps, median 24.27 ms (IQR 0.41)'."""
    head = f"[{done}/{total}] {row['name']}"
    times = timing_of(row)
    if row.get("status") != "ok" or times is None:
        return f"{head}: {row.get('status')}: {row.get('reason', '')}"
    rate = f"{row['fps']:.2f} fps" if "fps" in row else f"{row['images_per_s']:.2f} images/s"
    speedup = f", {row['speedup']:.2f}x" if "speedup" in row else ""
    return f"{head}: {rate}, median {times['median']:.2f} ms (IQR {times['iqr']:.2f}){speedup}"


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    head = (f"machine: {m['cpu']} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads"
            f"{', AMX' if m['cpu_amx'] else ''}{', native bf16' if m['cpu_bf16'] else ''}), "
            f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, GPU {m['gpu'] or '-'}; {report['date']}")
    if "peak" in report:
        head += "\n" + format_peak(report["peak"])
    body = {"inference": format_inference, "train": format_train, "pipeline": format_pipeline,
            "video": format_video}[report["mode"]](report)
    return head + "\n" + body
