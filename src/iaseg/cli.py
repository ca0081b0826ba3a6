"""The `iaseg` command line: a thin dispatcher.

Each sub-command lives in its own module, which defines `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when their command runs, so `iaseg --help` stays
fast and a broken optional dependency breaks only its own command.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("iaseg.engine.train_cli", "train a model from a YAML config"),
    "evaluate": ("iaseg.evaluate", "evaluate a checkpoint: per-class and per-group P/R/IoU report"),
    "compare": ("iaseg.metrics.compare", "compare two runs or reports side by side (paper Tables II/V)"),
    "predict": ("iaseg.predict", "segment an image, a folder or a video"),
    "demo": ("iaseg.demo", "train CE vs IAL on synthetic street scenes and report the difference"),
    "calibrate": ("iaseg.decision", "fit an importance-aware decision rule to recall/precision targets"),
    "benchmark": ("iaseg.benchmark", "measure inference/training speed of the networks"),
    "export": ("iaseg.export", "export a checkpoint to ONNX or TorchScript with a parity check"),
    "model-info": ("iaseg.models.info", "parameter count and GFLOPs of a network"),
    "data": ("iaseg.data.cli", "dataset tools: check, weights, download"),
}


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iaseg",
        description="Importance-aware real-time semantic segmentation (ERF-PSPNet, BiERF-PSPNet, IAL).",
    )
    parser.add_argument("--version", action="version", version=f"iaseg {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _version() -> str:
    from iaseg import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except CLIError as e:
        print(f"iaseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iaseg {args.command}: interrupted", file=sys.stderr)
        return 130
