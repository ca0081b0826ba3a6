"""The machine's achievable matmul throughput (`iaseg benchmark`'s "% peak" column).

    >>> peak = measure_peak("cpu", threads=2)          # {'fp32': {...}, 'bf16': {...}, 'int8': {...}}
    >>> peak["bf16"]["gflops"]                          # GFLOP/s (int8: GOP/s)

One square matmul per precision (2 * size^3 operations), all precisions interleaved over a few
rounds so that a load change hits each alike, the median taken. Each precision runs at the largest
of size, size/2, size/4, ... (down to MIN_SIZE) whose call is expected to take at most MAX_CALL_S,
so that a CPU that emulates a precision (bf16 or int8 without the instructions: under 1 GFLOP/s,
half a minute per 2048^3 call) is measured in seconds, not minutes; each entry records its size.
fp32, bf16 and fp16 use torch.matmul; int8 uses torch._int_mm (int8 x int8 -> int32), the u8/s8
GEMM PyTorch exposes; where a precision cannot run, its entry says "n/a" with the reason. Other
engines (OpenVINO, ONNX Runtime) may use kernels faster than PyTorch's, so a row can exceed 100 %.
Results are cached per (device, threads, precisions, size, rounds) for the life of the process.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Sequence

import torch

from .timing import summarize, sync

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.int8}
# the peak a benchmark row is measured against, by the row's precision (inference and train rows)
PEAK_OF_PRECISION = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8",
                     "bf16-autocast": "bf16", "fp16-amp": "fp16"}
DEFAULT_SIZE = 2048
DEFAULT_ROUNDS = 5
MIN_SIZE = 256      # the size ladder's first step (or `size` itself when smaller)
MAX_CALL_S = 0.5    # the longest one timed call may be expected to take

_CACHE: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}


def default_dtypes(device: str | torch.device) -> tuple[str, ...]:
    """The precisions iaseg runs on `device`: fp32, bf16, int8 on CPU; fp16 too on CUDA."""
    return ("fp32", "fp16", "bf16", "int8") if torch.device(device).type == "cuda" else ("fp32", "bf16", "int8")


def _matmul(dtype: str, size: int, device: torch.device) -> Callable[[], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if dtype == "int8":
        if not hasattr(torch, "_int_mm"):
            raise RuntimeError(f"torch {torch.__version__} has no torch._int_mm")
        a, b = (torch.randint(-128, 128, (size, size), generator=g, dtype=torch.int8).to(device) for _ in range(2))
        return lambda: torch._int_mm(a, b)
    a, b = (torch.rand(size, size, generator=g).to(device, DTYPES[dtype]) for _ in range(2))
    return lambda: torch.matmul(a, b)


def measure_peak(device: str | torch.device = "cpu", threads: int | None = None,
                 dtypes: Sequence[str] | None = None, size: int | None = None,
                 rounds: int | None = None) -> dict[str, dict[str, Any]]:
    """Achievable matmul throughput per precision on `threads` PyTorch threads (default: the
    current count; restored afterwards); `size` x `size` operands (default DEFAULT_SIZE),
    `rounds` timed calls each (default DEFAULT_ROUNDS).

    Returns {dtype: {"status": "ok", "gflops" (GFLOP/s, int8: GOP/s), "median_ms", "size",
    "rounds", "op"}} or {dtype: {"status": "n/a", "reason", "op"}} for a precision this build or
    device cannot multiply; "size" is the operand size that precision ran at (`size` or a smaller
    one, see _fit_size). A few seconds on a CPU at the default size; cached."""
    device = torch.device(device)
    size = DEFAULT_SIZE if size is None else size
    rounds = DEFAULT_ROUNDS if rounds is None else rounds
    dtypes = tuple(dtypes) if dtypes is not None else default_dtypes(device)
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise ValueError(f"unknown precision(s) {unknown}; choose from {sorted(DTYPES)}")
    if size < 1 or rounds < 1:
        raise ValueError("size and rounds must be >= 1")
    before = torch.get_num_threads()
    threads = threads or before
    key = (str(device), threads, dtypes, size, rounds)
    if key not in _CACHE:
        torch.set_num_threads(threads)
        try:
            _CACHE[key] = _measure(device, dtypes, size, rounds)
        finally:
            torch.set_num_threads(before)
    return copy.deepcopy(_CACHE[key])


def _measure(device: torch.device, dtypes: tuple[str, ...], size: int, rounds: int) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    calls: dict[str, Callable[[], torch.Tensor]] = {}
    sizes: dict[str, int] = {}
    for d in dtypes:
        op = "torch._int_mm" if d == "int8" else "torch.matmul"
        try:
            sizes[d], calls[d] = _fit_size(d, size, device)
        except (RuntimeError, NotImplementedError) as e:
            result[d] = {"status": "n/a", "reason": f"{op} {d}: {str(e).splitlines()[0][:160]}", "op": op}
            continue
        result[d] = {"status": "ok", "op": op}
    times: dict[str, list[float]] = {d: [] for d in calls}
    for _ in range(rounds):  # interleaved: a load change hits every precision alike
        for d, fn in calls.items():
            t = time.perf_counter()
            fn()
            sync(device)
            times[d].append(time.perf_counter() - t)
    for d, ts in times.items():
        median_ms = summarize(ts)["median"]
        result[d].update(gflops=2 * sizes[d] ** 3 / (median_ms / 1000) / 1e9, median_ms=median_ms, size=sizes[d],
                         rounds=rounds)
    return result


def _fit_size(dtype: str, size: int, device: torch.device) -> tuple[int, Callable[[], torch.Tensor]]:
    """(operand size, warmed-up matmul) for `dtype`: climbs MIN_SIZE, 2 * MIN_SIZE, ... up to
    `size`, timing one call at each step and stopping before a step expected (8x per doubling)
    to take longer than MAX_CALL_S. Raises where the precision cannot run."""
    ladder = [size]
    while ladder[-1] // 2 >= MIN_SIZE:
        ladder.append(ladder[-1] // 2)
    ladder.reverse()
    s, fn = ladder[0], _matmul(dtype, ladder[0], device)
    fn()  # warm-up; also where an unsupported precision fails
    sync(device)
    for nxt in ladder[1:]:
        t = time.perf_counter()
        fn()
        sync(device)
        if (time.perf_counter() - t) * (nxt / s) ** 3 > MAX_CALL_S:
            break
        s, fn = nxt, _matmul(dtype, nxt, device)
        fn()
        sync(device)
    return s, fn


def peak_fraction(row: dict[str, Any], peak: dict[str, dict[str, Any]] | None) -> tuple[str | None, float | None]:
    """(peak precision, achieved / peak) of a measured benchmark row ('gflops_per_s' and a
    'precision'); None where the row has no throughput or its precision no measured peak."""
    dtype = PEAK_OF_PRECISION.get(str(row.get("precision")))
    if dtype is None or not peak or peak.get(dtype, {}).get("status") != "ok" or row.get("gflops_per_s") is None:
        return dtype, None
    return dtype, row["gflops_per_s"] / peak[dtype]["gflops"]


def add_peak_fractions(results: Sequence[dict[str, Any]], peak: dict[str, dict[str, Any]] | None) -> None:
    """Set 'peak_dtype' and 'peak_fraction' (None where there is no matching peak) on each
    measured row."""
    for row in results:
        if row.get("status") == "ok":
            row["peak_dtype"], row["peak_fraction"] = peak_fraction(row, peak)


def percent_of_peak(row: dict[str, Any]) -> str:
    """The '% peak' cell of a row: '40', '2.5' (below 10 %) or '-'."""
    f = row.get("peak_fraction")
    return "-" if f is None else f"{100 * f:.0f}" if f >= 0.1 else f"{100 * f:.1f}"


def format_peak(peak: dict[str, dict[str, Any]] | None) -> str:
    """One line: 'peak (matmul 2048^3, median of 5): fp32 87 GFLOP/s, bf16 195 GFLOP/s, int8 287 GOP/s';
    where the precisions ran at different sizes, each names its own ('bf16 0.6 GFLOP/s at 512^3')."""
    if not peak:
        return "peak: not measured (--no-peak)"
    ok = [v for v in peak.values() if v["status"] == "ok"]
    same = len({v["size"] for v in ok}) <= 1
    how = f"matmul {ok[0]['size']}^3, median of {ok[0]['rounds']}" if ok and same else \
        f"matmul, median of {ok[0]['rounds']}" if ok else "matmul"

    def rate(v: dict[str, Any]) -> str:
        g = v["gflops"]
        return f"{g:,.0f}" if g >= 10 else f"{g:.1f}" if g >= 0.1 else f"{g:.2g}"

    parts = [f"{d} {rate(v)} {'GOP/s' if d == 'int8' else 'GFLOP/s'}" + ("" if same else f" at {v['size']}^3")
             if v["status"] == "ok" else f"{d} n/a ({v['reason']})" for d, v in peak.items()]
    return f"peak ({how}): " + ", ".join(parts)


__all__ = ["DEFAULT_ROUNDS", "DEFAULT_SIZE", "DTYPES", "MAX_CALL_S", "MIN_SIZE", "PEAK_OF_PRECISION",
           "add_peak_fractions", "default_dtypes", "format_peak", "measure_peak", "peak_fraction", "percent_of_peak"]
