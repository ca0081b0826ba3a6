"""Losses: class-weighted cross-entropy, focal loss and the importance-aware loss (IAL), plus
class weights computed from data.

    >>> from iaseg.losses import build_loss
    >>> loss_fn = build_loss("ial", class_weights=w, groups=[[0, 1, 5], [2, 3, 4, 7], [6, 8, 9, 10]],
    ...                      ignore_index=11, preset="paper")
    >>> loss = loss_fn(logits, target)     # logits N x C x H x W, target N x H x W (int64)
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .class_weights import (class_frequencies, compute_class_weights, count_class_pixels, dataset_class_stats,
                            enet_weights, median_frequency_weights)
from .focal import FocalLoss
from .ial import PRESETS, ImportanceAwareLoss, validate_groups
from .weighted_ce import WeightedCrossEntropy

LOSSES: dict[str, type[nn.Module]] = {
    "ce": WeightedCrossEntropy,
    "weighted_ce": WeightedCrossEntropy,
    "focal": FocalLoss,
    "ial": ImportanceAwareLoss,
}


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss by name: 'ce' (unweighted), 'weighted_ce' (needs class_weights), 'focal', 'ial'."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    cls = LOSSES[name]
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"loss {name!r} does not take option(s) {unknown}; it accepts {accepted}")
    if name == "ce" and kwargs.get("class_weights") is not None:
        raise ValueError("loss 'ce' is unweighted; use 'weighted_ce' to pass class_weights")
    if name == "weighted_ce" and kwargs.get("class_weights") is None:
        raise ValueError("loss 'weighted_ce' needs class_weights (see iaseg.losses.compute_class_weights)")
    if name == "ial":
        missing = [k for k in ("class_weights", "groups") if k not in kwargs]
        if missing:
            raise ValueError(f"loss 'ial' needs {missing} (groups least to most important, e.g. "
                             "DatasetDescription.group_indices())")
    return cls(**kwargs)


__all__ = [
    "LOSSES", "PRESETS", "build_loss", "WeightedCrossEntropy", "FocalLoss", "ImportanceAwareLoss",
    "validate_groups", "count_class_pixels", "class_frequencies", "enet_weights", "median_frequency_weights",
    "compute_class_weights", "dataset_class_stats",
]
