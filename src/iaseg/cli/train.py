"""`iaseg train --config FILE --out RUN_DIR [--resume | --overwrite] [--set section.key=value ...]`."""
from __future__ import annotations

import argparse
import shlex
import sys

from .common import add_device_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True,
                   help="experiment YAML, or the name of a shipped config (e.g. camvid_erfpspnet_ial)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, TensorBoard)")
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/last.pt (optim.lr, train.epochs, train.batch_size, ... may change; "
                        "the model, data and loss may not)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a RUN_DIR that holds another run (deletes its checkpoints and logs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set optim.lr=1e-4")
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--root", help="shortcut for --set data.root=DIR")
    add_device_argument(p, None, "shortcut for --set train.device=...")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch only)")


def run(args: argparse.Namespace) -> int:
    from .common import CLIError, config_overrides
    from iaseg.engine.config import load_config
    from iaseg.engine.trainer import Trainer, TrainingError, TrainingInterrupted

    if args.resume and args.overwrite:
        raise CLIError("--resume continues the run in --out, --overwrite deletes it: give one of them")
    overrides = config_overrides(args)
    # config, dataset and resume problems raise here; iaseg.cli.main prints them as one line
    cfg = load_config(args.config, overrides)
    trainer = Trainer(cfg, args.out, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite,
                      command=["iaseg", *sys.argv[1:]])
    try:
        trainer.fit()
    except TrainingInterrupted as e:
        cmd = shlex.join(a for a in sys.argv[1:] if a not in ("--resume", "--overwrite"))
        print(f"interrupted: saved {e.checkpoint}. Resume with: iaseg {cmd} --resume", file=sys.stderr)
        return 130
    except TrainingError as e:  # diverged mid-run: exit 1, unlike bad input
        print(f"iaseg train: error: {e}", file=sys.stderr)
        return 1
    finally:
        trainer.close()
    if trainer.dist.is_main:
        best = trainer.out / "best.pt"
        print(f"done: {trainer.out / 'last.pt'}" + (f", best {trainer.cfg.train.best_metric} "
                                                     f"{trainer.best:.4f} in {best}" if best.exists() else ""))
    return 0
