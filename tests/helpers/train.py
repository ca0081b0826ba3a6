"""Tiny training runs for the engine and CLI tests."""
import os
from pathlib import Path

import torch

from iaseg.engine.config import load_config
from iaseg.engine.trainer import Trainer


REPO = Path(__file__).resolve().parents[2]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def tiny(*overrides: str):
    return load_config("tiny_synthetic", ["train.tensorboard=false", *overrides])


def fit(cfg, out, **kw):
    trainer = Trainer(cfg, out, progress=False, **kw)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
