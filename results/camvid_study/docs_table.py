"""The study table of docs/results.md, printed from a study.json that `iaseg compare --group` wrote,
so the docs are copied from the statistics rather than typed:

    python results/camvid_study/docs_table.py results/camvid_study_gpu/study/study.json
    python results/camvid_study/docs_table.py results/camvid_study/study/study.json
    python results/camvid_study/docs_table.py results/camvid_loso/study/study.json "0006R0 (unseen), last epoch"

Rows: every seed of each method, mean ± SD [95 % t CI] per method, each method's paired difference
from the reference [t CI] with the sign-flip p, the smallest difference those seeds detect with 80 %
power (study.json's `detectable`), the hierarchical bootstrap (seeds, then blocks of consecutive
frames) of that difference, then the matched-operating-point lines (common target, per seed, over
the band of mean IoU every seed reaches). Values in %.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# the same number formats as the study.md that `iaseg compare` writes
from iaseg.evidence.study_report import _ci as interval
from iaseg.evidence.study_report import _fmt

METRICS = ("mean IoU", "G3 Recall", "G3 Precision")


def pct(v: float | None, sign: bool = False) -> str:
    return _fmt(v, sign=sign)


def table(study: dict, data: str = "CamVid val, last epoch") -> str:
    ref = study["reference"]
    methods = study["methods"]
    lines = [f"| run ({data}) | " + " | ".join(m.replace("Recall", "recall").replace(
        "Precision", "precision") for m in METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, m in methods.items():
        seeds = " / ".join(str(r["seed"]) for r in m["runs"])
        cells = [" / ".join(pct(v) for v in m["values"][k]) for k in METRICS]
        lines.append(f"| {name} seed {seeds} | " + " | ".join(cells) + " |")
    for name, m in methods.items():
        cells = []
        for k in METRICS:
            s = m["summary"][k]
            cells.append(f"{pct(s['mean'])} ± {pct(s['sd'])} {interval(s['low'], s['high'], False)}")
        lines.append(f"| **{name}**, mean ± SD [95 % CI] | " + " | ".join(cells) + " |")
    for name, diffs in study["differences"].items():
        cells = [f"{pct(diffs[k]['mean'], True)} {interval(*diffs[k]['t_ci'], True)}, p = {diffs[k]['p_value']:.2g}"
                 for k in METRICS]
        lines.append(f"| **{name} - {ref}**, paired [t CI], sign-flip p | " + " | ".join(cells) + " |")
        if all("detectable" in diffs[k] for k in METRICS):  # studies written since 2026-12-06
            cells = [pct(diffs[k]["detectable"]) for k in METRICS]
            lines.append(f"| {name} - {ref}, smallest difference detected with 80 % power | " + " | ".join(cells) + " |")
        boot = (study.get("bootstrap") or {}).get("differences", {}).get(name)
        if boot:
            cells = [f"{pct(boot[k][0], True)} {interval(boot[k][1], boot[k][2], True)}" for k in METRICS]
            blocks = study["bootstrap"]["block_len"]
            lines.append(f"| {name} - {ref}, hierarchical bootstrap (seeds, {blocks}-frame blocks) | "
                         + " | ".join(cells) + " |")
    f = study.get("frontier")

    def paired(name: str, d: dict) -> str:
        return (f"- {name} - {ref}, paired over seeds {', '.join(map(str, d['seeds']))}: {pct(d['mean'], True)} "
                f"{interval(*d['t_ci'], True)}, p = {d['p_value']:.2g}")

    if f:
        lines.append("")
        lines.append(f"Matched operating point: {f['group']} recall at mean IoU >= {pct(f['target_mean_iou'])} "
                     f"({ref}'s mean minus {100 * f['margin']:.1f}):")
        for name, s in f["methods"].items():
            reached = sum(v is not None for v in f["matched_recall"][name].values())
            total = len(f["matched_recall"][name])
            mean = f"{pct(s['mean'])} ± {pct(s['sd'])}" if s and s.get("mean") is not None else "-"
            lines.append(f"- {name}: {mean} ({reached} of {total} seeds reach that mean IoU)")
        for name, d in f["differences"].items():
            if d:
                lines.append(paired(name, d))
        ps = f.get("per_seed")  # absent from studies written before 2026-11-27
        if ps:
            lines.append(f"Matched per seed: seed s at {ref} seed s's mean IoU minus {100 * f['margin']:.1f}:")
            for name, d in ps["differences"].items():
                if d:
                    left = f"; seed(s) {', '.join(map(str, d['undefined_seeds']))} never reach it" \
                        if d["undefined_seeds"] else ""
                    lines.append(paired(name, d) + left)
        band = f.get("band")  # absent from studies written before 2026-12-06
        for name, p in ((band or {}).get("pairs") or {}).items():
            if p and p["difference"]:
                lines.append(f"Matched over the band of mean IoU {pct(p['low'])}-{pct(p['high'])} (every seed of both "
                             f"reaches it), {f['group']} recall averaged over the band:")
                lines.append(paired(name, p["difference"]) + f"; detectable with 80 % power: "
                             f"{pct(p['difference']['detectable'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    print(table(json.loads(Path(sys.argv[1]).read_text()), *sys.argv[2:]))
