"""The timing harness of `iaseg benchmark`: untimed warm-up calls, then timed calls each ended by
a device synchronisation; medians and spreads in milliseconds; noisy rows; the result tables."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch

# A row is noisy when the spread of its timed calls (IQR, the middle half) is above this fraction
# of its median: its ratios to other rows are then not to be trusted (a busy machine, a
# frequency change, too few repeats).
NOISE_FRACTION = 0.10
TIMING_KEYS = ("latency_ms", "step_ms", "batch_ms", "frame_ms")   # inference, train, pipeline, video rows

# A callback told of each row once it is measured: (row, rows done, rows in all).
RowCallback = Callable[[dict[str, Any], int, int], None]


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


def timing_of(row: dict[str, Any]) -> dict[str, float] | None:
    """The timing summary of a benchmark row (latency, step or batch times), if it was measured."""
    return next((row[k] for k in TIMING_KEYS if k in row), None)


def noise(times: dict[str, float], fraction: float = NOISE_FRACTION) -> dict[str, Any]:
    """{'noisy', 'spread' (IQR / median)} of a timing summary: noisy when the IQR is above
    `fraction` of the median."""
    spread = times["iqr"] / times["median"] if times["median"] > 0 else 0.0
    return {"noisy": spread > fraction, "spread": spread}


def noise_warning(row: dict[str, Any], fraction: float = NOISE_FRACTION) -> str | None:
    """One line for a noisy measured row (None for a steady one)."""
    times = timing_of(row)
    if row.get("status") != "ok" or times is None or not noise(times, fraction)["noisy"]:
        return None
    return (f"{row['name']} is noisy: IQR {times['iqr']:.2f} ms is {100 * times['iqr'] / times['median']:.0f}% of "
            f"its median {times['median']:.2f} ms (above {100 * fraction:.0f}%): rerun on an idle machine or with "
            "more --repeats before comparing it")


def finish_row(row: dict[str, Any], done: int, total: int, on_row: RowCallback | None) -> dict[str, Any]:
    """Record a measured row's noise ('noisy', 'spread') and tell `on_row` at once. Returns it."""
    times = timing_of(row)
    if row.get("status") == "ok" and times is not None:
        row.update(noise(times))
    if on_row is not None:
        on_row(row, done, total)
    return row


def noisy_rows_note(results: Sequence[dict[str, Any]]) -> str:
    """A line under a table naming its noisy rows ('' when there are none)."""
    noisy = [r["name"] for r in results if r.get("noisy")]
    if not noisy:
        return ""
    return (f"\nnoisy (IQR above {100 * NOISE_FRACTION:.0f}% of the median): {', '.join(noisy)}; their ratios "
            "to other rows are unreliable")


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
