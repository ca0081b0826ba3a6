"""Pooled analysis of several multi-seed studies of the same methods (`iaseg compare --pool`).

Each study (a study.json of `iaseg compare --group`) is one stratum, e.g. one training protocol
(CPU, GPU) whose numerics differ. A method is paired with the reference seed by seed *within* its
stratum (same seed, same protocol: same initialisation and data order), never across strata; the
pooled comparison then takes every such pair of every stratum: mean difference, Student-t CI and
an exact sign-flip p over all pairs (flipping a pair's sign is valid within its stratum), with the
smallest difference the pairs detect with 80 % power. The per-stratum differences are given beside
it, and the band-matched recall of `compare --group` (frontier.band) is pooled the same way.
Study values are fractions; a pair's key is "STRATUM:SEED".
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from iaseg.metrics.report import ReportError

from .study_report import _ci, _fmt, _verdict

HEADLINE = ("Recall", "Precision")  # of the top group, with mean IoU: the summary's metrics


def load_study(path: str | Path) -> dict[str, Any]:
    """A study.json (or the folder holding one) as written by `compare --group`."""
    p = Path(path)
    file = p / "study.json" if p.is_dir() else p
    if not file.is_file():
        raise ReportError(f"{path}: no study.json (write one with `iaseg compare --group ... --out DIR`)")
    try:
        study = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{file}: not a readable study.json ({e})") from None
    if not isinstance(study, dict) or study.get("format") != "iaseg.study/1":
        raise ReportError(f"{file}: not a study.json of `iaseg compare --group` (format iaseg.study/1)")
    return study


def _per_seed(study: Mapping[str, Any], method: str, label: str) -> dict[Any, float]:
    m = study["methods"][method]
    values = m["values"].get(label)
    if values is None:
        return {}
    return {run["seed"]: math.nan if v is None else float(v) for run, v in zip(m["runs"], values)}


def _pooled(a: Mapping[str, float], b: Mapping[str, float], n_boot: int, seed: int) -> dict[str, Any] | None:
    from .stats import paired_differences

    keys = [k for k in a if k in b]
    try:
        return asdict(paired_differences({k: a[k] for k in keys}, {k: b[k] for k in keys}, n_boot=n_boot, seed=seed))
    except ValueError:
        return None


def pool_studies(studies: Mapping[str, Mapping[str, Any]], methods: Sequence[str] | None = None,
                 n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Pool {stratum: study} (same reference, classes and groups in each): for every method the
    studies share (default: all but the reference), paired differences method - reference per
    metric over the pairs of all strata, and each stratum's own."""
    if len(studies) < 2:
        raise ReportError("pooling needs at least two studies (one per stratum)")
    names = list(studies)
    first = studies[names[0]]
    reference = first["reference"]
    for name, s in studies.items():
        if s["reference"] != reference:
            raise ReportError(f"stratum {name!r}: reference {s['reference']!r}, not {reference!r} as in {names[0]!r}")
        if s["classes"] != first["classes"] or s["groups"] != first["groups"]:
            raise ReportError(f"stratum {name!r}: classes or groups differ from {names[0]!r}'s")
    shared = [m for m in first["methods"] if m != reference and all(m in s["methods"] for s in studies.values())]
    methods = list(methods) if methods else shared
    for m in methods:
        if m not in shared:
            raise ReportError(f"method {m!r} is not in every study apart from the reference "
                              f"(shared: {', '.join(shared) or 'none'})")
    labels = [k for k in first["methods"][reference]["values"]
              if all(k in s["methods"][reference]["values"] for s in studies.values())]
    out: dict[str, Any] = {"format": "iaseg.pooled/1", "reference": reference, "strata": {}, "methods": {},
                           "groups": first["groups"], "notes": []}
    for name, s in studies.items():
        seeds = {m: [r["seed"] for r in s["methods"][m]["runs"]] for m in [reference, *methods]}
        out["strata"][name] = {"methods": seeds}
    for m in methods:
        pooled: dict[str, Any] = {}
        strata: dict[str, Any] = {}
        for label in labels:
            a, b = {}, {}
            for name, s in studies.items():
                va, vb = _per_seed(s, m, label), _per_seed(s, reference, label)
                for sd in va:
                    if sd in vb:  # paired within the stratum only
                        a[f"{name}:{sd}"], b[f"{name}:{sd}"] = va[sd], vb[sd]
                strata.setdefault(name, {})[label] = (s["differences"].get(m) or {}).get(label)
            pooled[label] = _pooled(a, b, n_boot, seed)
        band = _pool_band(studies, m, reference, n_boot, seed)
        out["methods"][m] = {"pooled": pooled, "strata": strata, "band": band}
    top = list(first["groups"])[-1] if first["groups"] else None
    out["summary"] = _summary(out, top)
    return out


def _pool_band(studies: Mapping[str, Mapping[str, Any]], method: str, reference: str, n_boot: int,
               seed: int) -> dict[str, Any] | None:
    """The band-matched recall (each stratum's own band) pooled over the strata's pairs; None
    when a study has no band for the method."""
    a, b, bands = {}, {}, {}
    for name, s in studies.items():
        pair = (((s.get("frontier") or {}).get("band") or {}).get("pairs") or {}).get(method)
        if not pair:
            return None
        bands[name] = [pair["low"], pair["high"]]
        for sd in pair["band_recall"][method]:
            a[f"{name}:{sd}"] = pair["band_recall"][method][sd]
            b[f"{name}:{sd}"] = pair["band_recall"][reference][sd]
    return {"bands": bands, "difference": _pooled(a, b, n_boot, seed)}


def _summary(pooled: Mapping[str, Any], top: str | None) -> list[str]:
    ref = pooled["reference"]
    strata = ", ".join(f"{k} ({len(v['methods'][ref])} seeds)" for k, v in pooled["strata"].items())
    labels = [f"{top} {k}" for k in HEADLINE] if top else []
    lines = []
    for m, r in pooled["methods"].items():
        for label in labels + ["mean IoU"]:
            d = r["pooled"].get(label)
            if d:
                lines.append(f"{m} - {ref}, {label}, pooled over {strata}, paired within stratum: "
                             f"{_fmt(d['mean'], sign=True)} points (95 % CI {_ci(*d['t_ci'])}, sign-flip p = "
                             f"{d['p_value']:.3g}, n = {d['n']} pairs): {_verdict(d, power=True)}.")
        band = r.get("band")
        if band and band["difference"] and top:
            d = band["difference"]
            lines.append(f"{m} - {ref}, {top} recall averaged over each stratum's matched mean-IoU band, pooled: "
                         f"{_fmt(d['mean'], sign=True)} points (95 % CI {_ci(*d['t_ci'])}, sign-flip p = "
                         f"{d['p_value']:.3g}, n = {d['n']} pairs): {_verdict(d, power=True)}.")
    return lines


def pooled_markdown(pooled: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> str:
    ref = pooled["reference"]
    strata = list(pooled["strata"])
    lines = ["# Pooled comparison over strata", "",
             f"Reference **{ref}**; pairs are formed within each stratum (same seed, same protocol) and pooled. "
             "Values in points (%). Difference [95 % Student-t CI], exact sign-flip p over all pairs, SD of the "
             "per-pair differences, and the smallest true difference the pairs detect with 80 % power "
             "(two-sided t test, alpha 0.05, at that SD). The summary's metrics (the top group's recall and "
             "precision, mean IoU, band-matched recall) are the ones to judge; the table's other rows are many "
             "comparisons at once, of which about 1 in 20 excludes 0 by chance alone.", ""]
    for name, s in pooled["strata"].items():
        src = f" ({sources[name]})" if sources and name in sources else ""
        lines.append(f"- stratum **{name}**{src}: " + "; ".join(f"{m} seeds {v}" for m, v in s["methods"].items()))
    lines += ["", "## Summary", ""] + [f"- {x}" for x in pooled["summary"]] + [""]
    for m, r in pooled["methods"].items():
        lines += [f"## {m} - {ref}", "",
                  "| metric | pooled [t CI], p | n | SD | detectable | verdict | " + " | ".join(strata) + " |",
                  "|---|---:|---:|---:|---:|---|" + "---:|" * len(strata)]
        rows = [(label, d, [r["strata"][k].get(label) for k in strata]) for label, d in r["pooled"].items()]
        band = r.get("band")
        if band and band["difference"]:
            bands = ", ".join(f"{k} {_fmt(lo)}-{_fmt(hi)}" for k, (lo, hi) in band["bands"].items())
            rows.insert(0, (f"band-matched recall (bands {bands})", band["difference"], [None] * len(strata)))
        for label, d, per in rows:
            if not d:
                continue
            cells = ["-" if not x else f"{_fmt(x['mean'], sign=True)} {_ci(*x['t_ci'])}, p = {x['p_value']:.3g}"
                     for x in per]
            lines.append(f"| {label} | {_fmt(d['mean'], sign=True)} {_ci(*d['t_ci'])}, p = {d['p_value']:.3g} "
                         f"| {d['n']} | {_fmt(d['sd'])} | {_fmt(d.get('detectable'))} | {_verdict(d)} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_pooled(pooled: Mapping[str, Any], out_dir: str | Path, sources: Mapping[str, str] | None = None
                 ) -> dict[str, Path]:
    """pooled.json and pooled.md in out_dir."""
    from iaseg.io import atomic_write_bytes

    from iaseg.io import json_safe as _jsonable

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = dict(pooled)
    if sources:
        data["sources"] = dict(sources)
    paths = {"json": out / "pooled.json", "md": out / "pooled.md"}
    atomic_write_bytes(paths["json"], json.dumps(_jsonable(data), indent=1, allow_nan=False).encode())
    atomic_write_bytes(paths["md"], (pooled_markdown(pooled, sources) + "\n").encode())
    return paths
