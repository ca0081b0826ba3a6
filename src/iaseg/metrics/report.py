"""Reports in the paper's format: per-class precision / recall / IoU, importance-group means
(Table V: the mean of the per-class values in the group) and overall means over classes.

report.json schema (fractions in [0, 1]; NaN written as null):
    {"per_class": {class: {"precision", "recall", "iou"}},   # class id order
     "groups": {group: {"precision", "recall", "iou"}},      # least -> most important
     "mean": {"precision", "recall", "iou"},                 # over all classes, NaN-aware
     "confusion_matrix": [[int]],                            # rows = ground truth, cols = prediction
     "meta": {"classes": [...], "groups": {group: [class, ...]}, "pixels": int, ...}}
"""
from __future__ import annotations

import csv
import io
import json
import math
import shlex
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from iaseg.io import atomic_write_bytes, json_safe

from .confusion import METRICS, class_metrics
from .figures import plot_confusion_matrix
from .tables import _num, display_groups, format_table2_md, format_table5_md, group_members, pct, report_blocks

class ReportError(ValueError):
    """A report file is missing or malformed; the message names it."""


class UndefinedMetricWarning(UserWarning):
    """Some per-class values are undefined (0/0) and were left out of the means."""


# -- numbers ------------------------------------------------------------------------------------

def nan_mean(values: Any) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN) values, NaN where none is defined; the
    one NaN-aware mean of the reports, for one vector or a batch (... x K -> ...). Summed in
    index order, so a batch gives the same bits as its rows one at a time."""
    v = np.asarray(values, dtype=np.float64)
    total = np.zeros(v.shape[:-1])
    count = np.zeros(v.shape[:-1])
    for i in range(v.shape[-1]):
        defined = ~np.isnan(v[..., i])
        total += np.where(defined, v[..., i], 0.0)
        count += defined
    with np.errstate(invalid="ignore"):
        return total / count  # 0 / 0 -> NaN: nothing defined


def group_means(values: Mapping[str, Any], classes: Sequence[str],
                groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Group means and overall means of per-class values given as arrays (... x C, classes in
    `classes` order) per metric: {"groups": {group: {metric: ...}}, "mean": {metric: ...}}.
    A group's value is the NaN-aware mean of its classes' values (paper Table V); "mean" is over
    all classes, not over the group means."""
    index = {c: i for i, c in enumerate(classes)}
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    return {"groups": {g: {k: nan_mean(a[..., [index[c] for c in members]]) for k, a in arrays.items()}
                       for g, members in groups.items()},
            "mean": {k: nan_mean(a) for k, a in arrays.items()}}


def summarize(per_class: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]],
              warn: bool = True, _stacklevel: int = 2) -> dict[str, Any]:
    """Group means and overall means from per-class values, as in the paper's Table V.

    A group's value is the mean of its classes' values; "mean" is over all classes of
    `per_class` (not the mean of the group means). Undefined values (NaN or None) are left out
    of every mean, with an `UndefinedMetricWarning` naming them. Works on fractions or percent.
    Returns {"groups": {group: {metric: value}}, "mean": {metric: value}}.
    """
    unknown = sorted({c for members in groups.values() for c in members} - set(per_class))
    if unknown:
        raise ValueError(f"groups name classes that have no values: {unknown}")
    values = {c: {k: _num(v.get(k)) for k in METRICS} for c, v in per_class.items()}
    means = group_means({k: [v[k] for v in values.values()] for k in METRICS}, list(values), groups)
    out: dict[str, Any] = {"groups": {g: {k: float(x) for k, x in m.items()} for g, m in means["groups"].items()},
                           "mean": {k: float(x) for k, x in means["mean"].items()}}
    undefined = {k: [c for c, v in values.items() if math.isnan(v[k])] for k in METRICS}
    if warn and any(undefined.values()):
        detail = "; ".join(f"{k}: {', '.join(cs)}" for k, cs in undefined.items() if cs)
        warnings.warn(f"undefined per-class values (no ground-truth and/or no predicted pixels) left out of "
                      f"the means: {detail}", UndefinedMetricWarning, stacklevel=_stacklevel)
    return out


def confusion_metrics(matrices: Any, classes: Sequence[str],
                      groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Report metrics of a batch of confusion matrices (... x C x C): {"per_class": {metric:
    ... x C}, "groups": {group: {metric: ...}}, "mean": {metric: ...}}, computed as
    `build_report` does (`class_metrics`, then `group_means`)."""
    m = torch.as_tensor(np.asarray(matrices, dtype=np.float64))
    per_class = {k: v.numpy() for k, v in class_metrics(m).items()}
    means = group_means(per_class, classes, groups or {})
    return {"per_class": per_class, **means}


def build_report(matrix: Any, class_names: Sequence[str], groups: Mapping[str, Sequence[str]],
                 meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Turn a C x C confusion matrix (rows = ground truth, columns = prediction; tensor on any
    device, array or nested list) into a report dict (the report.json schema above).

    `groups` maps group names to class names, least to most important (e.g. G1, G2, G3).
    `meta` is copied into report["meta"], which also records the classes, the groups and the
    number of evaluated pixels.
    """
    m = torch.as_tensor(np.asarray(matrix) if isinstance(matrix, (list, tuple)) else matrix).detach().cpu()
    names = [str(c) for c in class_names]
    if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(names):
        raise ValueError(f"confusion matrix of shape {tuple(m.shape)} does not match {len(names)} class names")
    if (m.is_floating_point() and not torch.equal(m, m.round())) or bool((m < 0).any()):
        raise ValueError("a confusion matrix holds non-negative integer counts")
    if len(set(names)) != len(names):
        raise ValueError(f"class names are not unique: {names}")
    m = m.to(torch.int64)
    metrics = {k: v.tolist() for k, v in class_metrics(m).items()}
    per_class = {c: {k: metrics[k][i] for k in METRICS} for i, c in enumerate(names)}
    summary = summarize(per_class, groups, _stacklevel=3)  # the warning names build_report's caller
    return {
        "per_class": per_class,
        "groups": summary["groups"],
        "mean": summary["mean"],
        "confusion_matrix": m.tolist(),
        "meta": {**dict(meta or {}), "classes": names,
                 "groups": {str(g): [str(c) for c in members] for g, members in groups.items()},
                 "pixels": int(m.sum())},
    }


# -- JSON ---------------------------------------------------------------------------------------

def report_to_json(report: Mapping[str, Any]) -> str:
    """Strict JSON text (NaN -> null), indented, with one confusion-matrix row per line."""
    data = json_safe(report)
    rows = data.get("confusion_matrix")
    token = "\"@@confusion_matrix@@\""
    if rows is not None:
        data["confusion_matrix"] = token[1:-1]  # keeps the key's position
    text = json.dumps(data, indent=2, allow_nan=False)
    if rows is not None:
        body = ",\n".join("    " + json.dumps(r) for r in rows)
        text = text.replace(token, "[\n" + body + "\n  ]" if rows else "[]")
    return text + "\n"


def _restore_nan(report: dict[str, Any]) -> dict[str, Any]:
    report["per_class"] = {c: {k: _num(v.get(k)) for k in METRICS} for c, v in report["per_class"].items()}
    report["groups"] = {g: {k: _num(v.get(k)) for k in METRICS} for g, v in report["groups"].items()}
    report["mean"] = {k: _num(report["mean"].get(k)) for k in METRICS}
    return report


def find_report(path: str | Path) -> Path:
    """A report.json path, or a run folder holding `report.json`, `eval/report.json` or
    `eval_*/report.json` (the most recent one)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ReportError(f"{path}: no such report file or run folder")
    for candidate in (path / "report.json", path / "eval" / "report.json"):
        if candidate.is_file():
            return candidate
    evals = sorted(path.glob("eval_*/report.json"), key=lambda p: (p.stat().st_mtime, str(p)))
    if evals:
        return evals[-1]
    run = evaluate_command([path]) if (path / "best.pt").is_file() else "iaseg evaluate --checkpoint CKPT --out DIR"
    raise ReportError(f"{path}: no report.json, eval/report.json or eval_*/report.json (run `{run}` first)")


def evaluate_command(folders: Sequence[str | Path]) -> str:
    """The one shell command that evaluates run folders into their eval/ (where find_report looks)."""
    q = [shlex.quote(str(f)) for f in folders]
    if len(q) == 1:
        return f"iaseg evaluate --checkpoint {q[0]} --out {shlex.quote(str(Path(folders[0]) / 'eval'))}"
    return f'for r in {" ".join(q)}; do iaseg evaluate --checkpoint "$r" --out "$r/eval"; done'


def require_reports(paths: Sequence[str | Path]) -> None:
    """ReportError naming every run folder (with a best.pt) that has no report yet, and the one
    command that evaluates them all, when there are two or more (one is find_report's message)."""
    missing = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and (p / "best.pt").is_file():
            try:
                find_report(p)
            except ReportError:
                missing.append(p)
    if len(missing) > 1:
        raise ReportError(f"{len(missing)} run folders have no report yet ({', '.join(str(m) for m in missing)}): "
                          f"run `{evaluate_command(missing)}` first")


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report.json (or the report of a run folder, see `find_report`); null -> NaN."""
    file = find_report(path)
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{file}: not a readable JSON report ({e})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{file}: a report must be a JSON object")
    missing = [k for k in ("per_class", "groups", "mean") if not isinstance(data.get(k), dict)]
    if missing:
        raise ReportError(f"{file}: not an iaseg report (missing {missing})")
    data.setdefault("confusion_matrix", [])
    data.setdefault("meta", {})
    try:
        return _restore_nan(data)
    except (AttributeError, TypeError, ValueError) as e:
        raise ReportError(f"{file}: malformed metric values ({e})") from None


# -- Markdown -----------------------------------------------------------------------------------

def report_markdown(report: Mapping[str, Any], title: str = "Evaluation report") -> str:
    """report.md: metadata, the per-class table (Table II layout) and the group means (Table V)."""
    meta = dict(report.get("meta") or {})
    classes = list(report["per_class"])
    groups = group_members(report)
    t2, t5 = report_blocks(report)
    lines = [f"# {title}", ""]
    shown = {k: v for k, v in meta.items() if k not in ("classes", "groups") and v not in (None, "", [], {})}
    for k, v in shown.items():
        lines.append(f"- {k}: {v if not isinstance(v, (dict, list)) else json.dumps(json_safe(v))}")
    if groups:
        lines.append("- importance groups (least to most important): "
                     + "; ".join(f"{g} = {', '.join(m)}" for g, m in groups.items()))
    lines += ["", "## Per class (%)", "", format_table2_md(display_groups(classes, groups), [t2]), "",
              "## Group means (%)", "",
              "Group value = mean of the per-class values in the group (paper Table V); "
              "Mean = over all classes.", "",
              format_table5_md([g for g in reversed(list(report["groups"]))], [t5])]
    undefined = sorted({c for c, v in report["per_class"].items() for k in METRICS if math.isnan(_num(v[k]))},
                       key=classes.index)
    if undefined:
        lines += ["", f"'-' = undefined (no ground-truth and/or predicted pixels), left out of the means: "
                      f"{', '.join(undefined)}."]
    if report.get("boundary"):
        lines += ["", *boundary_markdown(report["boundary"])]
    return "\n".join(lines) + "\n"


def boundary_markdown(boundary: Mapping[str, Any]) -> list[str]:
    """The boundary section of report.md: boundary F-score (precision / recall / F) and trimap
    IoU per band width, per class, per group and the mean (%)."""
    f, t = boundary["boundary_f"], boundary["trimap_iou"]
    widths = list(t["widths"])
    lines = ["## Boundaries (%)", "",
             f"Boundary F-score (Csurka et al. 2013): predicted vs ground-truth class boundaries matched within "
             f"{f['meta']['tolerance']} ({', '.join(str(v) for v in f['meta']['tolerance_px'])} px here), "
             f"{f['meta']['aggregation']}. Trimap IoU: IoU over the pixels within d px of a ground-truth boundary.", "",
             "| | boundary P | boundary R | boundary F | " + " | ".join(f"trimap IoU d={d}" for d in widths) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(widths)]

    def row(name: str, fv: Mapping[str, Any], tv: Sequence[Any]) -> str:
        cells = [pct(fv.get(k)) for k in ("precision", "recall", "f")] + [pct(v) for v in tv]
        return f"| {name} | " + " | ".join(cells) + " |"

    for c, fv in f["per_class"].items():
        lines.append(row(c, fv, t["per_class"][c]))
    for g, fv in f["groups"].items():
        lines.append(row(f"**{g}**", fv, t["groups"][g]))
    lines.append(row("**mean**", f["mean"], t["mean"]))
    return lines


# -- CSV ----------------------------------------------------------------------------------------

def report_csv(report: Mapping[str, Any]) -> str:
    """One row per class, then one per group and the mean; fractions, empty = undefined."""
    groups = group_members(report) or {}
    group_of = {c: g for g, members in groups.items() for c in members}
    cm = np.asarray(report.get("confusion_matrix") or [], dtype=np.int64)
    classes = list(report["per_class"])
    has_counts = cm.shape == (len(classes), len(classes))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    b = report.get("boundary")
    widths = list(b["trimap_iou"]["widths"]) if b else []
    w.writerow(["kind", "name", "group", *METRICS, "gt_pixels", "predicted_pixels",
                *(["boundary_precision", "boundary_recall", "boundary_f"] if b else []),
                *(f"trimap_iou_{d}" for d in widths)])

    def num(v: Any) -> str:
        return "" if math.isnan(_num(v)) else repr(float(v))

    def vals(v: Mapping[str, Any]) -> list[str]:
        return [num(v[k]) for k in METRICS]

    def edge(section: str, name: str | None) -> list[str]:
        if not b:
            return []
        fv = b["boundary_f"][section] if name is None else b["boundary_f"][section][name]
        tv = b["trimap_iou"][section] if name is None else b["trimap_iou"][section][name]
        return [num(fv.get(k)) for k in ("precision", "recall", "f")] + [num(x) for x in tv]

    for i, (c, v) in enumerate(report["per_class"].items()):
        counts = [int(cm[i].sum()), int(cm[:, i].sum())] if has_counts else ["", ""]
        w.writerow(["class", c, group_of.get(c, ""), *vals(v), *counts, *edge("per_class", c)])
    for g, v in report["groups"].items():
        w.writerow(["group", g, g, *vals(v), "", "", *edge("groups", g)])
    w.writerow(["mean", "mean", "", *vals(report["mean"]), "", "", *edge("mean", None)])
    return buf.getvalue()


# -- files --------------------------------------------------------------------------------------

def write_report(report: Mapping[str, Any], out_dir: str | Path, title: str = "Evaluation report") -> dict[str, Path]:
    """Write report.json, report.md, report.csv and confusion_matrix.png (row-normalised) into
    `out_dir`, each atomically. Returns {"json", "md", "csv", "png"} -> path."""
    out = Path(out_dir)
    paths = {"json": out / "report.json", "md": out / "report.md", "csv": out / "report.csv",
             "png": out / "confusion_matrix.png"}
    atomic_write_bytes(paths["json"], report_to_json(report).encode())
    atomic_write_bytes(paths["md"], report_markdown(report, title).encode())
    atomic_write_bytes(paths["csv"], report_csv(report).encode())
    cm = report.get("confusion_matrix")
    if cm:
        plot_confusion_matrix(cm, list(report["per_class"]), paths["png"])
    else:
        del paths["png"]
    return paths
