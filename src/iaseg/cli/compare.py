"""`iaseg compare A B --out DIR`: two runs side by side in the layout of the paper's Tables II and
V, with deltas B - A, a per-class recall/precision bar chart and, given the two checkpoints and a
dataset, a Fig. 7-style overlay (ground truth vs A vs B for the most important group) and, with
--crops N, Fig. 4-style boundary crops (image, label, A, B; iaseg.engine.crops).

`iaseg compare --group CE RUN ... --group IAL RUN ... --out DIR`: N methods over paired seeds
(iaseg.evidence.study): means with CIs, paired differences, hierarchical bootstrap, matched
operating points on the offset frontiers; study.md/.json, seeds.png, frontier.png, trimap.png.

`iaseg compare --pool GPU=STUDY CPU=STUDY --out DIR`: finished studies pooled with one stratum each,
paired within stratum (iaseg.evidence.pool); pooled.md/.json.

`--group` and two-run comparisons also write report.html: the Markdown report's tables and the
figures in one self-contained page."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, add_device_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", nargs="?", help="first run: a report.json or a run folder (report.json, eval/report.json)")
    p.add_argument("b", metavar="B", nargs="?", help="second run, compared against A (deltas are B - A)")
    p.add_argument("--out", required=True, help="output folder for comparison.md/.json and the figures")
    p.add_argument("--group", nargs="+", action="append", metavar=("NAME", "RUN"),
                   help="a method and its runs, one per seed (run or evaluation folders, report.json files); "
                        "repeat for each method: a multi-seed study instead of A vs B")
    p.add_argument("--pool", nargs="+", metavar="NAME=STUDY",
                   help="pool studies of `compare --group` (study.json or its folder), one stratum each (e.g. one "
                        "training protocol): methods paired with the reference within each stratum, pooled over all "
                        "pairs; writes pooled.md/.json")
    p.add_argument("--methods", nargs="+", metavar="METHOD",
                   help="with --pool: the methods to pool (default: every method all studies share)")
    p.add_argument("--reference", help="with --group: the method the others are compared with (default: the first)")
    p.add_argument("--frontier-set", help="with --group: the offset set of frontier.json (default: its first)")
    p.add_argument("--bootstrap-samples", type=int, default=10_000, help="with --group: resamples (default 10000)")
    p.add_argument("--block-len", type=int, default=10,
                   help="with --group: consecutive frames per block of the hierarchical bootstrap (default 10)")
    p.add_argument("--band", type=float, default=2.0, metavar="POINTS",
                   help="with --group: width in points of mean IoU of the band-matched comparison, below the highest "
                        "mean IoU every seed of a pair reaches (default 2)")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), help="display names (default: run folder names)")
    p.add_argument("--checkpoints", nargs=2, metavar=("CKPT_A", "CKPT_B"),
                   help="checkpoints of A and B: adds a Fig. 7-style overlay of the most important group")
    p.add_argument("--dataset", help="dataset for the overlay (default: the one A was trained on)")
    p.add_argument("--root", help="dataset folder for the overlay (default: A's training root)")
    p.add_argument("--split", default="val", help="split for the overlay (default: val)")
    p.add_argument("--images", type=int, default=4, help="number of overlay images (default: 4)")
    add_device_argument(p, "cpu", "the overlay's and crops' forward passes")
    p.add_argument("--crops", type=int, default=0, metavar="N",
                   help="with --checkpoints: also a Fig. 4-style figure of N boundary crops (image, label, A, B), "
                        "chosen from the labels only, at the labels' resolution (crops.png; any network)")
    p.add_argument("--crop-size", type=int, default=120, help="crop side in label pixels (default: 120)")
    p.add_argument("--crop-classes", help="comma-separated classes whose boundaries choose the crops "
                                          "(default: the most important group)")
    p.add_argument("--paper", metavar="DATASET",
                   help="add the paper's published CE and IAL results (camvid: Table II, cityscapes: Tables "
                        "III-IV; Table V) next to ours, in comparison.md/.json and paper_vs_ours.png; A must be "
                        "the CE run and B the IAL run")


def run(args: argparse.Namespace) -> int:
    from iaseg.checkpoint import CheckpointError
    from iaseg.engine.overlay import overlay_from_checkpoints
    from iaseg.evidence.compare import compare_reports, write_comparison_md
    from iaseg.metrics.html import markdown_page

    from .common import device_from

    if args.pool:
        return _pool(args)
    if args.group:
        return _study(args)
    if not (args.a and args.b):
        raise CLIError("give two runs A B, or methods with --group NAME RUN [RUN ...]")
    if not args.checkpoints and (args.dataset or args.root):
        raise CLIError("--dataset/--root are for the overlay and need --checkpoints CKPT_A CKPT_B")
    if args.images < 1:
        raise CLIError(f"--images must be >= 1, got {args.images}")
    if args.crops and not args.checkpoints:
        raise CLIError("--crops needs --checkpoints CKPT_A CKPT_B")
    if args.crops < 0 or args.crop_size < 8:
        raise CLIError(f"--crops must be >= 0 and --crop-size >= 8, got {args.crops} and {args.crop_size}")
    result = compare_reports(args.a, args.b, args.names, args.out, paper=args.paper)
    names = result["comparison"]["names"]
    extended = False  # comparison.md is rewritten once, after every addition
    runs = [Path(x) for x in (args.a, args.b)]
    if all((r / "metrics.jsonl").is_file() for r in runs):
        from iaseg.metrics.figures import plot_curves_comparison

        fig = plot_curves_comparison(dict(zip(names, runs)), Path(args.out) / "curves.png")
        result["figures"].append(fig)
        result["files"]["curves"] = fig
        extended = True
    if args.checkpoints:
        try:
            fig = overlay_from_checkpoints(args.checkpoints, names, Path(args.out) / "overlay.png",
                                           dataset=args.dataset, root=args.root, split=args.split,
                                           images=args.images, device=device_from(args.device))
        except (CheckpointError, ValueError, FileNotFoundError, KeyError) as e:
            if extended:
                write_comparison_md(result, args.out)
            raise CLIError(f"overlay: {e}") from None
        else:
            result["figures"].append(fig)
            result["files"]["overlay"] = fig
            extended = True
    if args.crops:
        from iaseg.engine.crops import boundary_crops

        classes = [c.strip() for c in args.crop_classes.split(",") if c.strip()] if args.crop_classes else None
        try:
            fig, crops = boundary_crops(args.checkpoints, names, Path(args.out) / "crops.png", dataset=args.dataset,
                                        root=args.root, split=args.split, crops=args.crops, size=args.crop_size,
                                        classes=classes, device=device_from(args.device))
        except (CheckpointError, ValueError, FileNotFoundError, KeyError) as e:
            if extended:
                write_comparison_md(result, args.out)
            raise CLIError(f"crops: {e}") from None
        for c in crops:
            print(f"crop {c['image']} at {tuple(c['window'][:2])}: {c['boundary_pixels']} boundary pixels; boundary F "
                  f"{names[0]} {c['boundary_f'][0]:.1f}, {names[1]} {c['boundary_f'][1]:.1f}")
        result["figures"].append(fig)
        result["files"]["crops"] = fig
        extended = True
    if extended:
        write_comparison_md(result, args.out)
    result["files"]["html"] = markdown_page(Path(args.out) / "report.html", result["files"]["md"],
                                            f"Comparison: {names[0]} vs {names[1]}")
    print(result["summary"])
    print("wrote " + ", ".join(str(p) for p in result["files"].values()))
    return 0


def _study(args: argparse.Namespace) -> int:
    from iaseg.evidence.study import build_study
    from iaseg.metrics.html import markdown_page
    from iaseg.evidence.study_report import write_study

    if args.a or args.b or args.checkpoints or args.paper:
        raise CLIError("--group compares methods over seeds: drop A B, --checkpoints and --paper")
    methods: dict[str, list[str]] = {}
    for name, *runs in args.group:
        if not runs:
            raise CLIError(f"--group {name}: give the method's runs after its name")
        if name in methods:
            raise CLIError(f"--group {name} is given twice")
        methods[name] = runs
    if args.bootstrap_samples < 100 or args.block_len < 1:
        raise CLIError("--bootstrap-samples must be >= 100 and --block-len >= 1")
    if not 0.0 < args.band <= 100.0:
        raise CLIError(f"--band must be in (0, 100] points of mean IoU, got {args.band}")
    study = build_study(methods, reference=args.reference, frontier_set=args.frontier_set,
                        n_boot=args.bootstrap_samples, block_len=args.block_len, band=args.band / 100.0)
    paths = write_study(study, args.out)
    paths["html"] = markdown_page(Path(args.out) / "report.html", paths["md"], "Multi-seed study",
                                  [p for k, p in paths.items() if k not in ("json", "md")])
    print("\n".join(study["summary"]))
    for note in study["notes"]:
        print(f"note: {note}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _pool(args: argparse.Namespace) -> int:
    from iaseg.evidence.pool import load_study, pool_studies, write_pooled

    if args.group or args.a or args.b or args.checkpoints or args.paper:
        raise CLIError("--pool pools finished studies: drop A B, --group, --checkpoints and --paper")
    sources: dict[str, str] = {}
    for item in args.pool:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CLIError(f"--pool {item}: give NAME=STUDY (a stratum's name and its study.json or folder)")
        if name in sources:
            raise CLIError(f"--pool: stratum {name!r} is given twice")
        sources[name] = path
    if args.bootstrap_samples < 100:
        raise CLIError("--bootstrap-samples must be >= 100")
    studies = {name: load_study(path) for name, path in sources.items()}
    pooled = pool_studies(studies, methods=args.methods, n_boot=args.bootstrap_samples)
    paths = write_pooled(pooled, args.out, sources)
    print("\n".join(pooled["summary"]))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
