"""Comparisons of reports: two runs side by side in the layout of the paper's Tables II and V,
with deltas B - A, a per-class recall/precision bar chart and a plain-language summary
(`iaseg compare`); and any number of reports in one table of mean and group values."""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from iaseg.metrics.confusion import METRICS
from iaseg.metrics.report import find_report, load_report, report_to_json, require_reports, summarize
from iaseg.metrics.tables import (LABELS, _num, delta_pct, display_groups, format_table2_md, format_table5_md,
                                  group_members, pct)


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
                    names: Sequence[str] | None = None, out_dir: str | Path | None = None,
                    paper: str | None = None) -> dict[str, Any]:
    """Compare two reports (dicts, report.json files or run folders).

    Returns {"comparison": the comparison.json dict, "summary": one plain-language line,
    "markdown": the two tables, "files": {name: path}, "figures": [png paths], "reports": (A, B) as
    loaded}. With `out_dir`, writes comparison.md, comparison.json and comparison_bars.png there.

    `paper` ('camvid' or 'cityscapes'): A is the CE run and B the IAL run; the paper's published
    CE and IAL values go beside ours into comparison.json ("paper", see
    `paper.paper_vs_ours`), comparison.md ("Paper vs ours") and paper_vs_ours.png (per class and
    group means; ours solid, the paper hatched, in the same method colours as every figure).
    """
    from iaseg.io import atomic_write_bytes

    from iaseg.metrics.figures import method_color, plot_class_bars

    require_reports([r for r in (report_a, report_b) if isinstance(r, (str, Path))])
    (ra, src_a), (rb, src_b) = _resolve(report_a), _resolve(report_b)
    if names is None:
        names = [default_name(s) if s else d for s, d in ((src_a, "A"), (src_b, "B"))]
    comparison = comparison_dict(ra, rb, names)
    comparison["sources"] = [src_a, src_b]
    markdown = comparison_markdown(comparison)
    if ra.get("boundary") and rb.get("boundary"):
        comparison["boundary"] = boundary_comparison(ra["boundary"], rb["boundary"])
        markdown += "\n" + boundary_comparison_markdown(comparison["boundary"], comparison["names"]) + "\n"
    name_a, name_b = comparison["names"]
    if paper is not None:
        from .paper import paper_as_printed, paper_markdown, paper_vs_ours

        try:
            comparison["paper"] = paper_vs_ours(paper, {"CE": ra, "IAL": rb}, {"CE": name_a, "IAL": name_b})
        except ValueError as e:
            raise ValueError(f"paper comparison: {e}") from None
        markdown += "\n## Paper vs ours\n\n" + paper_markdown(comparison["paper"])
    result: dict[str, Any] = {"comparison": comparison, "summary": comparison["summary"], "markdown": markdown,
                              "files": {}, "figures": [], "reports": (ra, rb)}
    if out_dir is not None:
        out = Path(out_dir)
        bars = plot_class_bars({name_a: ra, name_b: rb}, out / "comparison_bars.png",
                               title=f"Per-class recall and precision: {name_a} vs {name_b}")
        result["figures"].append(bars)
        result["files"]["png"] = bars
        if paper is not None:
            series = {name_a: ra, f"paper CE ({paper})": paper_as_printed(paper, "CE"),
                      name_b: rb, f"paper IAL ({paper})": paper_as_printed(paper, "IAL")}
            fig = plot_class_bars(series, out / "paper_vs_ours.png", metrics=("recall", "precision", "iou"),
                                  colors=[method_color(0), method_color(0), method_color(1), method_color(1)],
                                  hatched=[n for n in series if n.startswith("paper ")], group_means=True,
                                  title=f"Ours (solid) vs the paper (hatched, {comparison['paper']['model']}, "
                                        f"{comparison['paper']['split']})")
            result["figures"].append(fig)
            result["files"]["paper"] = fig
        result["files"]["json"] = out / "comparison.json"
        atomic_write_bytes(result["files"]["json"], report_to_json(comparison).encode())
        write_comparison_md(result, out)
        result["files"] = {k: result["files"][k] for k in ("md", "json", "png", "paper") if k in result["files"]}
    return result


def boundary_comparison(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Boundary F-score and trimap IoU of two reports' "boundary" sections with deltas B - A:
    {"widths", "rows": {name: {"f": triple, "trimap": [triple per width]}}} for every class,
    group and the mean (fractions; NaN = undefined)."""
    fa, fb, ta, tb = a["boundary_f"], b["boundary_f"], a["trimap_iou"], b["trimap_iou"]
    if list(ta["widths"]) != list(tb["widths"]):
        raise ValueError(f"the reports' trimap widths differ: {ta['widths']} vs {tb['widths']}")
    rows: dict[str, Any] = {}
    for section in ("per_class", "groups"):
        for name in fa[section]:
            if name in fb[section]:
                rows[name] = {"f": _triple(fa[section][name].get("f"), fb[section][name].get("f")),
                              "trimap": [_triple(x, y) for x, y in zip(ta[section][name], tb[section][name])]}
    rows["mean"] = {"f": _triple(fa["mean"].get("f"), fb["mean"].get("f")),
                    "trimap": [_triple(x, y) for x, y in zip(ta["mean"], tb["mean"])]}
    return {"widths": list(ta["widths"]), "rows": rows}


def boundary_comparison_markdown(bc: Mapping[str, Any], names: Sequence[str]) -> str:
    a, b = names
    head = ["boundary F"] + [f"trimap IoU d={d}" for d in bc["widths"]]
    lines = ["## Boundaries (%)", "", f"Each cell: {a} / {b} / Δ ({b} - {a}).", "",
             "| | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for name, row in bc["rows"].items():
        cells = [row["f"], *row["trimap"]]
        lines.append(f"| {name} | " + " | ".join(f"{pct(c['a'])} / {pct(c['b'])} / {delta_pct(c['delta'])}"
                                                 for c in cells) + " |")
    return "\n".join(lines)


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


def reports_table(reports: Mapping[str, Mapping[str, Any] | str | Path], groups: Sequence[str] | None = None) -> str:
    """Markdown table, one column per labelled report (report dicts, report.json files or run
    folders), e.g. {"CE": ..., "CE + rule": ..., "IAL": ..., "IAL + rule": ...}: mean and
    per-group precision / recall / IoU in percent. Groups: `groups`, else the first report's."""
    loaded = {label: (load_report(rep) if isinstance(rep, (str, Path)) else rep) for label, rep in reports.items()}
    if not loaded:
        raise ValueError("reports_table needs at least one report")
    first = next(iter(loaded.values()))
    groups = list(groups) if groups is not None else list(first.get("groups", {}))
    labels = list(loaded)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for section, keys in [("mean", ["mean"])] + [(g, ["groups", g]) for g in groups]:
        for m in METRICS:
            cells = []
            for rep in loaded.values():
                node: Any = rep
                for key in keys:
                    node = node.get(key, {}) if isinstance(node, Mapping) else {}
                cells.append(pct(node.get(m) if isinstance(node, Mapping) else None))
            lines.append(f"| {section} {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
