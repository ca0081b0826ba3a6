"""What calibration reports: the before/after page, the recall-precision trade-off curves and
plot, and the files `iaseg calibrate` writes next to the rule."""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from iaseg.io import atomic_write_bytes
from iaseg.metrics.confusion import class_metrics
from iaseg.metrics.tables import pct

from .cache import CalibrationData, confusion_from_cache, flip_thresholds, sweep_confusions
from .rule import DecisionRule
from .search import CalibrationResult
from .targets import Target

def before_after_markdown(before: dict[str, Any], after: dict[str, Any], rule: DecisionRule,
                          result: CalibrationResult | None = None) -> str:
    """A markdown page: targets (before/after), offsets, and precision/recall/IoU per class,
    per group and mean, before (plain argmax) and after (the rule). `before`/`after` are report
    dicts as `iaseg.metrics.build_report` returns them."""
    lines = ["# Decision rule: before (argmax) and after (argmax of logits + b)", ""]
    if result is not None:
        lines += ["| target | before | after | met |", "|---|---:|---:|:---:|"]
        for s in result.status:
            lines.append(f"| `{s['target']}` | {pct(s['before'])} | {pct(s['after'])} | "
                         f"{'yes' if s['met'] else 'NO'} |")
        lines += ["", f"Objective {result.objective.label}: {pct(result.objective_before)} -> "
                      f"{pct(result.objective_after)}", ""]
    lines += ["| class | offset b |", "|---|---:|"]
    lines += [f"| {c} | {v:+.4f} |" for c, v in zip(rule.class_names, rule.offsets.tolist())]
    lines += ["", "| | P before | P after | R before | R after | IoU before | IoU after |",
              "|---|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, x: dict[str, Any], y: dict[str, Any]) -> str:
        cells = [f"{pct(x.get(m))} | {pct(y.get(m))}" for m in ("precision", "recall", "iou")]
        return f"| {name} | " + " | ".join(cells) + " |"

    for name in before.get("per_class", {}):
        lines.append(row(name, before["per_class"][name], after["per_class"].get(name, {})))
    for name in before.get("groups", {}):
        lines.append(row(f"**{name}**", before["groups"][name], after["groups"].get(name, {})))
    lines.append(row("**mean**", before.get("mean", {}), after.get("mean", {})))
    lines += ["", "Values in %. Calibrated on the split named in the rule: report the effect on a "
                  "held-out split (`iaseg evaluate --decision-rule`)."]
    return "\n".join(lines) + "\n"


def tradeoff_curves(data: CalibrationData, offsets: torch.Tensor, classes: Sequence[int],
                    points: int = 121) -> dict[int, dict[str, torch.Tensor]]:
    """For each class k: candidate values of b_k (the others fixed) and the resulting recall and
    precision of k. The values are quantiles of the flip thresholds of the pixels labelled k (so
    recall moves evenly from 0 to 1) and of all pixels, plus the rule's own b_k: the curve
    covers the whole trade-off whatever the scale of the logits."""
    q = torch.linspace(0, 1, points, dtype=torch.float64)
    values = {}
    for k in classes:
        t, y = flip_thresholds(data, offsets, k)
        finite = torch.isfinite(t)
        t, y = t[finite].double(), y[finite]
        parts = [offsets[k].view(1).double()]
        for sample in (t, t[y == k]):
            if sample.numel():
                qs = torch.quantile(sample, q)
                pad = max(float(qs[-1] - qs[0]) * 0.02, 1e-6)  # just past both ends: recall 0 and 1
                parts.append(torch.cat([qs[:1] - pad, qs, qs[-1:] + pad]))
        values[k] = torch.unique(torch.cat(parts)).float()
    sweeps = sweep_confusions(data, offsets, classes, values)
    out = {}
    for k in classes:
        m = class_metrics(sweeps[k])
        out[k] = {"offset": values[k], "recall": m["recall"][:, k], "precision": m["precision"][:, k]}
    return out


def tradeoff_plot(data: CalibrationData, rule: DecisionRule, classes: Sequence[int], path: str | Path,
                  before: torch.Tensor | None = None, targets: Sequence[Target] = ()) -> Path:
    """PNG: per class, recall (x) vs precision (y) as its offset sweeps with the others at the
    rule; the rule's operating point (and plain argmax's, if `before` is given) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.lines
    import matplotlib.pyplot as plt

    curves = tradeoff_curves(data, rule.offsets, classes)
    chosen = class_metrics(confusion_from_cache(data, rule.offsets))
    plain = class_metrics(before) if before is not None else None
    n = len(classes)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows + 0.4), squeeze=False)
    for ax, k in zip(axes.flat, classes):
        name = rule.class_names[k]
        cur = curves[k]
        ax.plot(cur["recall"].numpy(), cur["precision"].numpy(), "-", color="tab:blue", lw=1.5,
                label="sweep of b")
        ax.plot([float(chosen["recall"][k])], [float(chosen["precision"][k])], "o", color="tab:red",
                ms=7, label="rule")
        if plain is not None:
            ax.plot([float(plain["recall"][k])], [float(plain["precision"][k])], "x", color="black",
                    ms=7, label="argmax")
        for t in targets:
            if t.quantity.classes == (k,) and t.quantity.metric in ("recall", "precision"):
                draw = ax.axvline if t.quantity.metric == "recall" else ax.axhline
                draw(t.value, ls="--", color="gray", lw=1)
        ax.set_title(f"{name} (b = {float(rule.offsets[k]):+.2f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if any(t.quantity.classes in [(k,) for k in classes] for t in targets):
        handles.append(matplotlib.lines.Line2D([], [], ls="--", color="gray", lw=1))
        labels.append("target")
    fig.suptitle("recall vs precision as one class's offset sweeps (the others at the rule)", fontsize=10)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def write_calibration_outputs(rule: DecisionRule, result: CalibrationResult, data: CalibrationData,
                              description: Any, out: str | Path) -> list[Path]:
    """RULE.json, RULE.md (before/after tables) and RULE.png (trade-off curves of the most
    important group's classes)."""
    from iaseg.metrics.report import build_report

    out = Path(out)
    groups = {k: list(v) for k, v in description.groups.items()}
    classes = list(description.classes)
    before = build_report(result.before, classes, groups, meta={"decision_rule": None})
    after = build_report(result.after, classes, groups, meta={"decision_rule": rule.to_dict()})
    md = out.with_suffix(".md")
    png = out.with_suffix(".png")
    rule.save(out)
    atomic_write_bytes(md, before_after_markdown(before, after, rule, result).encode())
    top = [classes.index(c) for c in list(description.groups.values())[-1]]
    tradeoff_plot(data, rule, top, png, before=result.before, targets=result.targets)
    return [out, md, png]
