"""Video speed: the whole `iaseg predict` path on a clip against the network alone, measured in
interleaved rounds (each round times the model alone, the pipelined path, and the path as it
was before the pipeline, one after the other), so their ratios hold on a busy machine; plus a
profile of the path's stages, one after another, and the process's memory at frame 100 and at
the end of the pipelined run.

Rows (ms per frame over the rounds; fps of the median):
    model alone          `Predictor.logits` on one prepared batch, called frames/batch times
    end to end           `iaseg.inference.stream.predict_stream`: decode + resize in a reading
                         thread, the network, labels + overlay + H.264 encode in a writing thread
    end to end, before   the same stages in one thread in their previous forms: logits resized
                         to the frame for every class then torch argmax, a float32 blend, x264
                         preset medium at crf 20
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .settings import BenchmarkSettings
from .timing import RowCallback, finish_row, noisy_rows_note, results_table, summarize

STAGES = ("decode", "colour conversion", "resize + to tensor", "model", "labels", "labels (before)",
          "overlay", "overlay (before)", "encode", "encode (before)")


def synthetic_clip(path: str | Path, frames: int, size: tuple[int, int] = (360, 720), rate: int = 30) -> Path:
    """An H.264 clip of moving gradients and a moving block (PyAV), `frames` long, H x W = `size`."""
    from iaseg.inference.video import VideoWriter

    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    with VideoWriter(path, rate) as writer:
        for i in range(frames):
            f = np.stack([(x + 3 * i) % 256, (2 * y + i) % 256, ((x + y) // 3 + 5 * i) % 256], -1).astype(np.uint8)
            c = (4 * i) % max(1, w - w // 6)
            f[h // 2:h // 2 + h // 4, c:c + w // 6] = (200, 30, 30)
            writer.write(f)
    return Path(path)


def rss_mb() -> float | None:
    """The process's resident memory now, in MB (None where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def float_overlay(image: np.ndarray, label: np.ndarray, palette: np.ndarray, num_classes: int) -> np.ndarray:
    """The overlay's previous form (float32 over the whole frame), for the 'before' row."""
    color = palette[np.clip(label, 0, 255)].astype(np.float32)
    img = image.astype(np.float32)
    valid = (label >= 0) & (label < num_classes)
    return np.where(valid[..., None], 0.5 * img + 0.5 * color, img).round().clip(0, 255).astype(np.uint8)


def _before(clip: Path, predictor: Any, palette: np.ndarray, num_classes: int, out: Path, rate: Fraction,
            clock: Callable[[str], None] | None = None) -> int:
    """The path before the pipeline, one frame after another; `clock(stage)` after each stage."""
    from iaseg.inference.labels import resize_logits
    from iaseg.inference.video import VideoWriter, _av

    tick = clock or (lambda stage: None)
    n = 0
    with _av().open(str(clip)) as container, VideoWriter(out, rate, quality=20, preset="medium") as writer:
        for frame in container.decode(video=0):
            tick("decode")
            image = frame.to_ndarray(format="rgb24")
            tick("colour conversion")
            prepared = predictor.prepare([image])
            tick("resize + to tensor")
            logits = predictor.logits(prepared)
            tick("model")
            label = resize_logits(logits, image.shape[:2]).argmax(1)[0].numpy()
            tick("labels (before)")
            shown = float_overlay(image, label, palette, num_classes)
            tick("overlay (before)")
            writer.write(shown)
            tick("encode (before)")
            n += 1
    tick("encode (before)")  # the encoder's delayed frames, written as it closes
    return n


def profile_stages(clip: Path, predictor: Any, description: Any, out: Path, frames: int) -> dict[str, float]:
    """ms per frame of each stage of the path, one stage after another (no overlap), over the
    first `frames` frames: the stages as they run now, then the previous forms of the stages
    that changed ('(before)') on the same frames."""
    from iaseg.inference.video import VideoWriter, _av, video_info
    from iaseg.visualize import blend, blend_table, palette_lut

    total = dict.fromkeys(STAGES, 0.0)
    t = [0.0]

    def clock(stage: str) -> None:
        now = time.perf_counter()
        total[stage] += now - t[0]
        t[0] = now

    table = blend_table(description)
    rate = video_info(clip).rate
    n = 0
    with _av().open(str(clip)) as container, VideoWriter(out, rate) as writer:
        t[0] = time.perf_counter()
        for n, frame in enumerate(container.decode(video=0), 1):
            clock("decode")  # PyAV decodes inside the iterator
            image = frame.to_ndarray(format="rgb24")
            clock("colour conversion")
            prepared = predictor.prepare([image])
            clock("resize + to tensor")
            logits = predictor.logits(prepared)
            clock("model")
            label = predictor.labels(prepared, logits)[0]
            clock("labels")
            shown = blend(image, label, table)
            clock("overlay")
            writer.write(shown)
            clock("encode")
            if n >= frames:
                break
    clock("encode")  # the encoder's delayed frames, written as it closes
    now = {k: v for k, v in total.items() if "before" not in k}
    short = _head(clip, out.with_name("head.mp4"), n)
    total = dict.fromkeys(STAGES, 0.0)
    t[0] = time.perf_counter()
    _before(short, predictor, palette_lut(description), description.num_classes, out.with_name("before.mp4"),
            rate, clock)
    now.update({k: v for k, v in total.items() if "before" in k})
    return {k: 1000 * now[k] / max(n, 1) for k in STAGES}


def _head(clip: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of a clip as a clip of their own (re-encoded)."""
    from iaseg.inference.video import VideoWriter, iter_video, video_info

    with VideoWriter(out, video_info(clip).rate) as writer:
        for i, (_, image) in enumerate(iter_video(clip)):
            if i >= frames:
                break
            writer.write(image)
    return out


def run_video(args: BenchmarkSettings, on_row: RowCallback | None = None) -> dict[str, Any]:
    from iaseg.inference import load_runner
    from iaseg.inference.predictor import Predictor
    from iaseg.inference.stream import predict_stream
    from iaseg.inference.video import VideoWriter, iter_video, video_info
    from iaseg.visualize import blend, blend_table, palette_lut

    if not args.checkpoint:
        raise ValueError("video mode needs --checkpoint (a trained network's label maps are what the path draws)")
    batch = args.batch or 4
    rounds = 3 if args.repeats is None else args.repeats
    frames = args.frames or 100
    device = torch.device(args.device)
    runner = load_runner(args.checkpoint, device=device, threads=args.threads,
                         input_size=tuple(args.size) if args.size else None)
    size = tuple(args.size) if args.size else runner.input_size
    predictor = Predictor(runner, runner.meta.with_(input_size=size), device)
    desc = runner.description
    table = blend_table(desc)
    with tempfile.TemporaryDirectory(prefix="iaseg-video-") as tmp:
        tmpdir = Path(tmp)
        given = args.input
        frame_size = tuple(args.frame_size or (360, 720))
        clip = Path(given) if given else synthetic_clip(tmpdir / "clip.mp4", frames, frame_size)
        info = video_info(clip)
        first = next(iter(iter_video(clip)))[1]
        prepared = predictor.prepare([first] * batch)
        for _ in range(2 if args.warmup is None else args.warmup):
            predictor.logits(prepared)
        calls = max(1, frames // batch)
        times: dict[str, list[float]] = {"model": [], "stream": [], "before": []}
        ratios: list[float] = []
        memory: dict[str, float | None] = {}
        count = 0
        for r in range(rounds):
            t = time.perf_counter()
            for _ in range(calls):
                predictor.logits(prepared)
            times["model"].append((time.perf_counter() - t) / (calls * batch))
            rss: dict[int, float | None] = {}
            with VideoWriter(tmpdir / "out.mp4", info.rate) as writer:

                def write(name: str, image: np.ndarray, label: np.ndarray) -> None:
                    writer.write(blend(image, label, table))
                    if writer.frames in (100, info.frames or -1) or writer.frames == frames:
                        rss[writer.frames] = rss_mb()

                stats = predict_stream(iter_video(clip), predictor, write, batch)
            count = stats.frames
            times["stream"].append(stats.seconds / stats.frames)
            ratios.append(times["model"][-1] / times["stream"][-1])
            if r == 0:
                memory = {f"rss_mb_at_frame_{k}": v for k, v in sorted(rss.items())}
            t = time.perf_counter()
            n = _before(clip, predictor, palette_lut(desc), desc.num_classes, tmpdir / "before.mp4", info.rate)
            times["before"].append((time.perf_counter() - t) / n)
        profile = profile_stages(clip, predictor, desc, tmpdir / "profile.mp4", min(count, 50))
    names = {"model": "model alone", "stream": "end to end (pipelined)", "before": "end to end, before (serial)"}
    results = []
    for i, key in enumerate(("model", "stream", "before")):
        ms = summarize(times[key])
        row = {"name": names[key], "status": "ok", "frame_ms": ms, "fps": 1000 / ms["median"],
               "of_model": statistics.median(times["model"]) / statistics.median(times[key])}
        if key == "stream":
            row["of_model_per_round"] = ratios
            row.update(memory)
        results.append(finish_row(row, i + 1, 3, on_row))
    return {"settings": {"checkpoint": args.checkpoint, "runner": runner.describe(), "model": runner.model_name,
                         "size": list(size), "spatial_size": list(runner.spatial_size) if runner.spatial_size else None,
                         "clip": str(given) if given else f"synthetic H.264, {frame_size[0]}x{frame_size[1]}",
                         "frames": count, "frame_size": [info.height, info.width], "batch": batch,
                         "rounds": rounds, "threads": torch.get_num_threads()},
            "results": results, "profile_ms_per_frame": profile}


def video_row(r: dict[str, Any]) -> dict[str, Any]:
    ms = r["frame_ms"]
    cells = {"path": r["name"], "fps": f"{r['fps']:.1f}", "ms/frame": f"{ms['median']:.1f}",
             "IQR ms": f"{ms['iqr']:.1f}", "x model": f"{r['of_model']:.2f}x"}
    mem = [f"{v:.0f} MB at frame {k.rsplit('_', 1)[1]}" for k, v in r.items() if k.startswith("rss_mb_at") and v]
    cells["memory (RSS)"] = ", ".join(mem) or "-"
    return cells


def format_video(report: dict[str, Any]) -> str:
    s = report["settings"]
    head = (f"video: {s['clip']}, {s['frames']} frames of {s['frame_size'][0]}x{s['frame_size'][1]}; network "
            f"{s['model']} {'x'.join(map(str, s['size']))}, batch {s['batch']}, {s['threads']} threads; "
            f"{s['runner']}; {s['rounds']} interleaved rounds")
    table = results_table(report["results"], ["path", "fps", "ms/frame", "IQR ms", "x model", "memory (RSS)"],
                          "path", "fps", video_row)
    prof = report["profile_ms_per_frame"]
    lines = ["profile, one stage after another (ms per frame):"]
    lines += [f"  {k:<22} {v:7.2f}" for k, v in prof.items()]
    return head + "\n" + table + noisy_rows_note(report["results"]) + "\n" + "\n".join(lines)
