"""Replace weights/camvid_erfpspnet_{ce,ial}.pt by the median-mean-IoU seed of the CPU study
(last epoch, issue 13), with their val reports and the CE file's checked int8 IRs.

    python results/camvid_study/ship_weights.py --runs /work/runs/camvid_study --root ../shared/data/camvid
    python results/camvid_study/ship_weights.py ... --dry-run     # the per-seed table and the choice only

A seed counts when its run finished all epochs and the sweep evaluated it (eval_val/report.json).
With an even number of seeds the lower of the two middle ones is taken (never an average of two
runs). Runs `iaseg export --format checkpoint --half`, `iaseg evaluate` (fp32, val) and
weights/make_int8.sh; prints the per-seed table for weights/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
METHODS = {"ce": "camvid_erfpspnet_ce", "ial": "camvid_erfpspnet_ial"}


def finished_seeds(method_dir: Path) -> list[dict]:
    """Per finished and evaluated seed: seed, run folder, epoch, val mean IoU and G3 recall (%)."""
    rows = []
    for run in sorted(method_dir.glob("seed*"), key=lambda p: int(p.name[4:])):
        report, metrics = run / "eval_val" / "report.json", run / "metrics.jsonl"
        if not (report.is_file() and metrics.is_file() and (run / "last.pt").is_file()):
            continue
        epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines() if line.strip()]
        config = (run / "config.yaml").read_text()
        total = next((int(line.split(":")[1]) for line in config.splitlines() if line.strip().startswith("epochs:")), None)
        if not epochs or total is None or max(epochs) != total:
            continue
        r = json.loads(report.read_text())
        rows.append({"seed": int(run.name[4:]), "run": run, "epoch": max(epochs), "miou": 100 * r["mean"]["iou"],
                     "g3_recall": 100 * r["groups"]["G3"]["recall"], "mean_p": 100 * r["mean"]["precision"],
                     "mean_r": 100 * r["mean"]["recall"]})
    return rows


def median_seed(rows: list[dict]) -> dict:
    """The run with the median mean IoU (the lower middle one for an even count)."""
    ordered = sorted(rows, key=lambda r: (r["miou"], r["seed"]))
    return ordered[(len(ordered) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, required=True, help="the study's sweep folder (METHOD/seedK/)")
    p.add_argument("--root", type=Path, required=True, help="CamVid root (val reports, int8 calibration and check)")
    p.add_argument("--iaseg", default=shutil.which("iaseg") or "iaseg", help="the iaseg command to run")
    p.add_argument("--min-seeds", type=int, default=5, help="refuse with fewer finished seeds per method (default 5)")
    p.add_argument("--dry-run", action="store_true", help="print the table and the choice, write nothing")
    args = p.parse_args(argv)
    chosen = {}
    for method in METHODS:
        rows = finished_seeds(args.runs / method)
        print(f"{method}: | seed | epoch | mean P / R / IoU | G3 recall |")
        for r in rows:
            print(f"{method}: | {r['seed']} | {r['epoch']} | {r['mean_p']:.1f} / {r['mean_r']:.1f} / {r['miou']:.1f} "
                  f"| {r['g3_recall']:.1f} |")
        if len(rows) < args.min_seeds:
            print(f"{method}: {len(rows)} finished seeds, fewer than --min-seeds {args.min_seeds}: nothing shipped",
                  file=sys.stderr)
            return 1
        chosen[method] = median_seed(rows)
        print(f"{method}: median mean IoU seed {chosen[method]['seed']} ({chosen[method]['miou']:.2f})")
    if args.dry_run:
        return 0
    for method, row in chosen.items():
        out = REPO / "weights" / f"{METHODS[method]}.pt"
        subprocess.run([args.iaseg, "export", "--checkpoint", str(row["run"] / "last.pt"), "--format", "checkpoint",
                        "--half", "--out", str(out)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([args.iaseg, "evaluate", "--checkpoint", str(out), "--root", str(args.root), "--split", "val",
                            "--out", tmp, "--no-progress"], check=True)
            shutil.copy(Path(tmp) / "report.json", out.with_name(f"{METHODS[method]}.val_report.json"))
    subprocess.run(["bash", str(REPO / "weights" / "make_int8.sh"), str(args.root)], check=True,
                   env={**os.environ, "IASEG": args.iaseg})
    print("shipped; now update weights/README.md (table above, commands, dates) and docs/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
