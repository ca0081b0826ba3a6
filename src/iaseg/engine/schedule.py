"""Learning-rate schedules, stepped once per epoch: the paper's step decay (x gamma at each
milestone) and poly decay after a linear warm-up, the usual recipe for training on crops.

Both are plain torch schedulers whose state holds only numbers, so checkpoints still load with
`weights_only=True`; the config's values are put back in force on resume (`apply_schedule`).
"""
from __future__ import annotations

import bisect
from collections import Counter
from typing import Any

import torch

from .config import OptimConfig


class PolyWarmup:
    """LR factor of epoch e (0-based): (e + 1) / warmup during the `warmup` first epochs, then
    (1 - t) ** power with t = (e - warmup) / (epochs - warmup), so the last epoch still trains."""

    def __init__(self, epochs: int, warmup: int = 0, power: float = 0.9) -> None:
        self.epochs, self.warmup, self.power = int(epochs), int(warmup), float(power)

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        t = (epoch - self.warmup) / max(1, self.epochs - self.warmup)
        return max(0.0, 1.0 - t) ** self.power


def lr_at(o: OptimConfig, epochs: int, epoch: int) -> float:
    """The learning rate in force during epoch `epoch` (0-based) of a run of `epochs` epochs."""
    if o.schedule == "poly":
        return o.lr * PolyWarmup(epochs, o.warmup_epochs, o.power)(epoch)
    return o.lr * o.gamma ** bisect.bisect_right(sorted(o.milestones), epoch)


def build_scheduler(optimizer: torch.optim.Optimizer, o: OptimConfig, epochs: int) -> Any:
    if o.schedule == "poly":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, PolyWarmup(epochs, o.warmup_epochs, o.power))
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, o.milestones, o.gamma)


def apply_schedule(scheduler: Any, optimizer: torch.optim.Optimizer, o: OptimConfig, epochs: int,
                   weight_decays: tuple[float, ...]) -> None:
    """After loading a checkpoint (whose optimiser and scheduler bring their own settings), make
    the config's values the ones in force: base rate, schedule parameters, and the rate of the
    current epoch recomputed from them."""
    if o.schedule == "poly":
        fn = scheduler.lr_lambdas[0]
        fn.epochs, fn.warmup, fn.power = int(epochs), int(o.warmup_epochs), float(o.power)
    else:
        scheduler.milestones = Counter(o.milestones)
        scheduler.gamma = o.gamma
    scheduler.base_lrs = [o.lr for _ in optimizer.param_groups]
    lr = lr_at(o, epochs, scheduler.last_epoch)
    for group, decay in zip(optimizer.param_groups, weight_decays):
        group.update(lr=lr, initial_lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=decay)
    scheduler._last_lr = [lr for _ in optimizer.param_groups]
