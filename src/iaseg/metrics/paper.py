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

from .confusion import METRICS
from .report import summarize
from .tables import LABELS, _num, delta_pct, display_groups, format_table2_md, format_table5_md, pct

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


def paper_vs_ours_markdown(dataset: str, ours: Mapping[str, Mapping[str, Any]],
                           ours_label: str = "ours") -> str:
    """Per-class (Table II layout) and group (Table V layout) tables with, for each metric, the
    paper's CE, IAL and IAL - CE next to ours. `ours` maps 'CE' and 'IAL' to reports (dicts)."""
    missing = [k for k in LOSSES if k not in ours]
    if missing:
        raise ValueError(f"paper_vs_ours_markdown needs reports for {LOSSES}, missing {missing}")
    entry = _entry(dataset)
    paper = {k: paper_report(dataset, k) for k in LOSSES}
    printed = {k: paper_table5(dataset, k) for k in LOSSES}
    classes = list(paper["CE"]["per_class"])
    for k in LOSSES:
        if list(ours[k]["per_class"]) != classes:
            raise ValueError(f"our {k} report's classes {list(ours[k]['per_class'])} differ from {classes}")
    groups = paper["CE"]["meta"]["groups"]
    renamed = {c: entry.get("paper_class_names", {}).get(c, c) for c in classes}
    cols = [(g, [renamed[c] for c in members]) for g, members in display_groups(classes, groups)]

    def rows2(metric: str) -> list[tuple[str, dict[str, str]]]:
        def cells(fn: Any) -> dict[str, str]:
            return {renamed[c]: fn(c) for c in classes}

        out = []
        for who, src in (("paper", paper), (ours_label, ours)):
            a = {c: src["CE"]["per_class"][c][metric] for c in classes}
            b = {c: src["IAL"]["per_class"][c][metric] for c in classes}
            out += [(f"{who} CE", cells(lambda c: pct(a[c]))), (f"{who} IAL", cells(lambda c: pct(b[c]))),
                    (f"{who} Δ", cells(lambda c: delta_pct(_sub(b[c], a[c]))))]
        return out

    def rows5(metric: str) -> list[tuple[str, dict[str, str]]]:
        out = []
        for who in ("paper", ours_label):
            vals = {}
            for k in LOSSES:
                if who == "paper":
                    vals[k] = {g: v[metric] for g, v in printed[k].items()}
                else:
                    vals[k] = {**{g: v[metric] for g, v in ours[k]["groups"].items()}, "Mean": ours[k]["mean"][metric]}
            out += [(f"{who} CE", {g: pct(v) for g, v in vals["CE"].items()}),
                    (f"{who} IAL", {g: pct(v) for g, v in vals["IAL"].items()}),
                    (f"{who} Δ", {g: delta_pct(_sub(vals["IAL"][g], vals["CE"][g])) for g in vals["CE"]})]
        return out

    t2 = format_table2_md(cols, [(LABELS[m], rows2(m)) for m in METRICS])
    t5 = format_table5_md([g for g, _ in display_groups(classes, groups)], [(LABELS[m], rows5(m)) for m in METRICS])
    return "\n".join([
        f"### Per class (%): paper ({entry['model']}, {entry['split']}) vs {ours_label}", "", t2, "",
        f"### Group means (%): paper Table V as printed vs {ours_label}", "",
        "Δ = IAL − CE in percentage points. Group value = mean of its classes' values; Mean = over all classes.",
        "", t5]) + "\n"


def _sub(b: Any, a: Any) -> float:
    return _num(b) - _num(a)  # NaN (undefined) in, NaN out
