"""The `iaseg` command line: the roof of the package. Nothing below `iaseg.cli` imports it.

Each sub-command lives in its own module, which defines `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when their command runs, so `iaseg --help` stays
fast and a broken optional dependency breaks only its own command.

Library code raises its own errors (DatasetError, DescriptionError, ConfigError,
DecisionRuleError, ReportError: all ValueErrors; CheckpointError, TrainingError, DownloadError,
WriteError);
`main` prints any of them, and a command's CLIError, as one line `iaseg CMD: error: ...` and
exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any

from .common import CLIError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("iaseg.cli.train", "train a model from a YAML config"),
    "sweep": ("iaseg.cli.sweep", "train and evaluate every (config, seed) of a study, resumably"),
    "evaluate": ("iaseg.cli.evaluate", "evaluate a checkpoint: per-class and per-group P/R/IoU report"),
    "compare": ("iaseg.cli.compare", "compare two runs or reports side by side (paper Tables II/V)"),
    "predict": ("iaseg.cli.predict", "segment an image, a folder or a video"),
    "demo": ("iaseg.cli.demo", "train CE vs IAL on synthetic street scenes and report the difference"),
    "calibrate": ("iaseg.cli.calibrate", "fit an importance-aware decision rule to recall/precision targets"),
    "benchmark": ("iaseg.cli.benchmark", "measure inference/training speed of the networks"),
    "export": ("iaseg.cli.export", "export a checkpoint to ONNX, TorchScript, OpenVINO IR or a slim checkpoint"),
    "model-info": ("iaseg.cli.model_info", "parameter count and GFLOPs of a network"),
    "data": ("iaseg.cli.data", "dataset tools: check, weights, download"),
}

__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]


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


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input rather than a bug. Imported only once an error is
    raised (the command has loaded torch by then), so `iaseg --help` stays fast."""
    from iaseg.checkpoint import CheckpointError
    from iaseg.data.download import DownloadError
    from iaseg.engine.trainer import TrainingError
    from iaseg.io import WriteError

    return (CLIError, ValueError, FileNotFoundError, CheckpointError, DownloadError, TrainingError, WriteError)


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error message (its type name if it has none)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _notes(command: str, show: Any) -> Any:
    """A showwarning that prints iaseg's own warnings (undefined per-class metrics, ...) as one
    line `iaseg CMD: note: ...`, without the source location meant for developers; other
    packages' warnings go to `show` unchanged."""
    def showwarning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                    line: Any = None) -> None:
        if category.__module__.split(".")[0] == "iaseg":
            print(f"iaseg {command}: note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


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
        with warnings.catch_warnings():
            warnings.showwarning = _notes(args.command, warnings.showwarning)
            return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"iaseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - user errors become one line, anything else propagates
        if not isinstance(e, user_errors()):
            raise
        print(f"iaseg {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
