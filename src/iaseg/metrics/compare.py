"""`iaseg compare A B --out DIR`: two runs side by side in the layout of the paper's Tables II and
V, with deltas B - A, a per-class recall/precision bar chart and, given the two checkpoints and a
dataset, a Fig. 7-style overlay (ground truth vs A vs B for the most important group)."""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .confusion import METRICS
from .report import ReportError, find_report, load_report, report_to_json, summarize
from .tables import (LABELS, _num, delta_pct, display_groups, format_table2_md, format_table5_md, group_members,
                     pct)


class OverlayUnavailable(RuntimeError):
    """The overlay cannot be drawn for these checkpoints (the message says why)."""


# -- comparison of two reports ------------------------------------------------------------------

def _triple(a: Any, b: Any) -> dict[str, float]:
    a, b = _num(a), _num(b)
    return {"a": a, "b": b, "delta": b - a}


def default_name(source: str | Path) -> str:
    """A run's name from its path: the run folder (runs/ce/eval/report.json -> 'ce')."""
    p = Path(source)
    if p.suffix == ".json":
        p = p.parent
    if p.name == "eval" or p.name.startswith("eval_"):
        p = p.parent
    return p.name or str(source)


def _change(what: str, a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b):
        return f"{what} is undefined ({pct(a)} -> {pct(b)})"
    d = f"{100 * (b - a):+.1f}"
    if d in ("+0.0", "-0.0"):
        return f"left {what} unchanged at {pct(a)}%"
    verb = "raised" if b > a else "lowered"
    return f"{verb} {what} from {pct(a)}% to {pct(b)}% ({d} points)"


def summary_line(comparison: Mapping[str, Any]) -> str:
    """'B raised G3 recall from x% to y% (...) and ... G3 precision ...; mean IoU changed by z points'."""
    name_b = comparison["names"][1]
    groups = comparison["groups"]
    parts = []
    if groups:
        top = list(groups)[-1]
        g = groups[top]
        parts.append(f"{_change(f'{top} recall', g['recall']['a'], g['recall']['b'])} and "
                      f"{_change(f'{top} precision', g['precision']['a'], g['precision']['b'])}")
    m = comparison["mean"]["iou"]
    if math.isnan(m["delta"]):
        parts.append("mean IoU is undefined")
    else:
        parts.append(f"mean IoU changed by {100 * m['delta']:+.1f} points ({pct(m['a'])}% -> {pct(m['b'])}%)")
    return f"{name_b} " + "; ".join(parts) + "."


def _resolve(report: Mapping[str, Any] | str | Path) -> tuple[dict[str, Any], str | None]:
    if isinstance(report, (str, Path)):
        return load_report(report), str(find_report(report))
    return dict(report), None


def comparison_dict(report_a: Mapping[str, Any], report_b: Mapping[str, Any],
                    names: Sequence[str] = ("A", "B")) -> dict[str, Any]:
    """Per-class, per-group and mean values of two reports with deltas B - A (fractions).

    Both reports must have the same classes in the same order. Group means use A's groups; when
    B was scored with other groups, B's group means are recomputed with A's (noted in 'notes')."""
    names = [str(n) for n in names]
    if len(names) != 2:
        raise ValueError("names must be two strings")
    if names[0] == names[1]:
        names = [f"{names[0]} (A)", f"{names[1]} (B)"]
    ca, cb = list(report_a["per_class"]), list(report_b["per_class"])
    if ca != cb:
        raise ValueError(f"the reports have different classes: {names[0]} {ca} vs {names[1]} {cb}")
    ga, gb = group_members(report_a), group_members(report_b)
    groups = ga or gb
    notes = []
    summaries = []
    for name, rep, own in ((names[0], report_a, ga), (names[1], report_b, gb)):
        if groups and own != groups:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                summaries.append(summarize(rep["per_class"], groups))
            notes.append(f"{name}'s group means were recomputed with the groups {groups}")
        else:
            summaries.append({"groups": rep["groups"], "mean": rep["mean"]})
    sa, sb = summaries
    group_names = list(groups) if groups else [g for g in sa["groups"] if g in sb["groups"]]
    comparison = {
        "names": names,
        "classes": ca,
        "group_members": groups or {},
        "per_class": {c: {k: _triple(report_a["per_class"][c][k], report_b["per_class"][c][k]) for k in METRICS}
                      for c in ca},
        "groups": {g: {k: _triple(sa["groups"][g][k], sb["groups"][g][k]) for k in METRICS} for g in group_names},
        "mean": {k: _triple(sa["mean"][k], sb["mean"][k]) for k in METRICS},
        "notes": notes,
    }
    comparison["summary"] = summary_line(comparison)
    return comparison


def comparison_markdown(comparison: Mapping[str, Any]) -> str:
    """The two tables: per class (Table II layout) and group means (Table V layout), each with
    rows for A, B and the bold signed delta B - A, in percent."""
    a, b = comparison["names"]
    delta = f"Δ ({b} − {a})"
    per_class, groups = comparison["per_class"], comparison["groups"]

    def block2(label: str, key: str, fmt: Any) -> tuple[str, list]:
        return label, [(LABELS[k], {c: fmt(v[k][key]) for c, v in per_class.items()}) for k in METRICS]

    def block5(label: str, key: str, fmt: Any) -> tuple[str, list]:
        return label, [(LABELS[k], {**{g: fmt(v[k][key]) for g, v in groups.items()},
                                    "Mean": fmt(comparison["mean"][k][key])}) for k in METRICS]

    cols = display_groups(comparison["classes"], comparison["group_members"] or None)
    t2 = format_table2_md(cols, [block2(a, "a", pct), block2(b, "b", pct), block2(delta, "delta", delta_pct)])
    t5 = format_table5_md(list(reversed(list(groups))),
                          [block5(a, "a", pct), block5(b, "b", pct), block5(delta, "delta", delta_pct)])
    return "\n".join(["## Per class (%)", "", t2, "", "## Group means (%)", "",
                      "Group value = mean of the per-class values in the group (paper Table V); "
                      "Mean = over all classes. Deltas in percentage points.", "", t5]) + "\n"


def compare_reports(report_a: Mapping[str, Any] | str | Path, report_b: Mapping[str, Any] | str | Path,
                    names: Sequence[str] | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Compare two reports (dicts, report.json files or run folders).

    Returns {"comparison": the comparison.json dict, "summary": one plain-language line,
    "markdown": the two tables, "files": {name: path}, "figures": [png paths], "reports": (A, B) as
    loaded}. With `out_dir`,
    writes comparison.md, comparison.json and comparison_bars.png there.
    """
    from iaseg.io import atomic_write_bytes

    from .figures import plot_class_bars

    (ra, src_a), (rb, src_b) = _resolve(report_a), _resolve(report_b)
    if names is None:
        names = [default_name(s) if s else d for s, d in ((src_a, "A"), (src_b, "B"))]
    comparison = comparison_dict(ra, rb, names)
    comparison["sources"] = [src_a, src_b]
    markdown = comparison_markdown(comparison)
    result: dict[str, Any] = {"comparison": comparison, "summary": comparison["summary"], "markdown": markdown,
                              "files": {}, "figures": [], "reports": (ra, rb)}
    if out_dir is not None:
        out = Path(out_dir)
        bars = plot_class_bars({comparison["names"][0]: ra, comparison["names"][1]: rb}, out / "comparison_bars.png",
                               title=f"Per-class recall and precision: {comparison['names'][0]} vs "
                                     f"{comparison['names'][1]}")
        result["figures"].append(bars)
        result["files"]["png"] = bars
        result["files"]["json"] = out / "comparison.json"
        atomic_write_bytes(result["files"]["json"], report_to_json(comparison).encode())
        write_comparison_md(result, out)
        result["files"] = {k: result["files"][k] for k in ("md", "json", "png")}
    return result


def write_comparison_md(result: dict[str, Any], out_dir: str | Path) -> Path:
    """(Re)write comparison.md from a `compare_reports` result, linking its figures."""
    from iaseg.io import atomic_write_bytes

    comparison = result["comparison"]
    a, b = comparison["names"]
    lines = [f"# Comparison: {a} vs {b}", "", f"**{comparison['summary']}**", ""]
    for name, src in zip(comparison["names"], comparison.get("sources") or [None, None]):
        if src:
            lines.append(f"- {name}: `{src}`")
    if comparison["group_members"]:
        lines.append("- importance groups (least to most important): "
                     + "; ".join(f"{g} = {', '.join(m)}" for g, m in comparison["group_members"].items()))
    lines += [f"- note: {n}" for n in comparison["notes"]]
    lines += ["", result["markdown"]]
    for fig in result["figures"]:
        lines += [f"![{Path(fig).stem}]({Path(fig).name})", ""]
    path = Path(out_dir) / "comparison.md"
    atomic_write_bytes(path, ("\n".join(lines).rstrip() + "\n").encode())
    result["files"]["md"] = path
    return path


# -- Fig. 7-style overlay from two checkpoints --------------------------------------------------

def _to_uint8(image: Any) -> np.ndarray:
    x = np.asarray(image.detach().cpu().float() if hasattr(image, "detach") else image, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] == 3:
        x = x.transpose(1, 2, 0)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:  # normalised input: stretch for display
        x = (x - lo) / max(hi - lo, 1e-6)
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _predict(model: Any, image: Any, size: tuple[int, int], device: Any) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = image[None].float().to(device)
    hw = tuple(x.shape[-2:])
    if hw != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = model(x)
    if tuple(logits.shape[-2:]) != hw:
        logits = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].cpu().numpy()


def overlay_from_checkpoints(checkpoints: Sequence[str | Path], names: Sequence[str], out_png: str | Path,
                             dataset: str | None = None, root: str | Path | None = None, split: str = "val",
                             images: int = 4, device: str = "cpu") -> Path:
    """Run both checkpoints on `images` images of a split, spread over it, that contain the most
    important group and draw `importance_overlay` panels into one PNG. Raises OverlayUnavailable
    for two-input models (BiERF-PSPNet) or when no dataset loader is available."""
    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.models import TWO_INPUT_MODELS

    from .figures import importance_overlay, plot_overlays

    loaded = [model_from_checkpoint(c, device=device) for c in checkpoints]
    for path, (_, meta) in zip(checkpoints, loaded):
        if meta["model_name"] in TWO_INPUT_MODELS:
            raise OverlayUnavailable(f"{path} is a two-input {meta['model_name']} model; the overlay supports "
                                     "single-input models (erfpspnet) only")
    desc = loaded[0][1]["description"]
    if loaded[1][1]["description"].classes != desc.classes:
        raise ValueError(f"{checkpoints[0]} and {checkpoints[1]} were trained on different classes")
    data = ((loaded[0][1]["checkpoint"].get("config") or {}).get("data") or {})
    name = dataset or data.get("dataset") or desc.name
    same = name == data.get("dataset")
    root = root if root is not None else (data.get("root") if same else None)
    if root is None:
        raise ValueError("the overlay needs the dataset folder: give --root")
    options = dict(data.get("options") or {}) if same else {}
    try:
        from iaseg.data import build_dataset
    except ImportError:
        raise OverlayUnavailable("this iaseg installation has no dataset loaders (iaseg.data.build_dataset)") from None
    size = tuple(loaded[0][1]["input_size"])
    ds = build_dataset(name, root, split, size=size, **options)
    top_group = list(desc.groups)[-1]
    top_ids = desc.group_indices()[-1]
    # Images spread over the split (consecutive video frames look alike): scan up to 10 per
    # wanted image at even spacing, keep those showing the group, then pick evenly among them.
    scan = sorted({int(round(v)) for v in np.linspace(0, len(ds) - 1, min(len(ds), 10 * images))}) if len(ds) else []
    showing, spare = [], []
    for i in scan:
        item = ds[i]
        frac = float(np.isin(np.asarray(item["label"]), top_ids).mean())
        (showing if frac >= 0.005 else spare).append(item)
    if len(showing) > images:
        showing = [showing[int(round(v))] for v in np.linspace(0, len(showing) - 1, images)]
    chosen = (showing + spare)[:images]
    if not chosen:
        raise ValueError(f"dataset {name!r} split {split!r} at {root} has no images")
    panels = []
    for item in chosen:
        gt = np.asarray(item["label"])
        preds = [_predict(m, item["image"], tuple(meta["input_size"]), device) for m, meta in loaded]
        region = np.isin(gt, top_ids)
        scores = [f"{100 * float((p[region] == gt[region]).mean()):.0f}%" if region.any() else "-" for p in preds]
        caption = (f"{Path(str(item.get('path', ''))).name}: {top_group} pixels correct "
                   f"{names[0]} {scores[0]}, {names[1]} {scores[1]}")
        panels.append((importance_overlay(_to_uint8(item["image"]), gt, preds[0], preds[1], top_ids), caption))
    return plot_overlays(panels, out_png, (names[0], names[1]), top_group)


# -- CLI ----------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="first run: a report.json or a run folder (report.json, eval/report.json)")
    p.add_argument("b", metavar="B", help="second run, compared against A (deltas are B - A)")
    p.add_argument("--out", required=True, help="output folder for comparison.md/.json and the figures")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), help="display names (default: run folder names)")
    p.add_argument("--checkpoints", nargs=2, metavar=("CKPT_A", "CKPT_B"),
                   help="checkpoints of A and B: adds a Fig. 7-style overlay of the most important group")
    p.add_argument("--dataset", help="dataset for the overlay (default: the one A was trained on)")
    p.add_argument("--root", help="dataset folder for the overlay (default: A's training root)")
    p.add_argument("--split", default="val", help="split for the overlay (default: val)")
    p.add_argument("--images", type=int, default=4, help="number of overlay images (default: 4)")
    p.add_argument("--device", default="cpu", help="device for the overlay's forward passes (default: cpu)")
    p.add_argument("--paper", metavar="DATASET",
                   help="add the paper's published CE and IAL results (camvid: Table II, cityscapes: Tables "
                        "III-IV) next to ours; A must be the CE run and B the IAL run")


def run(args: argparse.Namespace) -> int:
    from iaseg.checkpoint import CheckpointError
    from iaseg.cli import CLIError

    if not args.checkpoints and (args.dataset or args.root):
        raise CLIError("--dataset/--root are for the overlay and need --checkpoints CKPT_A CKPT_B")
    if args.images < 1:
        raise CLIError(f"--images must be >= 1, got {args.images}")
    try:
        result = compare_reports(args.a, args.b, args.names, args.out)
    except (ReportError, ValueError) as e:
        raise CLIError(str(e)) from None
    names = result["comparison"]["names"]
    extended = False  # comparison.md is rewritten once, after every addition
    if args.paper:
        from .paper import paper_vs_ours_markdown

        try:
            extra = paper_vs_ours_markdown(args.paper, dict(zip(("CE", "IAL"), result["reports"])))
        except ValueError as e:
            raise CLIError(f"--paper: {e}") from None
        result["markdown"] += "\n## Paper vs ours\n\n" + extra
        extended = True
    runs = [Path(x) for x in (args.a, args.b)]
    if all((r / "metrics.jsonl").is_file() for r in runs):
        from .figures import plot_curves_comparison

        fig = plot_curves_comparison(dict(zip(names, runs)), Path(args.out) / "curves.png")
        result["figures"].append(fig)
        result["files"]["curves"] = fig
        extended = True
    if args.checkpoints:
        try:
            fig = overlay_from_checkpoints(args.checkpoints, names, Path(args.out) / "overlay.png",
                                           dataset=args.dataset, root=args.root, split=args.split,
                                           images=args.images, device=args.device)
        except OverlayUnavailable as e:
            print(f"iaseg compare: overlay skipped: {e}", file=sys.stderr)
        except (CheckpointError, ValueError, FileNotFoundError, KeyError) as e:
            if extended:
                write_comparison_md(result, args.out)
            raise CLIError(f"overlay: {e}") from None
        else:
            result["figures"].append(fig)
            result["files"]["overlay"] = fig
            extended = True
    if extended:
        write_comparison_md(result, args.out)
    print(result["summary"])
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0
