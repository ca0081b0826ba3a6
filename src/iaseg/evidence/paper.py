"""The paper's published numbers (Tables II-V) as reports, and "paper vs ours" tables.

The values live in `paper_results.yaml` (data, not code). `paper_report("camvid", "IAL")` returns
a report dict shaped like `build_report`'s (fractions; per-class values in the dataset's class
order; group means recomputed from the per-class values) so it can go wherever a report goes,
for example `compare_reports`. `paper_table5` gives Table V as printed.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from iaseg.metrics.confusion import METRICS
from iaseg.metrics.report import summarize
from iaseg.metrics.tables import LABELS, _num, delta_pct, display_groups, format_table2_md, format_table5_md, pct

_FILE = Path(__file__).with_name("paper_results.yaml")
LOSSES = ("CE", "IAL")


@lru_cache(maxsize=None)
def _tables() -> dict[str, Any]:
    return yaml.safe_load(_FILE.read_text())


def _entry(dataset: str) -> dict[str, Any]:
    tables = _tables()
    if dataset not in tables:
        raise ValueError(f"no published results for dataset {dataset!r} (known: {', '.join(tables)})")
    return tables[dataset]


def paper_report(dataset: str, loss: str) -> dict[str, Any]:
    """Table II (CamVid) or III+IV (Cityscapes) values of `loss` ('CE' or 'IAL') as a report."""
    from iaseg.data import load_description

    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    entry = _entry(dataset)
    desc = load_description(dataset)
    column = {c: i for i, c in enumerate(entry["order"])}
    if set(column) != set(desc.classes):
        raise ValueError(f"paper_results.yaml: {dataset} classes {sorted(column)} != {sorted(desc.classes)}")
    per_class = {c: {k: entry[loss][k][column[c]] / 100 for k in METRICS} for c in desc.classes}
    groups = {g: list(m) for g, m in desc.groups.items()}
    summary = summarize(per_class, groups, warn=False)
    return {"per_class": per_class, "groups": summary["groups"], "mean": summary["mean"],
            "meta": {"classes": list(desc.classes), "groups": groups, "source": f"paper ({dataset}, {loss})",
                     "split": entry["split"], "model": entry["model"]}}


def paper_table5(dataset: str, loss: str) -> dict[str, dict[str, float]]:
    """Table V as printed: {group or 'Mean': {metric: fraction}}."""
    entry = _entry(dataset)
    from iaseg.data import load_description

    groups = list(reversed(list(load_description(dataset).groups)))  # printed G3, G2, G1
    out: dict[str, dict[str, float]] = {}
    for i, g in enumerate(groups + ["Mean"]):
        out[g] = {k: entry["table5"][loss][k][i] / 100 for k in METRICS}
    return out


def paper_as_printed(dataset: str, loss: str) -> dict[str, Any]:
    """The paper's `loss` results as a report for figures: per-class values from Table II
    (Tables III-IV), group means and Mean from Table V as printed."""
    report = paper_report(dataset, loss)
    printed = paper_table5(dataset, loss)
    mean = printed.pop("Mean")
    return {**report, "groups": {g: printed[g] for g in report["groups"]}, "mean": mean}


def paper_vs_ours(dataset: str, ours: Mapping[str, Mapping[str, Any]],
                  names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The paper's CE and IAL values next to ours, for comparison.json: fractions, NaN where
    undefined, delta = IAL - CE.

    `ours` maps 'CE' and 'IAL' to reports (dicts) of the dataset's classes; `names` gives their
    run names. Returns {"dataset", "model", "split", "sources", "ours": {loss: name},
    "per_class": {class: {metric: {"paper": {"CE", "IAL", "delta"}, "ours": {...}}}},
    "groups": {group: ...}, "mean": {metric: ...}}; groups in display order (G3 first)."""
    missing = [k for k in LOSSES if k not in ours]
    if missing:
        raise ValueError(f"the paper comparison needs reports for {LOSSES}, missing {missing}")
    entry = _entry(dataset)
    paper = {k: paper_as_printed(dataset, k) for k in LOSSES}
    classes = list(paper["CE"]["per_class"])
    for k in LOSSES:
        if list(ours[k]["per_class"]) != classes:
            raise ValueError(f"our {k} report's classes {list(ours[k]['per_class'])} differ from the paper's "
                             f"{dataset} classes {classes}")
    members = paper["CE"]["meta"]["groups"]
    groups = [g for g, _ in display_groups(classes, members)]

    def cells(get: Any) -> dict[str, Any]:
        out = {}
        for m in METRICS:
            out[m] = {}
            for who, src in (("paper", paper), ("ours", ours)):
                ce, ial = _num(get(src["CE"], m)), _num(get(src["IAL"], m))
                out[m][who] = {"CE": ce, "IAL": ial, "delta": ial - ce}
        return out

    return {
        "dataset": dataset, "model": entry["model"], "split": entry["split"],
        "sources": "per class: the paper's per-class tables; groups and Mean: its Table V as printed",
        "ours": {k: (names or {}).get(k, f"ours {k}") for k in LOSSES},
        "group_members": {g: list(m) for g, m in members.items()},
        "paper_class_names": {c: entry.get("paper_class_names", {}).get(c, c) for c in classes},
        "per_class": {c: cells(lambda r, m, c=c: r["per_class"][c][m]) for c in classes},
        "groups": {g: cells(lambda r, m, g=g: r["groups"][g][m]) for g in groups},
        "mean": cells(lambda r, m: r["mean"][m]),
    }


def paper_vs_ours_markdown(dataset: str, ours: Mapping[str, Mapping[str, Any]],
                           ours_label: str = "ours") -> str:
    """Per-class (Table II layout) and group (Table V layout) tables with, for each metric, the
    paper's CE, IAL and IAL - CE next to ours. `ours` maps 'CE' and 'IAL' to reports (dicts)."""
    return paper_markdown(paper_vs_ours(dataset, ours), ours_label)


def paper_markdown(comparison: Mapping[str, Any], ours_label: str = "ours") -> str:
    """The two tables of a `paper_vs_ours` dict."""
    renamed = comparison["paper_class_names"]
    per_class, groups = comparison["per_class"], comparison["groups"]
    cols = [(g, [renamed[c] for c in m]) for g, m in display_groups(list(per_class), comparison["group_members"])]

    def rows(values: Mapping[str, Mapping[str, Any]], metric: str, key: Any) -> list[tuple[str, dict[str, str]]]:
        return [(f"{label} {shown}", {key(name): fmt(v[metric][who][k]) for name, v in values.items()})
                for who, label in (("paper", "paper"), ("ours", ours_label))
                for k, shown, fmt in (("CE", "CE", pct), ("IAL", "IAL", pct), ("delta", "Δ", delta_pct))]

    table5 = {**groups, "Mean": comparison["mean"]}
    t2 = format_table2_md(cols, [(LABELS[m], rows(per_class, m, lambda c: renamed[c])) for m in METRICS])
    t5 = format_table5_md(list(groups), [(LABELS[m], rows(table5, m, lambda g: g)) for m in METRICS])
    return "\n".join([
        f"### Per class (%): paper ({comparison['model']}, {comparison['split']}) vs {ours_label}", "", t2, "",
        f"### Group means (%): paper Table V as printed vs {ours_label}", "",
        "Δ = IAL − CE in percentage points. Group value = mean of its classes' values; Mean = over all classes.",
        "", t5]) + "\n"
