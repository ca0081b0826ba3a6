"""What a training run is built from before its first step: its datasets, the network's input size,
the class weights (from the statistics of the labels, cached in the run folder), the loss and the
optimiser's parameter groups. The Trainer (engine/trainer.py) calls each once; none of them moves the seeded RNGs
except as the Trainer's order of calls always has."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from iaseg.engine.config import Config
from iaseg.engine.distributed import barrier
from iaseg.engine.errors import TrainingError
from iaseg.engine.resume import kept_rng_state
from iaseg.models import model_class


def build_datasets(cfg: Config) -> tuple[Any, Any | None]:
    """The training set (with the config's augmentation) and the validation set (None without a
    val split; it may be the train split with other options, e.g. leave-one-sequence-out)."""
    from iaseg.data import build_dataset

    d = cfg.data
    opts = dict(d.options)
    if d.description:
        opts["description"] = d.description
    size = tuple(d.size) if d.size else None
    spatial = {"spatial_size": tuple(d.spatial_size)} if d.spatial_size else {}
    train_set = build_dataset(d.dataset, d.root, d.train_split, size=size, augment=d.augment, **spatial, **opts)
    val_set = (build_dataset(d.dataset, d.root, d.val_split, size=size, **spatial, **{**opts, **d.val_options})
               if d.val_split else None)
    return train_set, val_set


def unaugmented(dataset: Any) -> Any:
    """A shallow copy of `dataset` that reads its items without augmentation (the dataset itself
    unchanged): what the labels and images are, not one random draw of them."""
    plain = copy.copy(dataset)
    if getattr(plain, "augment", None) is not None:
        plain.augment = None
    return plain


def input_size(cfg: Config, train_set: Any) -> list[int]:
    """The network's input size [H, W]: data.size, else the size of the first training image as
    read, before augmentation (a crop would give the crop's size, and its draws would move the
    seeded RNGs: it is read without moving them)."""
    if cfg.data.size:
        return list(cfg.data.size)
    with kept_rng_state():
        return list(unaugmented(train_set)[0]["image"].shape[-2:])


def class_weights(cfg: Config, train_set: Any, num_classes: int, ignore_index: int, out: Path, is_main: bool,
                  progress: bool) -> torch.Tensor | None:
    """The loss's class weights: none, the config's list, or computed from the training labels'
    pixel counts (class_stats.json in the run folder caches them; process 0 counts, the others
    read its cache)."""
    from iaseg.losses.class_weights import compute_class_weights, dataset_class_stats

    lc = cfg.loss
    if lc.name == "ce" or lc.class_weights == "none":
        return None
    if isinstance(lc.class_weights, list):
        if len(lc.class_weights) != num_classes:
            raise TrainingError(f"loss.class_weights has {len(lc.class_weights)} values for "
                                f"{num_classes} classes")
        return torch.tensor(lc.class_weights, dtype=torch.float32)
    d = cfg.data
    key = {"dataset": d.dataset, "root": str(d.root), "split": d.train_split, "size": d.size,
           "options": {k: v for k, v in d.options.items()}, "num_classes": num_classes,
           "ignore_index": ignore_index}
    cache = out / "class_stats.json"
    # the statistics of the labels themselves, not of one random augmentation of them
    labels = unaugmented(train_set)
    stats = None
    if is_main:
        stats = dataset_class_stats(labels, num_classes, ignore_index, cache=cache, progress=progress, cache_key=key)
    barrier()
    if stats is None:
        stats = dataset_class_stats(labels, num_classes, ignore_index, cache=cache, progress=False, cache_key=key)
    return compute_class_weights(stats, method=lc.class_weights, a=lc.a, include_void=lc.include_void).float()


def build_training_loss(cfg: Config, description: Any, class_weights: torch.Tensor | None,
                        device: torch.device) -> nn.Module:
    """The config's loss on `device` (class weights for all but plain CE, groups for the IAL)."""
    from iaseg.losses import build_loss

    lc = cfg.loss
    kw: dict[str, Any] = {"ignore_index": description.ignore_index}
    if lc.name != "ce":
        kw["class_weights"] = class_weights
    if lc.name == "focal":
        kw["gamma"] = lc.gamma
    if lc.name == "ial":
        kw.update(groups=description.group_indices(), preset=lc.preset, alpha=lc.alpha,
                  lam=lc.lam, detach_dynamic_weights=lc.detach_dynamic_weights)
    return build_loss(lc.name, **kw).to(device)


def decay_parameter_groups(model: nn.Module, model_name: str, weight_decay: float,
                           scope: str = "conv_kernels") -> list[dict[str, Any]]:
    """Coupled L2 on conv kernels only (no biases, no BN), as the authors' l2_regularizer.

    scope='authors' also skips the downsampler convs the authors left undecayed (d8 in
    ERF-PSPNet; d1, d2 and d8 in BiERF-PSPNet)."""
    skipped: set[int] = set()
    if scope == "authors":
        layers = model.encoder.layers
        skipped = {id(layers[i].conv.weight) for i in model_class(model_name).authors_undecayed_layers}
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.Conv2d) and name == "weight" and id(p) not in skipped:
                decay.append(p)
            else:
                no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
