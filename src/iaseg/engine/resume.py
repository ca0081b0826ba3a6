"""What exact resume needs besides the weights: the RNG states, which config keys a resumed run may
change, a finite-values check for checkpoints, and Ctrl-C/SIGTERM turned into a clean stop.

The Trainer uses these; they are plain functions so that they can be tested on their own.
"""
from __future__ import annotations

import random
import signal
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from iaseg.checkpoint import nonfinite_entries  # noqa: F401 - re-exported: the trainer's finite-checkpoint check


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    # RNG states are CPU byte tensors; a checkpoint loaded with map_location="cuda" moved them.
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


# A parameter larger than this marks weights as diverged even while they are finite: trained
# ERF-/BiERF-PSPNet parameters stay below 2 (the shipped CamVid weights: max |w| 1.28 to 1.83),
# a run blowing up reaches 1e10 before the loss turns NaN.
DIVERGED_WEIGHT = 1e3


def largest_parameter(model: torch.nn.Module) -> float:
    """max |w| over the model's float parameters (buffers such as BatchNorm statistics left out)."""
    values = [float(p.detach().abs().max()) for p in model.parameters() if p.is_floating_point() and p.numel()]
    return max(values, default=0.0)


@contextmanager
def kept_rng_state() -> Iterator[None]:
    """Run a block without moving the global RNGs (torch, numpy, Python, CUDA): work that a cache
    may skip (class statistics, the pre-flight check) must leave the training's random draws
    where they were, or the same seed would give other weights with and without the cache."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


# Config keys a resumed run may change: they take effect from the resume point. Anything else
# (model, data, loss, seed, ...) would make the rest of the run another experiment: refused.
RESUMABLE = frozenset({
    "train.epochs", "train.val_every", "train.val_batch_size", "train.device", "train.threads",
    "train.tensorboard", "train.log_images", "train.batch_size", "train.amp", "train.channels_last",
    "train.save_every", "data.root", "data.num_workers",
    "optim.lr", "optim.milestones", "optim.gamma", "optim.betas", "optim.eps", "optim.weight_decay",
    "optim.power", "optim.warmup_epochs",
})


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(section.key, old, new) for every key both configs have and that differs."""
    changes = []
    for section, values in new.items():
        before = old.get(section)
        if not isinstance(values, dict) or not isinstance(before, dict):
            continue
        for key, value in values.items():
            if key in before and before[key] != value:
                changes.append((f"{section}.{key}", before[key], value))
    return changes


@contextmanager
def stop_on_signals(flag: dict[str, bool]) -> Iterator[None]:
    """Ctrl-C / SIGTERM set flag['stop'] instead of killing the process mid-write; a second
    Ctrl-C aborts at once."""
    def handler(signum: int, frame: Any) -> None:
        if flag.get("stop"):
            raise KeyboardInterrupt
        flag["stop"] = True
        print(f"\n{signal.Signals(signum).name} received: finishing the current step and saving last.pt "
              "(press Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread: leave signals alone
            pass
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
