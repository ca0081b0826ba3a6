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
  (matched operating points: at the common target, and per seed at the reference seed's own
  mean IoU), and a lower-variance matched estimator that loses no seed: group recall at fixed
  mean-IoU targets every seed of a pair reaches, and averaged over a band of mean IoU (the area
  between the frontiers per point of mean IoU); a method without frontiers (e.g. runs scored
  with a decision rule) is kept as points for the frontier figure.
The words, tables and figures of a study are in iaseg.evidence.study_report.
Verdicts ("not resolved at this precision") follow the t CI; with n seeds the smallest possible
two-sided sign-flip p is 2 / 2^n (0.0625 for 5 seeds), which the report states.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from iaseg.metrics.report import ReportError, find_report, load_report, require_reports
from iaseg.metrics.tables import LABELS, group_members

from .study_report import summary_lines

MATCH_MARGIN = 0.005  # matched operating point: the reference's mean IoU minus 0.5 points
BAND_WIDTH = 0.02  # matched band: 2 points of mean IoU below the highest one every seed of a pair reaches
BAND_STEP = 0.005  # fixed mean-IoU targets every 0.5 points across the band


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
                n_boot: int = 10_000, block_len: int = 10, seed: int = 0,
                band: float = BAND_WIDTH) -> dict[str, Any]:
    """The statistics of a multi-seed comparison as a JSON-able dict (see the module doc).
    `band`: the width (a fraction of mean IoU) of the band-matched comparison."""
    from .stats import seed_summary

    if len(methods) < 1 or any(len(p) == 0 for p in methods.values()):
        raise ReportError("every --group needs at least one run")
    require_reports([p for paths in methods.values() for p in paths])
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
        study["differences"][name] = {
            label: _paired({s: _get(rs[s]["report"], path) for s in shared},
                           {s: _get(ref[s]["report"], path) for s in shared}, shared, n_boot, seed)
            for label, path in keys}
    if bootstrap:
        study["bootstrap"] = _bootstrap(runs, reference, paired_ok, groups, n_boot, block_len, seed, study["notes"])
    if frontier:
        study["frontier"] = _frontier(runs, reference, paired_ok, groups, frontier_set, n_boot, seed, study["notes"],
                                      band)
    study["summary"] = summary_lines(study)
    return study


def _summary(fn: Any, values: Mapping[Any, float]) -> dict[str, Any] | None:
    try:
        return asdict(fn(values))
    except ValueError:
        return None


def _paired(a: Mapping[Any, float], b: Mapping[Any, float], seeds: Sequence[Any], n_boot: int,
            seed: int) -> dict[str, Any] | None:
    """The paired differences a - b over `seeds` as a dict; None without seeds or when the value
    is undefined (NaN) for every seed."""
    from .stats import paired_differences

    if not seeds:
        return None
    try:
        return asdict(paired_differences({s: a[s] for s in seeds}, {s: b[s] for s in seeds}, n_boot=n_boot, seed=seed))
    except ValueError:
        return None


def _recall_at(curves: Mapping[Any, Mapping[str, Sequence[float]]], targets: Mapping[Any, float],
               seeds: Sequence[Any] | None = None) -> dict[Any, float]:
    """Each seed's highest group recall on its frontier at a mean IoU of at least its target
    (NaN where the curve stays below it), for `seeds` (default: every seed of `curves`)."""
    from iaseg.metrics.frontier import recall_at_iou

    return {s: recall_at_iou(curves[s]["mean_iou"], curves[s]["group_recall"], targets[s])
            for s in (list(curves) if seeds is None else seeds)}


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
    from iaseg.metrics.per_image import load_per_image
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
              notes: list[str], band: float = BAND_WIDTH) -> dict[str, Any] | None:
    """Matched operating points on the offset frontiers. A method whose runs do not all have
    frontier.json (e.g. a model scored with a decision rule) has no curve: its runs are kept as
    points (mean IoU, group recall, group precision) for the figure, without a matched recall."""
    from iaseg.metrics.frontier import frontier_curves, load_frontier
    from .stats import seed_summary

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
    matched = {name: _recall_at(cs, dict.fromkeys(cs, target)) for name, cs in curves.items()}
    out: dict[str, Any] = {"set": set_name, "group": group, "target_mean_iou": target,
                           "margin": MATCH_MARGIN, "curves": curves, "points": points, "matched_recall": matched,
                           "methods": {name: _summary(seed_summary, m) for name, m in matched.items()},
                           "differences": {}}
    for name, shared in paired.items():
        if name not in matched or reference not in matched:
            out["differences"][name] = None
            continue
        out["differences"][name] = _paired(matched[name], matched[reference], shared, n_boot, seed)
        if shared and out["differences"][name] is None:
            notes.append(f"{name}: no seed reaches the matched mean IoU {100 * target:.1f} on its frontier")
    out["per_seed"] = _per_seed_match(runs, curves, reference, paired, n_boot, seed, notes)
    out["band"] = _band_match(curves, reference, paired, band, n_boot, seed, notes)
    return out


def _per_seed_match(runs: Mapping[str, Mapping[Any, dict[str, Any]]], curves: Mapping[str, Mapping[Any, Any]],
                    reference: str, paired: Mapping[str, list], n_boot: int, seed: int,
                    notes: list[str]) -> dict[str, Any] | None:
    """Matched operating points per paired seed: seed s is compared at the reference run's own
    mean IoU minus the margin, so no reference seed is lost (its plain argmax qualifies), where
    the common target (the reference's mean over seeds) drops every seed whose curve stays below
    it. A method's run that reaches its seed's target at no offset is left out, which favours that
    method: a note says so."""
    if reference not in curves:
        return None
    targets = {s: _get(r["report"], ("mean", "iou")) - MATCH_MARGIN for s, r in runs[reference].items()}
    recall = {reference: _recall_at(curves[reference], targets)}
    differences: dict[str, Any] = {}
    for name, shared in paired.items():
        if name not in curves:
            continue
        recall[name] = _recall_at(curves[name], targets, shared)
        missed = [s for s in shared if math.isnan(recall[name][s])]
        if missed:
            notes.append(f"per-seed matching: {name} seed(s) {', '.join(map(str, missed))} do not reach the mean IoU of "
                         f"{reference}'s run of the same seed minus {100 * MATCH_MARGIN:.1f} at any offset (the whole "
                         f"curve lies below it); left out of that difference, which favours {name}")
        differences[name] = _paired(recall[name], recall[reference], shared, n_boot, seed)
    return {"targets": targets, "matched_recall": recall, "differences": differences}


def _band_match(curves: Mapping[str, Mapping[Any, Any]], reference: str, paired: Mapping[str, list], width: float,
                n_boot: int, seed: int, notes: list[str]) -> dict[str, Any] | None:
    """Matched comparison at mean-IoU values every seed of a pair reaches. For each method and
    the reference over their shared seeds, the band is [high - width, high], where high is the
    lowest of the curves' highest mean IoU (so no seed is lost, unlike the common target, and no
    target moves with one seed's noise, unlike per-seed matching); it is narrowed where a curve
    does not extend that far down. Per seed: the group recall at fixed targets every BAND_STEP
    from high down, and its mean over the band (`band_recall`); paired differences of both."""
    from iaseg.metrics.frontier import band_recall, curve_span, recall_at_iou

    if reference not in curves:
        return None
    if not width > 0:
        raise ReportError(f"the mean-IoU band must be wider than 0, got {width}")
    pairs: dict[str, Any] = {}
    for name, shared in paired.items():
        if name not in curves or not shared:
            continue
        spans = [curve_span(curves[m][s]["mean_iou"]) for m in (name, reference) for s in shared]
        high = min(hi for _, hi in spans)
        low = max(high - width, max(lo for lo, _ in spans))
        if not high > low:
            notes.append(f"band matching: the frontiers of {name} and {reference} share no mean-IoU range")
            pairs[name] = None
            continue
        if low > high - width + 1e-12:
            notes.append(f"band matching: {name} - {reference} band narrowed to {100 * (high - low):.2f} points "
                         "(a curve ends above high - width)")
        targets = [high - k * BAND_STEP for k in range(int((high - low) / BAND_STEP + 1e-9) + 1)]
        at = {m: {s: [recall_at_iou(curves[m][s]["mean_iou"], curves[m][s]["group_recall"], t) for t in targets]
                  for s in shared} for m in (name, reference)}
        area = {m: {s: band_recall(curves[m][s]["mean_iou"], curves[m][s]["group_recall"], low, high)
                    for s in shared} for m in (name, reference)}
        pairs[name] = {
            "seeds": list(shared), "low": low, "high": high, "targets": targets,
            "recall_at_targets": at, "band_recall": area,
            "target_differences": [_paired({s: at[name][s][k] for s in shared},
                                           {s: at[reference][s][k] for s in shared}, shared, n_boot, seed)
                                   for k in range(len(targets))],
            "difference": _paired(area[name], area[reference], shared, n_boot, seed),
        }
    return {"width": width, "step": BAND_STEP, "pairs": pairs}
