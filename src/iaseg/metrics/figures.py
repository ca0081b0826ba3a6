"""Figures: confusion matrix, per-class bar charts, training curves and the Fig. 7-style
importance overlay. Matplotlib is used through `matplotlib.figure.Figure` (Agg canvas, no pyplot,
no display, no global backend change); PNGs are written atomically."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .tables import LABELS, display_groups, group_members

# One colour per method in every figure of a comparison (bars, curves, overlays, seeds,
# frontiers): the first two are the paper's Fig. 7 yellow (CE) and red (IAL).
METHOD_COLORS = ("#f2b705", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b")


def method_color(i: int) -> str:
    """The colour of the i-th method of a comparison, the same in every figure."""
    return METHOD_COLORS[i % len(METHOD_COLORS)]


def method_rgb(i: int) -> tuple[int, int, int]:
    """`method_color(i)` as 0-255 RGB (for drawing into images)."""
    h = method_color(i).lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


# Paper Fig. 7: blue = ground truth, then model A (cross-entropy) and model B (IAL) in their
# method colours.
GT_COLOR = (30, 110, 255)
A_COLOR = method_rgb(0)
B_COLOR = method_rgb(1)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, out_png: str | Path) -> Path:
    from iaseg.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = Path(out_png)
    atomic_write_bytes(out, buf.getvalue())
    return out


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str], out_png: str | Path,
                          title: str = "Confusion matrix (row-normalised: each row sums to 100%)") -> Path:
    """Row-normalised confusion matrix (rows = ground truth, columns = prediction) with class
    names on both axes; cells in percent (rows without ground truth stay empty)."""
    m = np.asarray(matrix, dtype=np.float64)
    c = len(class_names)
    if m.shape != (c, c):
        raise ValueError(f"confusion matrix of shape {m.shape} does not match {c} class names")
    rows = m.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, m / rows, np.nan)
    size = max(4.5, 0.45 * c + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(norm * 100, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(c), labels=list(class_names), rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(c), labels=list(class_names))
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=10)
    if c <= 25:
        for i in range(c):
            for j in range(c):
                v = norm[i, j]
                if not math.isnan(v) and v >= 0.005:
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the row's ground-truth pixels")
    return _save(fig, out_png)


def _importance_order(report: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    classes = list(report["per_class"])
    groups = display_groups(classes, group_members(report))
    return [c for _, members in groups for c in members], groups


def _percent(node: Mapping[str, Any], key: str) -> float:
    v = node.get(key) if isinstance(node, Mapping) else None
    return 100 * float("nan" if v is None else v)


def _bars(ax: Any, labels: Sequence[str], values: Sequence[Sequence[float]], names: Sequence[str],
          colors: Sequence[str], hatched: Sequence[bool]) -> None:
    """One bar per series at each label: solid, or hatched on a light fill of the same colour."""
    from matplotlib.colors import to_rgba

    n = len(names)
    width = 0.8 / n
    x = np.arange(len(labels))
    for k, (name, vals) in enumerate(zip(names, values)):
        style = ({"color": to_rgba(colors[k], 0.3), "edgecolor": colors[k], "hatch": "///", "lw": 0.6}
                 if hatched[k] else {"color": colors[k]})
        ax.bar(x + (k - (n - 1) / 2) * width, vals, width, label=name, **style)
    ax.set_ylim(0, 110)
    ax.set_xticks(x, labels=list(labels), rotation=45, ha="right", rotation_mode="anchor")
    ax.grid(axis="y", alpha=0.3)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def plot_class_bars(reports: Mapping[str, Mapping[str, Any]], out_png: str | Path,
                    metrics: Sequence[str] = ("recall", "precision"), title: str | None = None,
                    colors: Sequence[str] | None = None, hatched: Iterable[str] = (),
                    group_means: bool = False) -> Path:
    """Grouped bar chart of per-class values (one panel per metric, one bar per run), classes
    ordered by importance group, most important first. `reports`: {run name: report}.

    `colors`: one per run (default: `method_color` in order); runs named in `hatched` are drawn
    hatched on a light fill (e.g. published numbers beside one's own, in the method's colour);
    `group_means` adds a panel per metric with the group means and the mean over classes."""
    if not reports:
        raise ValueError("plot_class_bars needs at least one report")
    first = next(iter(reports.values()))
    classes, groups = _importance_order(first)
    names = list(reports)
    n = len(names)
    colors = list(colors) if colors is not None else [method_color(k) for k in range(n)]
    if len(colors) != n:
        raise ValueError(f"plot_class_bars: {len(colors)} colours for {n} runs")
    hatched = set(hatched)
    hatch = [name in hatched for name in names]
    columns = [g for g, _ in groups] + ["Mean"]
    width = max(7.0, 0.6 * len(classes) * max(1, n / 2) + 2)
    ratios = [len(classes), 0.25 + len(columns)] if group_means else [1]
    fig = _figure(width * (sum(ratios) / ratios[0]), 2.8 * len(metrics) + 0.6)
    axes = fig.subplots(len(metrics), len(ratios), squeeze=False, width_ratios=ratios)
    for row, metric in zip(axes, metrics):
        ax = row[0]
        _bars(ax, classes, [[_percent(reports[name]["per_class"].get(c, {}), metric) for c in classes]
                            for name in names], names, colors, hatch)
        ax.set_ylabel(f"{LABELS.get(metric, metric)} (%)")
        start = 0
        for g, members in groups:  # separators and group names above the bars
            if start:
                ax.axvline(start - 0.5, color="0.5", lw=0.8, ls="--")
            ax.text(start + (len(members) - 1) / 2, 102, g, ha="center", va="bottom", fontsize=9, weight="bold")
            start += len(members)
        if group_means:
            _bars(row[1], columns, [[_percent(reports[name].get("groups", {}).get(g, {}), metric) for g in columns[:-1]]
                                    + [_percent(reports[name].get("mean", {}), metric)] for name in names],
                  names, colors, hatch)
            row[1].set_title("group means", fontsize=9)
    if title:
        fig.suptitle(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=9, ncols=min(n, 6))
    return _save(fig, out_png)


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbourhood binary erosion; pixels outside the image count as background."""
    p = np.pad(mask, 1, constant_values=False)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def boundary(mask: np.ndarray, thickness: int = 2) -> np.ndarray:
    """The inner boundary (`thickness` pixels wide) of a boolean mask."""
    inner = mask
    for _ in range(max(1, int(thickness))):
        inner = _erode(inner)
    return mask & ~inner


def importance_overlay(image: np.ndarray, gt: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                       class_ids: Iterable[int], alpha: float = 0.5, thickness: int = 2) -> np.ndarray:
    """Fig. 7-style overlay for one group of classes: the ground-truth region filled
    semi-transparent blue on the image, model A's predicted region outlined in yellow and model
    B's in red (B drawn last). Returns a new H x W x 3 uint8 array.

    image: H x W x 3 uint8; gt, pred_a, pred_b: H x W class ids; class_ids: the group's ids
    (membership in the group counts, not the exact class, as in the paper's figure).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    ids = np.asarray(sorted({int(i) for i in class_ids}), dtype=np.int64)
    masks = []
    for name, a in (("gt", gt), ("pred_a", pred_a), ("pred_b", pred_b)):
        a = np.asarray(a)
        if a.shape != image.shape[:2]:
            raise ValueError(f"{name} has shape {a.shape}, the image {image.shape[:2]}")
        masks.append(np.isin(a, ids))
    gt_mask, a_mask, b_mask = masks
    out = image.astype(np.float32)
    out[gt_mask] = (1 - alpha) * out[gt_mask] + alpha * np.asarray(GT_COLOR, np.float32)
    out[boundary(a_mask, thickness)] = A_COLOR
    out[boundary(b_mask, thickness)] = B_COLOR
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def plot_overlays(panels: Sequence[tuple[np.ndarray, str]], out_png: str | Path, names: tuple[str, str],
                  group: str, title: str | None = None) -> Path:
    """Stack `importance_overlay` images (with a caption each) into one PNG with a legend."""
    from matplotlib.patches import Patch

    if not panels:
        raise ValueError("plot_overlays needs at least one image")
    h, w = panels[0][0].shape[:2]
    cols = 1 if w >= h * 1.2 else 2
    rows = math.ceil(len(panels) / cols)
    pw = 7.0 if cols == 1 else 4.5
    fig = _figure(pw * cols, rows * pw * h / w + 1.0)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (img, caption) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(caption, fontsize=8)
    handles = [Patch(color=np.asarray(GT_COLOR) / 255, alpha=0.6, label=f"{group} ground truth"),
               Patch(facecolor="none", edgecolor=np.asarray(A_COLOR) / 255, lw=2, label=f"{names[0]}"),
               Patch(facecolor="none", edgecolor=np.asarray(B_COLOR) / 255, lw=2, label=f"{names[1]}")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    fig.suptitle(title or f"{group}: ground truth (blue) vs {names[0]} (yellow) vs {names[1]} (red)", fontsize=10)
    return _save(fig, out_png)


def plot_crops(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, str]], description: Any,
               out_png: str | Path, names: Sequence[str], title: str) -> Path:
    """Fig. 4-style crops, one row each: (image H x W x 3 uint8, label, model A, model B (H x W
    class ids, coloured with the dataset palette), where (left of the row), caption (under it))."""
    from iaseg.visualize import colorize

    if not rows:
        raise ValueError("plot_crops needs at least one crop")
    h, w = rows[0][0].shape[:2]
    pw = 2.6
    fig = _figure(4 * pw, len(rows) * (pw * h / w + 0.45) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(rows), 4, squeeze=False))
    heads = ["image", "label", *names]
    for r, (image, gt, pa, pb, where, caption) in enumerate(rows):
        panels = [image, *(colorize(x, description) for x in (gt, pa, pb))]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=9)
        axes[r, 0].set_ylabel(where, fontsize=6)
        axes[r, 2].set_xlabel(caption, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    return _save(fig, out_png)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def _metrics_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "metrics.jsonl" if path.is_dir() else path


def read_metrics_jsonl(jsonl_path: str | Path) -> list[dict[str, Any]]:
    """The records of a training run's metrics.jsonl (one JSON object per line, each with
    'epoch'); a truncated last line (interrupted write) is skipped."""
    path = _metrics_path(jsonl_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.jsonl")
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                break
            raise ValueError(f"{path}:{i}: not a JSON object") from None
        if not isinstance(rec, dict) or "epoch" not in rec:
            raise ValueError(f"{path}:{i}: a metrics record needs an 'epoch'")
        records.append(rec)
    if not records:
        raise ValueError(f"{path}: no epochs recorded yet")
    return records


def plot_training_curves(jsonl_path: str | Path, out_png: str | Path, title: str | None = None) -> Path:
    """Loss, validation IoU and validation recall per epoch (mean and each group) from a
    metrics.jsonl. Understands the trainer's records ({'epoch', 'train_loss', ..., 'val':
    {'mean': {...}, 'groups': {...}}}) and flat keys such as 'val/mean/iou' or 'val/G3/recall'."""
    records = read_metrics_jsonl(jsonl_path)
    series: dict[str, dict[str, list[tuple[float, float]]]] = {"loss": {}, "iou": {}, "recall": {}}
    for rec in records:
        epoch = float(rec["epoch"])
        for key, v in _flatten(rec).items():
            if isinstance(v, bool) or not isinstance(v, (int, float, type(None))):
                continue
            parts = key.split("/")
            value = math.nan if v is None else float(v)
            if parts[-1].endswith("loss") and len(parts) == 1:
                series["loss"].setdefault(key, []).append((epoch, value))
            elif parts[0] == "val" and parts[-1] in ("iou", "recall") and "per_class" not in parts:
                label = "mean" if parts[-2] == "mean" else parts[-2]
                series[parts[-1]].setdefault(label, []).append((epoch, 100 * value))
    fig = _figure(11, 3.6)
    axes = fig.subplots(1, 3)
    ylabels = {"loss": "loss", "iou": "val IoU (%)", "recall": "val recall (%)"}
    for ax, (kind, curves) in zip(axes, series.items()):
        ordered = sorted(curves, key=lambda k: (k != "mean", k))  # mean first, then G1, G2, ...
        for label in ordered:
            pts = curves[label]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, ms=3,
                    lw=2.2 if label == "mean" else 1.4, color="black" if label == "mean" else None, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabels[kind])
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="0.5")
    run = _metrics_path(jsonl_path).resolve().parent.name
    fig.suptitle(title or f"Training curves ({run})", fontsize=10)
    return _save(fig, out_png)


def plot_curves_comparison(runs: Mapping[str, str | Path], out_png: str | Path, group: str | None = None,
                           title: str | None = None) -> Path:
    """Several runs on shared axes: training loss, validation mean IoU and validation recall of
    `group` (default: the last, most important group of the first run) per epoch. `runs` maps a
    display name to a run folder or metrics.jsonl. Losses of different kinds (CE vs IAL) have
    different scales; the loss panel is for convergence, not for comparing values."""
    raw = {name: read_metrics_jsonl(path) for name, path in runs.items()}
    if group is None:
        first = next(iter(raw.values()))
        groups = next((list(r["val"]["groups"]) for r in first if isinstance(r.get("val"), Mapping)), [])
        group = groups[-1] if groups else None
    data = {name: [_flatten(r) for r in records] for name, records in raw.items()}
    fig = _figure(11, 3.6)
    axes = fig.subplots(1, 3)
    panels = [("train_loss", "training loss", None),
              ("val/mean/iou", "val mean IoU (%)", 100.0),
              (f"val/groups/{group}/recall", f"val {group} recall (%)", 100.0)]
    for ax, (key, ylabel, scale) in zip(axes, panels):
        for k, (name, records) in enumerate(data.items()):
            xs, ys = [], []
            for r in records:
                v = r.get(key)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v):
                    xs.append(float(r["epoch"]))
                    ys.append(float(v) * (scale or 1.0))
            ax.plot(xs, ys, lw=1.6, label=name, color=method_color(k))  # the method's colour in every figure
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Training curves: " + " vs ".join(data), fontsize=10)
    return _save(fig, out_png)
