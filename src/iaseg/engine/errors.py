"""The training loop's own errors (in their own module so that the run's setup, engine/run_setup.py,
and the loop, engine/trainer.py, raise the same classes)."""
from __future__ import annotations

from pathlib import Path


class TrainingError(RuntimeError):
    """Training cannot go on (diverged loss, unusable resume state); the message says why."""


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C/SIGTERM once last.pt is saved."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint
