"""The words, tables and figures of a multi-seed study (iaseg.evidence.study.build_study): the
summary sentences, study.md, seeds.png, frontier.png and trimap.png, and write_study, which
writes them with study.json."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from iaseg.io import json_safe as _jsonable
from iaseg.metrics.tables import LABELS

from .stats import detectable_phrase, verdict


# -- words -----------------------------------------------------------------------------------------

def _fmt(v: float, digits: int = 1, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:+.{digits}f}" if sign else f"{100 * v:.{digits}f}"


def _ci(lo: float, hi: float, sign: bool = True) -> str:
    return f"[{_fmt(lo, sign=sign)}, {_fmt(hi, sign=sign)}]"


def _verdict(d: Mapping[str, Any], power: bool = False) -> str:
    """The verdict on a paired difference: its t CI and sign-flip p (the bootstrap CI is too
    narrow with 3-5 seeds); with `power`, an unresolved one says the smallest effect the
    comparison could detect."""
    word = verdict(*d["t_ci"], d["p_value"])
    low, high = d["t_ci"]
    if power and low is not None and high is not None and low <= 0.0 <= high:
        word += detectable_phrase(d.get("detectable"))
    return word


def _effect(d: Mapping[str, Any]) -> str:
    """'+1.2 points (95 % CI [-0.5, +2.9], p = 0.31, n = 5): verdict' of a paired difference."""
    return (f"{_fmt(d['mean'], sign=True)} points (95 % CI {_ci(*d['t_ci'])}, p = {d['p_value']:.3g}, "
            f"n = {d['n']}): {_verdict(d, power=True)}")


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
                         f"{_verdict(d, power=True)}.")
    f = study.get("frontier")
    if f:
        for name, d in f["differences"].items():
            if d:
                lines.append(f"At matched mean IoU ({_fmt(f['target_mean_iou'])} = {ref} - {100 * f['margin']:.1f}), "
                             f"{name} - {ref}, {f['group']} recall: {_effect(d)}.")
        for name, d in (f.get("per_seed") or {}).get("differences", {}).items():
            if d:
                lines.append(f"Matched per seed (each seed's {ref} mean IoU - {100 * f['margin']:.1f}), {name} - {ref}, "
                             f"{f['group']} recall: {_effect(d)}.")
        for name, pair in ((f.get("band") or {}).get("pairs") or {}).items():
            if pair and pair["difference"]:
                lines.append(f"Matched over a band (mean IoU {_fmt(pair['low'])}-{_fmt(pair['high'])}, reached by every "
                             f"seed of both), {name} - {ref}, {f['group']} recall averaged over the band: "
                             f"{_effect(pair['difference'])}.")
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
                  "paired seeds, and the smallest true difference these seeds detect with 80 % power (two-sided t "
                  "test, alpha 0.05, at the observed SD of the differences).", ""]
        for name in others:
            lines += [f"### {name} - {ref}", "",
                      "| metric | difference | t CI | bootstrap CI | p | n | detectable (80 % power) | verdict |",
                      "|---|---:|---:|---:|---:|---:|---:|---|"]
            for r in rows + [k for k in study["differences"][name] if k not in rows]:
                d = study["differences"][name].get(r)
                if not d:
                    continue
                lines.append(f"| {r} | {_fmt(d['mean'], sign=True)} | {_ci(*d['t_ci'])} | {_ci(*d['bootstrap_ci'])} "
                             f"| {d['p_value']:.3g} | {d['n']} | {_fmt(d.get('detectable'))} | {_verdict(d)} |")
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
        ps = f.get("per_seed")
        if ps:
            seeds = list(ps["targets"])
            lines += [f"Matched per seed: seed s at {ref} seed s's own mean IoU minus {100 * f['margin']:.1f} points "
                      f"(targets {', '.join(f'{s}: {_fmt(v)}' for s, v in ps['targets'].items())}); {ref}'s plain "
                      "argmax always qualifies, so no seed of it is lost.", "",
                      "| method | " + " | ".join(f"seed {s}" for s in seeds) + f" | difference vs {ref} [t CI], p, n |",
                      "|---|" + "---:|" * (len(seeds) + 1)]
            for name, rec in ps["matched_recall"].items():
                d = ps["differences"].get(name)
                diff = "" if not d else f"{_fmt(d['mean'], sign=True)} {_ci(*d['t_ci'])}, p = {d['p_value']:.3g}, n = {d['n']}"
                lines.append(f"| {name} | " + " | ".join(_fmt(rec.get(s)) for s in seeds) + f" | {diff} |")
            lines.append("")
        lines += _band_markdown(f, ref)
    return "\n".join(lines)


def _band_markdown(f: Mapping[str, Any], ref: str) -> list[str]:
    """The band-matched comparison: per pair, recall at fixed mean-IoU targets every seed reaches
    and averaged over the band, with paired differences."""
    b = f.get("band")
    pairs = {k: v for k, v in ((b or {}).get("pairs") or {}).items() if v}
    if not pairs:
        return []
    g = f["group"]
    lines = [f"### Matched over a band of mean IoU (every seed of a pair reaches it)", "",
             f"Per pair of methods, the band runs from the lowest of the seeds' highest mean IoU on their frontiers "
             f"(high) down {100 * b['width']:.1f} points; every seed of both methods reaches every target in it, so no "
             f"seed is left out and no target moves with one seed. {g} recall at fixed targets every "
             f"{100 * b['step']:.1f} points, and its mean over the band (the area between the frontiers per point of "
             "mean IoU). Differences: method - reference per seed [95 % t CI], sign-flip p, SD of the per-seed "
             "differences, smallest difference detectable with 80 % power.", "",
             f"| pair | mean IoU target | {g} recall, method | {g} recall, {ref} | difference [t CI], p | SD | detectable |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, p in pairs.items():
        rows = [(f"{_fmt(t)}", [v[k] for v in p["recall_at_targets"][name].values()],
                 [v[k] for v in p["recall_at_targets"][ref].values()], p["target_differences"][k])
                for k, t in enumerate(p["targets"])]
        rows.append((f"band {_fmt(p['low'])}-{_fmt(p['high'])} (mean)", list(p["band_recall"][name].values()),
                     list(p["band_recall"][ref].values()), p["difference"]))
        for label, a, r, d in rows:
            diff = "-" if not d else f"{_fmt(d['mean'], sign=True)} {_ci(*d['t_ci'])}, p = {d['p_value']:.3g}"
            lines.append(f"| {name} - {ref} | {label} | {_fmt(float(np.mean(a)))} | {_fmt(float(np.mean(r)))} | {diff} "
                         f"| {_fmt(d['sd']) if d else '-'} | {_fmt(d.get('detectable')) if d else '-'} |")
    return lines + [""]


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
    from iaseg.metrics.figures import _figure, _save, method_color

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
            if name == order[0]:  # a few offsets written on the reference's curve: what moves along it
                for d in (0.0, 1.0, 2.0):
                    k = int(np.argmin(np.abs(mean["delta"] - d)))
                    if abs(mean["delta"][k] - d) < 1e-6 and np.isfinite(mean[x][k]):
                        ax.annotate(f"{d:+g}" if d else "0", (100 * mean[x][k], 100 * mean["group_recall"][k]),
                                    xytext=(6, 5), textcoords="offset points", fontsize=8, color="0.2",
                                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 0.8})
    for name, per_seed in f.get("points", {}).items():
        color = method_color(order.index(name))
        for ax, x in ((axes[0], "mean_iou"), (axes[1], "group_precision")):
            xs = [100 * p[x] for p in per_seed.values()]
            ys = [100 * p["group_recall"] for p in per_seed.values()]
            ax.plot(xs, ys, "D", color=color, ms=6, mfc="none", mew=1.5, label=f"{name} (no frontier)")
    axes[0].axvline(100 * f["target_mean_iou"], color="0.4", ls="--", lw=1,
                    label=f"{study['reference']} mean IoU - {100 * f['margin']:.1f}")
    g = f["group"]
    along = f"offset on {f['set']} logits"
    axes[0].set(xlabel="mean IoU (%)", ylabel=f"{g} recall (%)", title=f"mean IoU vs {g} recall, {along}")
    axes[1].set(xlabel=f"{g} precision (%)", ylabel=f"{g} recall (%)", title=f"{g} precision vs recall, {along}")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left", title=f"curves: {along}; numbers: offsets on {order[0]}'s",
                   title_fontsize=8)
    fig.supxlabel("dot: offset 0 (plain argmax); band: ±1 SD over seeds; thin: one seed"
                  + ("; diamonds: runs without a frontier" if f.get("points") else ""), fontsize=8, color="0.3")
    return _save(fig, out_png)


def plot_seeds(study: Mapping[str, Any], out_png: str | Path) -> Path:
    """Per-seed values of mean IoU and the top group's recall and precision, one colour per
    method, lines joining the runs of one seed (the pairing)."""
    from iaseg.metrics.figures import _figure, _save, method_color

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
    from iaseg.metrics.figures import _figure, _save, method_color

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
