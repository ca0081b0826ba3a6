"""`iaseg model-info NAME`: parameters and GFLOPs in a small table."""
from __future__ import annotations

import argparse

from iaseg.models import MODELS, is_import_path

from .common import CLIError, parse_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="*", default=list(MODELS), help=f"model names or 'package.module:factory' paths (default: all of {sorted(MODELS)})")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--size", type=parse_size, default=(360, 720), help="context input HxW (default 360x720)")
    p.add_argument("--spatial-size", type=parse_size, default=None,
                   help="BiERF-PSPNet spatial input HxW (default: 1024x2048 for a 360x720 context)")


def run(args: argparse.Namespace) -> int:
    from iaseg.models import build_model, describe, example_inputs, format_table

    rows = []
    for name in args.name:
        if name not in MODELS and not is_import_path(name):
            raise CLIError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
        model = build_model(name, args.num_classes)
        inputs = example_inputs(name, args.size, spatial_size=args.spatial_size)
        info = describe(model, inputs)
        size = " + ".join("x".join(str(s) for s in t.shape[-2:]) for t in inputs)
        rows.append({"model": name, "classes": args.num_classes, "input": size,
                     "params": info["params"], "GFLOPs": info["gflops"]})
    print(format_table(rows, ["model", "classes", "input", "params", "GFLOPs"]))
    return 0
