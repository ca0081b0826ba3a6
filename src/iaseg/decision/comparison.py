"""Which rule family holds out of sample: leave-one-part-out comparison of the families of
`iaseg.decision.families`, each part a model scored on a sequence it never trained on (what
`iaseg calibrate --cross-fit ... --compare-families` runs)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .cache import CalibrationData, confusion_from_cache, pool
from .families import _GRID, FAMILIES, group_sweep
from .policy import fit_rule
from .promise import check_promise, promise_of_fit
from .targets import Quantity, parse_objective


def single_offset_curve(data: CalibrationData, members: Sequence[int], objective: Quantity, recall: Quantity,
                        grid: torch.Tensor = _GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """(objective, recall) of every single group offset of `grid` on `data`: the curve a rule
    family must reach out of sample (one pass)."""
    cms = group_sweep(data, torch.zeros(data.num_classes), members, grid)
    return objective.value(cms), recall.value(cms)


def curve_recall_at(curve: tuple[torch.Tensor, torch.Tensor], level: float) -> float:
    """The most recall the single-offset curve gives at `level` of its objective or above (its
    upper envelope); NaN when no point reaches the level."""
    obj, rec = curve
    ok = obj >= level - 1e-12
    return float(rec[ok].max()) if bool(ok.any()) else math.nan


def compare_families(parts: dict[str, CalibrationData], description: Any, group: str = "", max_miou_drop: float = 0.5,
                     families: Sequence[str] = FAMILIES, shrinkage: float = 0.5, max_class_drop: float = 2.0,
                     promise_boot: int = 500) -> dict[str, Any]:
    """Out-of-sample comparison of rule families by leave-one-part-out: each part (a model scored
    on a sequence it never trained on) is held out in turn; every family is calibrated on the
    pool of the other parts (the matched point: most `group` recall for at most `max_miou_drop`
    points of mean IoU) and scored on the held-out part: its mean IoU cost, group recall and
    gain, the gap to the held-out part's own single-offset curve at the mean IoU it reached
    (positive: above the curve), and whether the promise made on the pool held there.

    Returns {"held_out": {part: {family: {...}}}, "mean": {family: {...}}, "meta": {...}}; values
    in points."""
    if len(parts) < 2:
        raise ValueError("compare_families needs at least two parts (one held out, the others to calibrate on)")
    group = group or description.group_names[-1]
    members = description.group_indices()[description.group_names.index(group)]
    miou = parse_objective("miou", description)
    recall = parse_objective(f"{group}.recall", description)
    held: dict[str, Any] = {}
    for name, test in parts.items():
        train = pool([p for n, p in parts.items() if n != name], [n for n in parts if n != name])
        plain = confusion_from_cache(test)
        base_miou, base_rec = float(miou.value(plain)), float(recall.value(plain))
        curve = single_offset_curve(test, members, miou, recall)
        held[name] = {}
        for fam in families:
            fit = fit_rule(train, description, [], recall, max_miou_drop=max_miou_drop, max_class_drop=max_class_drop,
                           family=fam, shrinkage=shrinkage)
            cm = confusion_from_cache(test, fit.result.offsets)
            m, r = float(miou.value(cm)), float(recall.value(cm))
            row = {"offsets": [float(v) for v in fit.result.offsets], "calibration_met": fit.result.met,
                   "miou_cost": 100 * (base_miou - m), "group_recall": 100 * r, "group_recall_gain": 100 * (r - base_rec),
                   "gap_to_single_curve": 100 * (r - curve_recall_at(curve, m))}
            if train.names is not None and test.names is not None:
                promise = promise_of_fit(train, fit.result, description, fit.targets, recall, n_boot=promise_boot)
                check, _ = check_promise(promise, plain, cm, description)
                row["promise"] = {k: promise["new_sequence"][k] for k in ("miou_cost", "group_recall_gain")}
                row["promise_kept"] = not check["broken"]
            held[name][fam] = row
    keys = ("miou_cost", "group_recall", "group_recall_gain", "gap_to_single_curve")
    mean = {fam: {k: float(sum(held[n][fam][k] for n in held) / len(held)) for k in keys} for fam in families}
    for fam in families:
        kept = [held[n][fam].get("promise_kept") for n in held if "promise_kept" in held[n][fam]]
        mean[fam]["promises_kept"] = f"{sum(kept)} of {len(kept)}" if kept else None
    meta = {"group": group, "max_miou_drop": max_miou_drop, "shrinkage": shrinkage, "parts": list(parts),
            "families": list(families), "objective": f"most {group} recall at <= {max_miou_drop:g} points of mean IoU"}
    return {"held_out": held, "mean": mean, "meta": meta}


def families_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as a markdown table: one row per held-out part and family, then the means."""
    g = comparison["meta"]["group"]
    lines = [f"| held out | family | mean IoU cost | {g} recall | gain | vs single-offset curve | promise (cost, gain) | kept |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for part, rows in comparison["held_out"].items():
        for fam, r in rows.items():
            p = r.get("promise")
            ptxt = (f"[{p['miou_cost']['low']:.1f}, {p['miou_cost']['high']:.1f}], "
                    f"[{p['group_recall_gain']['low']:+.1f}, {p['group_recall_gain']['high']:+.1f}]") if p else "-"
            kept = "-" if "promise_kept" not in r else ("yes" if r["promise_kept"] else "NO")
            lines.append(f"| {part} | {fam} | {r['miou_cost']:.2f} | {r['group_recall']:.1f} | "
                         f"{r['group_recall_gain']:+.1f} | {r['gap_to_single_curve']:+.2f} | {ptxt} | {kept} |")
    for fam, r in comparison["mean"].items():
        lines.append(f"| **mean** | {fam} | {r['miou_cost']:.2f} | {r['group_recall']:.1f} | "
                     f"{r['group_recall_gain']:+.1f} | {r['gap_to_single_curve']:+.2f} | | {r['promises_kept'] or '-'} |")
    return "\n".join(lines) + "\n"
