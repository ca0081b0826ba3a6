"""Multi-seed comparisons of N methods: what `iaseg compare --group NAME RUN ... --out DIR` reports.

Each method is a list of runs (run folders, evaluation folders or report.json files), one per
seed. The study gives, for every per-class, group and mean precision / recall / IoU:
- mean ± SD over seeds with the Student-t 95 % CI of the mean;
- per-seed paired differences against a reference method (same seed = same initialisation and
  data order, see iaseg.engine.sweep) with the t CI, a percentile bootstrap CI and the exact
  sign-flip permutation p-value;
- when every run has per_image.npz (written by `iaseg evaluate`): a hierarchical bootstrap over
  seeds and blocks of consecutive frames;
- with frontier.json: each method's group recall at the reference's mean IoU minus 0.5 points
  (matched operating points), and the frontier figure; a method without frontiers (e.g. runs
  scored with a decision rule) is drawn there as points.
Verdicts ("not significant") follow the t CI; with n seeds the smallest possible two-sided
sign-flip p is 2 / 2^n (0.0625 for 5 seeds), which the report states.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .report import ReportError, _jsonable, find_report, load_report
from .tables import LABELS, group_members

MATCH_MARGIN = 0.005  # matched operating point: the reference's mean IoU minus 0.5 points


def run_seed(report: Mapping[str, Any], report_path: Path) -> int | None:
    """The training seed of an evaluated run: the report's meta, else the run's config.yaml,
    else a `seed<k>` folder name; None when nothing says."""
    meta = report.get("meta") or {}
    if isinstance(meta.get("train_seed"), int):
        return int(meta["train_seed"])
    folder = report_path.parent
    for run in (folder, folder.parent):
        cfg = run / "config.yaml"
        if cfg.is_file():
            import yaml

            try:
                seed = ((yaml.safe_load(cfg.read_text()) or {}).get("train") or {}).get("seed")
            except yaml.YAMLError:
                seed = None
            if isinstance(seed, int):
                return seed
    for part in reversed(report_path.parts[:-1]):
        m = re.fullmatch(r"(?:seed|s)[_-]?(\d+)", part)
        if m:
            return int(m.group(1))
    return None


def load_method(paths: Sequence[str | Path], name: str) -> dict[Any, dict[str, Any]]:
    """{seed: {"report", "path", "per_image" (path or None), "frontier" (path or None)}} of one
    method. Runs without a recorded seed are keyed by position; two runs of one seed are refused."""
    runs: dict[Any, dict[str, Any]] = {}
    seeds = []
    for p in paths:
        file = find_report(p)
        report = load_report(file)
        seeds.append(run_seed(report, file))
        runs[len(runs)] = {"report": report, "path": str(file),
                           "per_image": _beside(file, "per_image.npz"), "frontier": _beside(file, "frontier.json")}
    if all(s is not None for s in seeds):
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise ReportError(f"method {name!r}: two runs of seed {dup[0]}")
        return {s: runs[i] for i, s in enumerate(seeds)}
    return {f"#{i}": r for i, r in runs.items()}


def _beside(report_file: Path, name: str) -> str | None:
    p = report_file.parent / name
    return str(p) if p.is_file() else None


def metric_keys(report: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, path) of every metric a study summarises: means, group means, per class, and the
    boundary F-score (mean and groups) when the report has boundary metrics."""
    keys = [(f"mean {LABELS[k]}", ("mean", k)) for k in ("iou", "precision", "recall")]
    for g in report["groups"]:
        keys += [(f"{g} {LABELS[k]}", ("groups", g, k)) for k in ("iou", "precision", "recall")]
    if report.get("boundary"):
        keys.append(("mean boundary F", ("boundary", "boundary_f", "mean", "f")))
        keys += [(f"{g} boundary F", ("boundary", "boundary_f", "groups", g, "f")) for g in report["groups"]]
        for i, d in enumerate(trimap_widths(report)):
            keys.append((f"mean trimap IoU d={d}", ("boundary", "trimap_iou", "mean", i)))
            keys += [(f"{g} trimap IoU d={d}", ("boundary", "trimap_iou", "groups", g, i)) for g in report["groups"]]
    for c in report["per_class"]:
        keys += [(f"{c} {LABELS[k]}", ("per_class", c, k)) for k in ("iou", "precision", "recall")]
    return keys


def trimap_widths(report: Mapping[str, Any]) -> list[int]:
    """The band widths (pixels) of a report's trimap IoU, [] without boundary metrics."""
    return list(((report.get("boundary") or {}).get("trimap_iou") or {}).get("widths") or [])


def _get(report: Mapping[str, Any], path: tuple[str | int, ...]) -> float:
    """The value at `path` (str: a key, int: a list index, e.g. a trimap width's position); NaN
    when undefined or absent (e.g. a report without boundary metrics)."""
    node: Any = report
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, (list, tuple)) or part >= len(node):
                return math.nan
        elif not isinstance(node, Mapping) or part not in node:
            return math.nan
        node = node[part]
    return math.nan if node is None else float(node)


def build_study(methods: Mapping[str, Sequence[str | Path]], reference: str | None = None,
                frontier: bool = True, frontier_set: str | None = None, bootstrap: bool = True,
                n_boot: int = 10_000, block_len: int = 10, seed: int = 0) -> dict[str, Any]:
    """The statistics of a multi-seed comparison as a JSON-able dict (see the module doc)."""
    from .stats import paired_differences, seed_summary

    if len(methods) < 1 or any(len(p) == 0 for p in methods.values()):
        raise ReportError("every --group needs at least one run")
    runs = {name: load_method(paths, name) for name, paths in methods.items()}
    reference = reference or next(iter(runs))
    if reference not in runs:
        raise ReportError(f"--reference {reference!r} is not one of the groups ({', '.join(runs)})")
    first = next(iter(runs[reference].values()))["report"]
    classes = list(first["per_class"])
    groups = group_members(first) or {}
    for name, rs in runs.items():
        for r in rs.values():
            if list(r["report"]["per_class"]) != classes:
                raise ReportError(f"{r['path']}: classes {list(r['report']['per_class'])} differ from {classes}")
    keys = metric_keys(first)
    study: dict[str, Any] = {"format": "iaseg.study/1", "reference": reference, "classes": classes,
                             "groups": groups, "trimap_widths": trimap_widths(first), "methods": {},
                             "differences": {}, "notes": []}
    for name, rs in runs.items():
        values = {label: {s: _get(r["report"], path) for s, r in rs.items()} for label, path in keys}
        study["methods"][name] = {
            "runs": [{"seed": s, "report": r["path"]} for s, r in rs.items()],
            "values": {label: [v[s] for s in rs] for label, v in values.items()},
            "summary": {label: _summary(seed_summary, v) for label, v in values.items()},
        }
    paired_ok = {}
    for name, rs in runs.items():
        if name == reference:
            continue
        ref = runs[reference]
        shared = [s for s in rs if s in ref]
        if set(rs) != set(ref):
            study["notes"].append(f"{name} and {reference} share seeds {shared} only; differences use those")
        paired_ok[name] = shared
        if len(shared) == 0:
            continue
        diffs = {}
        for label, path in keys:
            a = {s: _get(rs[s]["report"], path) for s in shared}
            b = {s: _get(ref[s]["report"], path) for s in shared}
            try:
                diffs[label] = asdict(paired_differences(a, b, n_boot=n_boot, seed=seed))
            except ValueError:
                diffs[label] = None  # undefined for every seed
        study["differences"][name] = diffs
    if bootstrap:
        study["bootstrap"] = _bootstrap(runs, reference, paired_ok, groups, n_boot, block_len, seed, study["notes"])
    if frontier:
        study["frontier"] = _frontier(runs, reference, paired_ok, groups, frontier_set, n_boot, seed, study["notes"])
    study["summary"] = summary_lines(study)
    return study


def _summary(fn: Any, values: Mapping[Any, float]) -> dict[str, Any] | None:
    try:
        return asdict(fn(values))
    except ValueError:
        return None


def _missing(runs: Mapping[str, Mapping[Any, dict[str, Any]]], key: str, what: str, file: str, fix: str,
             notes: list[str]) -> bool:
    """True (and a note) when some run lacks the file an analysis needs."""
    missing = [r["path"] for rs in runs.values() for r in rs.values() if not r[key]]
    if missing:
        notes.append(f"{what}: {len(missing)} run(s) have no {file} (e.g. {missing[0]}; {fix})")
    return bool(missing)


def _bootstrap(runs: Mapping[str, Mapping[Any, dict[str, Any]]], reference: str, paired: Mapping[str, list],
               groups: Mapping[str, Sequence[str]], n_boot: int, block_len: int, seed: int,
               notes: list[str]) -> dict[str, Any] | None:
    from .per_image import load_per_image
    from .stats import hierarchical_bootstrap

    if _missing(runs, "per_image", "no hierarchical bootstrap", "per_image.npz", "re-run `iaseg evaluate`", notes):
        return None
    counts = {name: {s: load_per_image(r["per_image"]) for s, r in rs.items()} for name, rs in runs.items()}
    out: dict[str, Any] = {"block_len": block_len, "n_boot": n_boot, "methods": {}, "differences": {}}
    # With one seed the resampling sees only image-to-image variation, not seed-to-seed: an
    # interval from it would look far tighter than the evidence is, so none is given.
    few = "hierarchical bootstrap needs at least 2 seeds (with one it resamples images only, not seeds)"
    for name in runs:
        if len(counts[name]) < 2:
            out["methods"][name] = {}
            notes.append(f"{name}: {few}")
            continue
        out["methods"][name] = _intervals(hierarchical_bootstrap(counts[name], None, groups, block_len, n_boot, seed=seed))
    for name, shared in paired.items():
        if len(shared) >= 2:
            a = {s: counts[name][s] for s in shared}
            b = {s: counts[reference][s] for s in shared}
            out["differences"][name] = _intervals(hierarchical_bootstrap(a, b, groups, block_len, n_boot, seed=seed))
        elif shared:
            notes.append(f"{name} - {reference}: {few}; paired seeds: {shared}")
    return out


def _intervals(result: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a hierarchical_bootstrap result to {metric label: [estimate, low, high]}."""
    flat: dict[str, Any] = {}
    for k, iv in result["mean"].items():
        flat[f"mean {LABELS[k]}"] = [iv.estimate, iv.low, iv.high]
    for section in ("groups", "per_class"):
        for name, metrics in result[section].items():
            for k, iv in metrics.items():
                flat[f"{name} {LABELS[k]}"] = [iv.estimate, iv.low, iv.high]
    return flat


def _frontier(runs: Mapping[str, Mapping[Any, dict[str, Any]]], reference: str, paired: Mapping[str, list],
              groups: Mapping[str, Sequence[str]], set_name: str | None, n_boot: int, seed: int,
              notes: list[str]) -> dict[str, Any] | None:
    """Matched operating points on the offset frontiers. A method whose runs do not all have
    frontier.json (e.g. a model scored with a decision rule) has no curve: its runs are kept as
    points (mean IoU, group recall, group precision) for the figure, without a matched recall."""
    from .frontier import frontier_curves, load_frontier, recall_at_iou
    from .stats import paired_differences, seed_summary

    fix = "run `iaseg evaluate --frontier GROUP`"
    with_curve = [name for name, rs in runs.items() if all(r["frontier"] for r in rs.values())]
    if not with_curve:
        _missing(runs, "frontier", "no frontier", "frontier.json", fix, notes)
        return None
    curves: dict[str, dict[Any, dict[str, list[float]]]] = {}
    for name in with_curve:
        curves[name] = {}
        for s, r in runs[name].items():
            data = load_frontier(r["frontier"])
            chosen = set_name or list(data["sets"])[0]
            if chosen not in data["sets"]:
                raise ReportError(f"{r['frontier']}: no offset set {chosen!r} (sets: {', '.join(data['sets'])})")
            set_name = chosen
            curves[name][s] = {k: v.tolist() for k, v in frontier_curves(data, chosen, groups).items()}
    group = set_name if set_name in groups else list(groups)[-1]
    points: dict[str, dict[Any, dict[str, float]]] = {}
    for name, rs in runs.items():
        if name in curves:
            continue  # the others lack frontier.json: note them and keep their plain points
        _missing({name: rs}, "frontier", f"no frontier for {name}", "frontier.json",
                 f"{fix}; drawn as points, no matched recall", notes)
        points[name] = {s: {"mean_iou": _get(r["report"], ("mean", "iou")),
                            "group_recall": _get(r["report"], ("groups", group, "recall")),
                            "group_precision": _get(r["report"], ("groups", group, "precision"))}
                        for s, r in rs.items()}
    ref_iou = [_get(r["report"], ("mean", "iou")) for r in runs[reference].values()]
    target = float(np.nanmean(ref_iou)) - MATCH_MARGIN
    matched = {name: {s: recall_at_iou(c["mean_iou"], c["group_recall"], target) for s, c in cs.items()}
               for name, cs in curves.items()}
    out: dict[str, Any] = {"set": set_name, "group": group, "target_mean_iou": target,
                           "margin": MATCH_MARGIN, "curves": curves, "points": points, "matched_recall": matched,
                           "methods": {name: _summary(seed_summary, m) for name, m in matched.items()},
                           "differences": {}}
    for name, shared in paired.items():
        if name not in matched or reference not in matched:
            out["differences"][name] = None
            continue
        try:
            out["differences"][name] = asdict(paired_differences(
                {s: matched[name][s] for s in shared}, {s: matched[reference][s] for s in shared},
                n_boot=n_boot, seed=seed)) if shared else None
        except ValueError:
            out["differences"][name] = None
            notes.append(f"{name}: no seed reaches the matched mean IoU {100 * target:.1f} on its frontier")
    return out


# -- words -----------------------------------------------------------------------------------------

def _fmt(v: float, digits: int = 1, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:+.{digits}f}" if sign else f"{100 * v:.{digits}f}"


def _ci(lo: float, hi: float, sign: bool = True) -> str:
    return f"[{_fmt(lo, sign=sign)}, {_fmt(hi, sign=sign)}]"


def _verdict(d: Mapping[str, Any]) -> str:
    lo, hi = d["t_ci"]
    if math.isnan(lo) or math.isnan(hi):
        return "CI undefined (one seed)"
    if lo <= 0 <= hi:
        return "not significant (CI includes 0)"
    if d["p_value"] >= 0.05:  # the t CI assumes normal seed noise; the sign-flip test does not
        return "CI excludes 0, not confirmed by the sign-flip test (p >= 0.05)"
    return "CI excludes 0"


def summary_lines(study: Mapping[str, Any]) -> list[str]:
    """Plain sentences: each method's effect on the top group's recall and precision and on mean
    IoU against the reference, with the t CI and p, and the matched-operating-point result."""
    ref = study["reference"]
    groups = list(study["groups"]) or []
    top = groups[-1] if groups else None
    labels = ([f"{top} {LABELS['recall']}", f"{top} {LABELS['precision']}"] if top else []) + ["mean IoU"]
    lines = []
    for name, diffs in study["differences"].items():
        for label in labels:
            d = diffs.get(label)
            if not d:
                continue
            lines.append(f"{name} - {ref}, {label}: {_fmt(d['mean'], sign=True)} points "
                         f"(95 % CI {_ci(*d['t_ci'])}, sign-flip p = {d['p_value']:.3g}, n = {d['n']} paired seed{'s' * (d['n'] != 1)}): "
                         f"{_verdict(d)}.")
    f = study.get("frontier")
    if f:
        for name, d in f["differences"].items():
            if d:
                lines.append(f"At matched mean IoU ({_fmt(f['target_mean_iou'])} = {ref} - {100 * f['margin']:.1f}), "
                             f"{name} - {ref}, {f['group']} recall: {_fmt(d['mean'], sign=True)} points "
                             f"(95 % CI {_ci(*d['t_ci'])}, p = {d['p_value']:.3g}, n = {d['n']}): {_verdict(d)}.")
    # the floor of the exact sign-flip p depends on the number of seeds the methods share
    n_min = min((d["n"] for diffs in study["differences"].values() for d in diffs.values() if d), default=0)
    if 0 < n_min <= 16:
        lines.append(f"With {n_min} paired seed{'s' * (n_min != 1)} the smallest possible two-sided sign-flip p is "
                     f"{2 / 2 ** n_min:.3g}.")
    return lines


def study_markdown(study: Mapping[str, Any], title: str = "Multi-seed comparison") -> str:
    ref = study["reference"]
    methods = list(study["methods"])
    groups = list(study["groups"])
    top = groups[-1] if groups else None
    lines = [f"# {title}", "", f"Reference method: **{ref}**. Values in %. Mean ± SD over seeds "
             "[95 % Student-t CI of the mean]; differences are per seed (paired), method - reference.", ""]
    lines += ["## Summary", ""] + [f"- {s}" for s in study["summary"]] + [""]
    if study["notes"]:
        lines += ["Notes:", ""] + [f"- {n}" for n in study["notes"]] + [""]
    # runs
    cols = ["mean IoU"] + ([f"{top} Recall", f"{top} Precision"] if top else [])
    lines += ["## Runs", "", "| method | seed | " + " | ".join(cols) + " | report |", "|---|---:|" + "---:|" * len(cols) + "---|"]
    for name, m in study["methods"].items():
        for i, run in enumerate(m["runs"]):
            vals = " | ".join(_fmt(m["values"][c][i]) for c in cols)
            lines.append(f"| {name} | {run['seed']} | {vals} | {run['report']} |")
    lines.append("")
    # means over seeds
    rows = ["mean IoU", "mean Precision", "mean Recall"] + [f"{g} {LABELS[k]}" for g in groups for k in ("iou", "precision", "recall")]
    trimap = [f"{w} trimap IoU d={d}" for w in ["mean", *groups] for d in study.get("trimap_widths") or []]
    rows += [r for r in ["mean boundary F"] + [f"{g} boundary F" for g in groups] + trimap
             if r in next(iter(study["methods"].values()))["summary"]]
    lines += ["## Means over seeds", "", "| metric | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for r in rows:
        cells = []
        for name in methods:
            s = study["methods"][name]["summary"].get(r)
            cells.append("-" if not s else f"{_fmt(s['mean'])} ± {_fmt(s['sd'])} {_ci(s['low'], s['high'], sign=False)}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    lines.append("")
    # paired differences
    others = [m for m in methods if m != ref and m in study["differences"]]
    if others:
        lines += [f"## Paired differences against {ref}", "",
                  "Per metric: mean difference [95 % t CI] {95 % percentile-bootstrap CI}, exact sign-flip p, "
                  "paired seeds.", ""]
        for name in others:
            lines += [f"### {name} - {ref}", "", "| metric | difference | t CI | bootstrap CI | p | n | verdict |",
                      "|---|---:|---:|---:|---:|---:|---|"]
            for r in rows + [k for k in study["differences"][name] if k not in rows]:
                d = study["differences"][name].get(r)
                if not d:
                    continue
                lines.append(f"| {r} | {_fmt(d['mean'], sign=True)} | {_ci(*d['t_ci'])} | {_ci(*d['bootstrap_ci'])} "
                             f"| {d['p_value']:.3g} | {d['n']} | {_verdict(d)} |")
            lines.append("")
    b = study.get("bootstrap")
    if b and (any(b["methods"].values()) or b["differences"]):
        lines += ["## Hierarchical bootstrap (seeds, then blocks of "
                  f"{b['block_len']} consecutive frames; {b['n_boot']} resamples)", "",
                  "| metric | " + " | ".join(methods + [f"{m} - {ref}" for m in b["differences"]]) + " |",
                  "|---|" + "---:|" * (len(methods) + len(b["differences"]))]
        for r in rows:
            if all(b["methods"][m].get(r) is None for m in methods):
                continue  # boundary metrics: no per-image counts to resample
            cells = [_iv(b["methods"][m].get(r), False) for m in methods]
            cells += [_iv(b["differences"][m].get(r), True) for m in b["differences"]]
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
        lines.append("")
    f = study.get("frontier")
    if f:
        lines += [f"## Matched operating points ({f['group']} recall at mean IoU >= {_fmt(f['target_mean_iou'])})", "",
                  f"Offsets added to the logits of {f['set']} trace each model's frontier (frontier.png); the table "
                  f"gives the highest {f['group']} recall each run reaches at a mean IoU no lower than {ref}'s mean "
                  f"minus {100 * f['margin']:.1f} points.", "",
                  "| method | per seed | mean ± SD [95 % CI] | difference vs " + ref + " [t CI], p |", "|---|---|---:|---:|"]
        for name in methods:
            if name not in f["matched_recall"]:
                lines.append(f"| {name} | no frontier.json (points on the figure) | - | |")
                continue
            per_seed = ", ".join(_fmt(v) for v in f["matched_recall"][name].values())
            s = f["methods"].get(name)
            summ = "-" if not s else f"{_fmt(s['mean'])} ± {_fmt(s['sd'])} {_ci(s['low'], s['high'], sign=False)}"
            d = f["differences"].get(name)
            diff = "" if not d else f"{_fmt(d['mean'], sign=True)} {_ci(*d['t_ci'])}, p = {d['p_value']:.3g}"
            lines.append(f"| {name} | {per_seed} | {summ} | {diff} |")
        lines.append("")
    return "\n".join(lines)


def _iv(v: Sequence[float] | None, sign: bool) -> str:
    if not v:
        return "-"
    return f"{_fmt(v[0], sign=sign)} {_ci(v[1], v[2], sign=sign)}"


def _seed_band(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, SD) over seeds (axis 0) of a figure's curves, ignoring NaN; SD 0 for one seed.
    An all-NaN column (an offset no seed reached) stays NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(arr, 0)
        sd = np.nanstd(arr, 0, ddof=1) if arr.shape[0] > 1 else np.zeros_like(mean)
    return mean, sd


def plot_frontier(study: Mapping[str, Any], out_png: str | Path) -> Path | None:
    """Two panels per study: (mean IoU, group recall) and (group precision, group recall); per
    method the mean curve over seeds (per offset) with a ±1 SD band of recall, thin per-seed
    lines, the plain-argmax points, and the matched mean IoU as a dashed line."""
    f = study.get("frontier")
    if not f:
        return None
    from .figures import _figure, _save, method_color

    fig = _figure(11, 4.6)
    axes = fig.subplots(1, 2)
    order = list(study["methods"])  # colours as in seeds.png
    for name, per_seed in f["curves"].items():
        color = method_color(order.index(name))
        arr = {k: np.array([c[k] for c in per_seed.values()]) for k in ("mean_iou", "group_recall", "group_precision", "delta")}
        mean = {k: _seed_band(v)[0] for k, v in arr.items()}
        sd = _seed_band(arr["group_recall"])[1]
        zero = int(np.argmin(np.abs(mean["delta"])))
        for ax, x in ((axes[0], "mean_iou"), (axes[1], "group_precision")):
            for j in range(arr[x].shape[0]):
                ax.plot(100 * arr[x][j], 100 * arr["group_recall"][j], color=color, lw=0.5, alpha=0.35)
            ax.plot(100 * mean[x], 100 * mean["group_recall"], color=color, lw=2, label=name)
            ax.fill_between(100 * mean[x], 100 * (mean["group_recall"] - sd), 100 * (mean["group_recall"] + sd),
                            color=color, alpha=0.15, lw=0)
            ax.plot(100 * mean[x][zero], 100 * mean["group_recall"][zero], "o", color=color, ms=6)
    for name, per_seed in f.get("points", {}).items():
        color = method_color(order.index(name))
        for ax, x in ((axes[0], "mean_iou"), (axes[1], "group_precision")):
            xs = [100 * p[x] for p in per_seed.values()]
            ys = [100 * p["group_recall"] for p in per_seed.values()]
            ax.plot(xs, ys, "D", color=color, ms=6, mfc="none", mew=1.5, label=f"{name} (no frontier)")
    axes[0].axvline(100 * f["target_mean_iou"], color="0.4", ls="--", lw=1,
                    label=f"{study['reference']} mean IoU - {100 * f['margin']:.1f}")
    g = f["group"]
    axes[0].set(xlabel="mean IoU (%)", ylabel=f"{g} recall (%)", title=f"offset on {f['set']}: mean IoU vs {g} recall")
    axes[1].set(xlabel=f"{g} precision (%)", ylabel=f"{g} recall (%)", title=f"{g} precision vs recall")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.supxlabel("dots: plain argmax (offset 0); lines: mean over seeds per offset, band ±1 SD of recall, "
                  "thin: single seeds" + ("; diamonds: runs without a frontier, one per seed" if f.get("points") else ""),
                  fontsize=8, color="0.3")
    return _save(fig, out_png)


def plot_seeds(study: Mapping[str, Any], out_png: str | Path) -> Path:
    """Per-seed values of mean IoU and the top group's recall and precision, one colour per
    method, lines joining the runs of one seed (the pairing)."""
    from .figures import _figure, _save, method_color

    groups = list(study["groups"])
    top = groups[-1] if groups else None
    labels = ["mean IoU"] + ([f"{top} Recall", f"{top} Precision"] if top else [])
    methods = list(study["methods"])
    fig = _figure(3.6 * len(labels), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(labels)))
    for ax, label in zip(axes, labels):
        seeds: dict[Any, list[tuple[int, float]]] = {}
        for i, name in enumerate(methods):
            m = study["methods"][name]
            vals = [100 * v for v in m["values"][label]]
            ax.scatter([i] * len(vals), vals, color=method_color(i), zorder=3, s=22)
            s = m["summary"].get(label)
            if s:
                ax.errorbar(i + 0.18, 100 * s["mean"], yerr=[[100 * (s["mean"] - s["low"])], [100 * (s["high"] - s["mean"])]]
                            if not math.isnan(s["low"]) else None, fmt="s", color=method_color(i), capsize=3, ms=5)
            for run, v in zip(m["runs"], vals):
                seeds.setdefault(run["seed"], []).append((i, v))
        for pts in seeds.values():
            if len(pts) > 1:
                ax.plot(*zip(*pts), color="0.6", lw=0.6, zorder=1)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_title(f"{label} (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.supxlabel("dots: seeds (grey lines join one seed across methods); squares: mean with 95 % t CI",
                  fontsize=8, color="0.3")
    return _save(fig, out_png)


def plot_trimap(study: Mapping[str, Any], out_png: str | Path) -> Path | None:
    """Trimap IoU against the band width d (pixels within d of a ground-truth boundary), the mean
    over classes and the most important group: per method the mean over seeds with a ±1 SD band
    and thin per-seed lines. None when the reports have no boundary metrics."""
    widths = list(study.get("trimap_widths") or [])
    if not widths:
        return None
    from .figures import _figure, _save, method_color

    groups = list(study["groups"])
    panels = ["mean"] + groups[-1:]
    fig = _figure(4.6 * len(panels), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, what in zip(axes, panels):
        for i, (name, m) in enumerate(study["methods"].items()):
            color = method_color(i)
            arr = 100 * np.array([m["values"][f"{what} trimap IoU d={d}"] for d in widths], dtype=float).T
            for row in arr:
                ax.plot(widths, row, color=color, lw=0.5, alpha=0.35)
            mean, sd = _seed_band(arr)
            ax.plot(widths, mean, "o-", color=color, lw=2, ms=4, label=name)
            ax.fill_between(widths, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(d) for d in widths])
        ax.set(xlabel="band width d (pixels from a ground-truth boundary)", ylabel="trimap IoU (%)",
               title=f"{'mean over classes' if what == 'mean' else what}: trimap IoU vs d")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.supxlabel("lines: mean over seeds, band ±1 SD; thin: single seeds", fontsize=8, color="0.3")
    return _save(fig, out_png)


def write_study(study: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """study.json, study.md, seeds.png, (with frontiers) frontier.png and (with boundary metrics)
    trimap.png in out_dir."""
    from iaseg.io import atomic_write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "study.json", "md": out / "study.md"}
    atomic_write_bytes(paths["json"], json.dumps(_jsonable(study), indent=1, allow_nan=False).encode())
    atomic_write_bytes(paths["md"], (study_markdown(study) + "\n").encode())
    paths["seeds"] = plot_seeds(study, out / "seeds.png")
    fr = plot_frontier(study, out / "frontier.png")
    if fr:
        paths["frontier"] = fr
    tr = plot_trimap(study, out / "trimap.png")
    if tr:
        paths["trimap"] = tr
    return paths
