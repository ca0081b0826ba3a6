"""`iaseg sweep --config [NAME=]CONFIG ... --seeds 0-4 --out DIR`: train and evaluate every
(config, seed), resumably; re-run the same command after an interruption to carry on."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", required=True, metavar="[NAME=]CONFIG",
                   help="a config name or file, optionally named (the run folder and the method's name): "
                        "--config ce=camvid_study_ce; repeat for each method")
    p.add_argument("--seeds", required=True, help="seeds to train, e.g. 0-4 or 0,2,5-6 (the same seeds for every config)")
    p.add_argument("--out", required=True, help="study folder: runs go to OUT/NAME/seed<k>/")
    p.add_argument("--root", help="dataset root (shortcut for --set data.root=DIR)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value of every config (repeatable)")
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--parallel", type=int, default=2, help="runs trained at the same time (default 2)")
    p.add_argument("--no-evaluate", action="store_true",
                   help="do not evaluate finished runs (default: `iaseg evaluate` of the last epoch on the "
                        "config's val split, with per-image counts and the offset frontier)")
    p.add_argument("--frontier", metavar="GROUP", default=None,
                   help="class group whose logits the evaluation's offset frontier shifts (default: the most important)")
    p.add_argument("--full-resolution", action="store_true",
                   help="evaluate at the labels' native resolution (logits upsampled; into RUN/eval_<split>_full/), "
                        "so that networks trained at different sizes are scored on the same pixels")
    p.add_argument("--status", action="store_true", help="print the state of every run and exit")


def run(args: argparse.Namespace) -> int:
    from .common import config_overrides
    from iaseg.engine.sweep import parse_seeds, plan_sweep, run_sweep, status_table

    overrides = config_overrides(args)
    jobs = plan_sweep(args.config, parse_seeds(args.seeds), args.out, overrides, full_resolution=args.full_resolution)
    evaluate = not args.no_evaluate
    if args.status:
        print("\n".join(status_table(jobs, evaluate)))
        return 0
    result = run_sweep(jobs, overrides, parallel=args.parallel, evaluate=evaluate, frontier=args.frontier)
    for job, why in result.failed:
        print(f"iaseg sweep: {job.label} failed: {why}")
    if result.interrupted:
        print("iaseg sweep: interrupted; run the same command again to carry on")
        return 130
    print(f"iaseg sweep: {len(result.done)}/{len(jobs)} runs done" + (f", {len(result.failed)} failed" if result.failed else ""))
    return 1 if result.failed else 0
