"""Is OpenVINO faster than iaseg's default CPU path? Plain PyTorch fp32, iaseg's eager default
(BN folded, fused, channels_last, bf16 on native-bf16 CPUs) and eager fp32, OpenVINO fp32 / bf16 /
int8, timed in interleaved rounds in one process, so that their ratios hold on a busy machine.

    PYTHONPATH=src python benchmarks/openvino_speed.py --threads 2 \
        --checkpoint weights/camvid_erfpspnet_ce.pt --calib-root ../shared/data/camvid [--rounds 5]

Cases: ERF-PSPNet (the checkpoint's weights) at 360x720 and 360x480, and BiERF-PSPNet (random
weights, 19 classes) with context 360x720 and spatial 1024x2048, all batch 1. int8 is calibrated
on 30 seeded CamVid training images at each case's size (for BiERF-PSPNet's random weights the
calibration only sets ranges; its accuracy means nothing). Each round calls every path --calls
times, in an order that alternates between rounds; the report gives each path's median ms and
its speed ratio to iaseg's eager default (median over rounds of the per-round ratio).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch

from iaseg.checkpoint import model_from_checkpoint
from iaseg.data import load_description
from iaseg.inference import ModelMetadata, machine_info, runner_from_model
from iaseg.inference.images import dataset_samples
from iaseg.models import build_model


def paths_for(model: torch.nn.Module, meta: ModelMetadata, calib: list, threads: int | None,
              skip: set[str]) -> dict[str, Callable[..., Any]]:
    plain = model.eval()

    def naive(*xs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return plain(*xs)

    paths: dict[str, Callable[..., Any]] = {"plain PyTorch fp32": naive,
                                            "iaseg eager default": runner_from_model(model, meta),
                                            "iaseg eager fp32": runner_from_model(model, meta, precision="fp32")}
    for precision in ("fp32", "bf16", "int8"):
        if f"openvino {precision}" not in skip:
            paths[f"openvino {precision}"] = runner_from_model(
                model, meta, "openvino", precision, threads=threads,
                calibration=calib if precision == "int8" else None)
    return {k: v for k, v in paths.items() if k not in skip}


def measure(paths: dict[str, Callable[..., Any]], inputs: tuple[torch.Tensor, ...], rounds: int, calls: int,
            warmup: int = 2) -> dict[str, dict[str, float]]:
    for fn in paths.values():
        for _ in range(warmup):
            fn(*inputs)
    names = list(paths)
    times: dict[str, list[float]] = {n: [] for n in names}
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            round_times = []
            for _ in range(calls):
                t = time.perf_counter()
                paths[n](*inputs)
                round_times.append(time.perf_counter() - t)
            times[n] += round_times
            per_round[n].append(statistics.median(round_times))
    base = per_round["iaseg eager default"]
    return {n: {"median_ms": 1000 * statistics.median(times[n]),
                "ratio": statistics.median(b / t for b, t in zip(base, per_round[n]))} for n in names}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="ERF-PSPNet weights (e.g. weights/camvid_erfpspnet_ce.pt)")
    p.add_argument("--calib-root", required=True, help="CamVid root (its train split calibrates int8)")
    p.add_argument("--calib", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=3, help="calls per path per round")
    p.add_argument("--skip", action="append", default=[], help="leave a path out (e.g. 'iaseg eager fp32')")
    p.add_argument("--cases", default="erf720,erf480,bierf", help="comma list of erf720, erf480, bierf")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = machine_info()
    print(f"{info['cpu']}, {args.threads} threads, torch {info['torch']}, openvino {info['openvino']}, "
          f"nncf {info['nncf']}; {args.rounds} interleaved rounds x {args.calls} calls, batch 1; "
          f"ratio = speed vs iaseg eager default (higher is faster)", flush=True)
    erf, erf_info = model_from_checkpoint(args.checkpoint)
    cases = {
        "erf720": ("erfpspnet", erf, ModelMetadata.from_checkpoint_meta(erf_info).with_(input_size=(360, 720))),
        "erf480": ("erfpspnet", erf, ModelMetadata.from_checkpoint_meta(erf_info).with_(input_size=(360, 480))),
    }
    if "bierf" in args.cases:
        torch.manual_seed(0)
        cases["bierf"] = ("bierfpspnet", build_model("bierfpspnet", 19).eval(),
                          ModelMetadata("bierfpspnet", load_description("cityscapes"), (360, 720), (1024, 2048)))
    for case in args.cases.split(","):
        name, model, meta = cases[case]
        calib = [x for x, _ in dataset_samples("camvid", args.calib_root, "train", meta, args.calib)]
        t0 = time.perf_counter()
        paths = paths_for(model, meta, calib, args.threads, set(args.skip))
        built = time.perf_counter() - t0
        g = torch.Generator().manual_seed(0)
        sizes = [meta.input_size] + ([meta.spatial_size] if meta.num_inputs == 2 else [])
        inputs = tuple(torch.rand(1, 3, *s, generator=g) for s in sizes)
        result = measure(paths, inputs, args.rounds, args.calls)
        shape = " + ".join(f"{s[0]}x{s[1]}" for s in sizes)
        print(f"\n{name} {shape} (paths built in {built:.0f} s)")
        for n, r in result.items():
            print(f"  {n:22s} {r['median_ms']:8.1f} ms  {1000 / r['median_ms']:6.1f} fps  ratio {r['ratio']:5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
