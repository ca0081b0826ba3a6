"""The timing harness of `iaseg benchmark`: untimed warm-up calls, then timed calls each ended by
a device synchronisation; medians and spreads in milliseconds; the result tables."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch

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


def results_table(results: Sequence[dict[str, Any]], columns: list[str], first: str, value: str,
                  row: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """A text table of benchmark rows: `row(result)` for each measured result; a failed or
    skipped one shows its name under `first`, '-' under `value` and the reason in a 'note'
    column (added only when needed)."""
    from iaseg.models import format_table

    rows = [row(r) if r["status"] == "ok" else
            {first: r["name"], value: "-", "note": f"{r['status']}: {r.get('reason', '')}"} for r in results]
    if any(r["status"] != "ok" for r in results):
        columns = [*columns, "note"]
    return format_table(rows, columns)
