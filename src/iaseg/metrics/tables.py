"""Markdown tables in the paper's layouts (Table II: per class under group headings; Table V:
group means), and the cell formats shared by reports, comparisons and figures."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .confusion import METRICS

LABELS = {"precision": "Precision", "recall": "Recall", "iou": "IoU"}


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def pct(v: Any) -> str:
    """A fraction as a percentage with one decimal; '-' when undefined."""
    v = _num(v)
    return "-" if math.isnan(v) else f"{100 * v:.1f}"


def delta_pct(d: Any) -> str:
    """A difference of fractions in percentage points, signed and bold when it shows."""
    d = _num(d)
    if math.isnan(d):
        return "-"
    text = f"{100 * d:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else f"**{text}**"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def format_table_md(header: Sequence[Any], rows: Sequence[Sequence[Any]], label_columns: int = 1) -> str:
    """A Markdown pipe table with `header` as its first row: the first `label_columns` columns
    left-aligned, the values right-aligned."""
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError("every row of a table needs as many cells as the header")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join(":---" if i < label_columns else "---:" for i in range(n)) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def display_groups(classes: Sequence[str], groups: Mapping[str, Sequence[str]] | None) -> list[tuple[str, list[str]]]:
    """Groups in display order, most important first (the paper's G3 G2 G1), classes in group
    order; classes in no group come last under '(other)'."""
    groups = groups or {}
    ordered = [(str(g), [c for c in members]) for g, members in reversed(list(groups.items()))]
    grouped = {c for _, members in ordered for c in members}
    rest = [c for c in classes if c not in grouped]
    if rest:
        ordered.append(("(other)" if ordered else "", rest))
    return ordered


Block = tuple[str, Sequence[tuple[str, Mapping[str, str]]]]


def format_table2_md(column_groups: Sequence[tuple[str, Sequence[str]]], blocks: Sequence[Block]) -> str:
    """The paper's Table II layout: a group row, a class row, then metric rows.

    `column_groups`: [(group name, [class, ...])] in display order. `blocks`: [(block label,
    [(row label, {class: cell text})])]; a block label (e.g. the run name) adds a first column,
    an empty one keeps a single label column (a single run).
    """
    labelled = any(label for label, _ in blocks)
    lead = 2 if labelled else 1
    classes = [c for _, members in column_groups for c in members]
    group_row = ["Group"] + [""] * (lead - 1)
    for g, members in column_groups:
        group_row += [g] + [""] * (len(members) - 1)
    rows = [["Class"] + [""] * (lead - 1) + list(classes)]
    for label, metric_rows in blocks:
        for i, (row_label, cells) in enumerate(metric_rows):
            head = ([label if i == 0 else ""] if labelled else []) + [row_label]
            rows.append(head + [cells.get(c, "") for c in classes])
    return format_table_md(group_row, rows, label_columns=lead)


def format_table5_md(group_names: Sequence[str], blocks: Sequence[Block]) -> str:
    """The paper's Table V layout: one column per group (display order) plus Mean; rows as in
    `format_table2_md` with cells keyed by group name and 'Mean'."""
    labelled = any(label for label, _ in blocks)
    header = ["Group"] + ([""] if labelled else []) + list(group_names) + ["Mean"]
    rows = []
    for label, metric_rows in blocks:
        for i, (row_label, cells) in enumerate(metric_rows):
            head = ([label if i == 0 else ""] if labelled else []) + [row_label]
            rows.append(head + [cells.get(g, "") for g in list(group_names) + ["Mean"]])
    return format_table_md(header, rows, label_columns=2 if labelled else 1)


def report_blocks(report: Mapping[str, Any], label: str = "") -> tuple[Block, Block]:
    """Table II and Table V blocks (percent, one decimal) of one report."""
    t2 = [(LABELS[k], {c: pct(v[k]) for c, v in report["per_class"].items()}) for k in METRICS]
    t5 = [(LABELS[k], {**{g: pct(v[k]) for g, v in report["groups"].items()}, "Mean": pct(report["mean"][k])})
          for k in METRICS]
    return (label, t2), (label, t5)


def group_members(report: Mapping[str, Any]) -> dict[str, list[str]] | None:
    groups = (report.get("meta") or {}).get("groups")
    return {str(g): list(m) for g, m in groups.items()} if isinstance(groups, Mapping) else None
