"""What `iaseg calibrate`'s search costs on the CPU: one exact re-evaluation of a rule over the
cache (`confusion_from_cache`), one sweep of every candidate step of all 11 offsets in one pass
(`sweep_confusions`), both at CamVid val size, and a whole two-target calibration on a smaller
cache. Synthetic logits with CamVid's 11 classes (seeded; the search's cost depends on the pixel
count and the number of classes, not on the network), the CamVid description's groups.

    PYTHONPATH=src python benchmarks/calibrate_search.py [--threads 1] [--pixels 17155529] \
        [--calib-pixels 2000000] [--json OUT.json]

17,155,529 is the number of labelled pixels of CamVid val at 360x480 (`meta.pixels` of its
reports). Times are wall-clock medians of --repeats calls (the calibration: one call, with its
pass count and process CPU time); the first exact re-evaluation is an untimed warm-up.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from iaseg.data import load_description
from iaseg.decision.cache import CalibrationData, confusion_from_cache, sweep_confusions
from iaseg.decision.search import _STEPS, calibrate
from iaseg.decision.targets import parse_objective, parse_target
from iaseg.inference import machine_info
from iaseg.speed.timing import time_calls


def synthetic_cache(pixels: int, classes: int, seed: int) -> CalibrationData:
    """Standard-normal logits (float16, as the cache stores them) with a +2 bump on the true
    class, labels drawn with CamVid-like skew (a few classes hold most pixels)."""
    g = torch.Generator().manual_seed(seed)
    shares = torch.tensor([0.15, 0.22, 0.01, 0.27, 0.06, 0.14, 0.02, 0.03, 0.06, 0.01, 0.01])[:classes]
    labels = torch.multinomial(shares / shares.sum(), pixels, replacement=True, generator=g).to(torch.uint8)
    logits = torch.randn(pixels, classes, generator=g)
    logits[torch.arange(pixels), labels.long()] += 2.0
    return CalibrationData(logits.half(), labels)


def median_time(fn, repeats: int, warmup: int = 0) -> float:
    return statistics.median(time_calls(fn, warmup, repeats, torch.device("cpu")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pixels", type=int, default=17_155_529)
    ap.add_argument("--calib-pixels", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    desc = load_description("camvid")
    c = desc.num_classes

    data = synthetic_cache(args.pixels, c, seed=0)
    b = torch.zeros(c)
    t_exact = median_time(lambda: confusion_from_cache(data, b + 0.01), args.repeats, warmup=1)
    values = {k: b[k] + _STEPS for k in range(c)}
    t_sweep = median_time(lambda: sweep_confusions(data, b, list(range(c)), values), args.repeats)
    del data

    small = synthetic_cache(args.calib_pixels, c, seed=1)
    targets = [parse_target("G3.recall>=0.6", desc), parse_target("Pedestrian.recall>=0.7", desc)]
    objective = parse_objective("miou", desc)
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = calibrate(small, targets, objective)
    calib_wall, calib_cpu = time.perf_counter() - t0, time.process_time() - cpu0

    out = {
        "machine": machine_info(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "threads": args.threads, "classes": c, "candidate_steps": len(_STEPS),
        "exact_reevaluation_s": round(t_exact, 3), "sweep_all_offsets_s": round(t_sweep, 3),
        "pixels": args.pixels,
        "calibration": {"pixels": args.calib_pixels, "targets": [str(t) for t in targets],
                        "met": bool(result.met), "passes": result.passes, "moves": result.moves,
                        "wall_s": round(calib_wall, 2), "cpu_s": round(calib_cpu, 2)},
    }
    print(f"{args.pixels:,} cached pixels, {c} classes, {args.threads} thread(s): exact re-evaluation "
          f"{t_exact:.2f} s, sweep of {len(_STEPS)} steps x {c} offsets {t_sweep:.2f} s")
    print(f"calibration {out['calibration']['targets']} on {args.calib_pixels:,} pixels: "
          f"{result.passes} passes, {calib_wall:.1f} s wall, {calib_cpu:.1f} s CPU, targets met: {result.met}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
