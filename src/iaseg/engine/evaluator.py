"""The one loop that runs a network over data: logits at the label size, batch by batch
(`iter_logits`), and the confusion matrix of a whole split (`evaluate_loader`).

`iaseg evaluate`, `iaseg calibrate` (its logits cache), the trainer's validation and the
overlays of `iaseg compare` all run through `iter_logits`; `iaseg predict` (no labels, images
of any size) shares `resize_logits` and `argmax_decision` (both in `iaseg.inference.labels`,
below the engine, beside the predictor's fast equal of the two, `upsample_argmax`).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.inference.labels import argmax_decision, resize_logits
from iaseg.metrics.confusion import ConfusionMatrix

from .step import autocast_context, model_inputs

Decide = Callable[[torch.Tensor], torch.Tensor]
# observer(batch, logits, pred, target): extra accumulators fed by evaluate_loader's one pass
Observer = Callable[[dict[str, Any], torch.Tensor, torch.Tensor, torch.Tensor], None]


def iter_logits(net: nn.Module | Callable[..., torch.Tensor], loader: Any, input_names: Sequence[str],
                device: torch.device | str, amp: str = "off", channels_last: bool = False,
                input_size: tuple[int, int] | None = None, progress: bool = True,
                desc: str = "evaluating") -> Iterator[tuple[dict[str, Any], torch.Tensor, torch.Tensor]]:
    """Run the network over a loader (any iterable of collated batches; `len(loader.dataset)`
    sizes the progress bar): yields (batch, float32 logits at the label size, target).
    `input_names` are the network's inputs (`ModelMetadata.input_names`): which of the batch's
    images it takes.

    `input_size` resizes images before the network (labels stay as loaded); logits smaller
    than the labels (e.g. Cityscapes at full 1024x2048) are bilinearly upsampled to them."""
    device = torch.device(device)
    if isinstance(net, nn.Module):
        net.eval()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader.dataset), desc=desc, unit="img", leave=False, file=sys.stderr)
    with torch.no_grad():
        for batch in loader:
            inputs = list(model_inputs(batch, input_names, device, channels_last))
            if input_size is not None and tuple(inputs[0].shape[-2:]) != tuple(input_size):
                inputs[0] = F.interpolate(inputs[0], size=input_size, mode="bilinear", align_corners=False)
            target = batch["label"].to(device)
            with autocast_context(device, amp):
                logits = net(*inputs)
            yield batch, resize_logits(logits, target.shape[-2:]), target
            if bar is not None:
                bar.update(target.shape[0])
    if bar is not None:
        bar.close()


@torch.no_grad()
def evaluate_loader(net: nn.Module | Callable[..., torch.Tensor], loader: Any, input_names: Sequence[str],
                    num_classes: int, ignore_index: int, device: torch.device | str, amp: str = "off",
                    channels_last: bool = False, progress: bool = True,
                    input_size: tuple[int, int] | None = None, decide: Decide | None = None,
                    keep_images: list | None = None, max_images: int = 0,
                    observers: Sequence[Observer] = ()) -> ConfusionMatrix:
    """Accumulate a confusion matrix over a loader (all-reduced across processes under DDP).

    Predictions are made at the network's input size; when the labels are larger (e.g.
    Cityscapes at full 1024x2048) the logits are bilinearly upsampled to the label size first.
    `input_size` resizes images before the network (labels stay as loaded). `decide` turns
    logits into class ids (default argmax; decision rules plug in here). `keep_images` collects
    up to `max_images` (image, label, prediction) triples for TensorBoard. Each observer is
    called as observer(batch, logits, pred, target) in the same pass (per-image counts, boundary
    metrics, offset sweeps: one run of the network serves every accumulator); the caller
    all-reduces their state.
    """
    decide = decide or argmax_decision
    cm = ConfusionMatrix(num_classes, ignore_index, device=torch.device(device))
    for batch, logits, target in iter_logits(net, loader, input_names, device, amp, channels_last,
                                             input_size, progress):
        pred = decide(logits)
        cm.update(pred, target)
        for observe in observers:
            observe(batch, logits, pred, target)
        if keep_images is not None and len(keep_images) < max_images:
            for i in range(min(max_images - len(keep_images), pred.shape[0])):
                img = batch["image"][i]
                if img.shape[-2:] != pred.shape[-2:]:
                    img = F.interpolate(img[None], size=pred.shape[-2:], mode="bilinear", align_corners=False)[0]
                keep_images.append((img.cpu(), target[i].cpu(), pred[i].cpu()))
    cm.all_reduce()
    return cm
