"""Accuracy checks for fast paths: agreement of two runners' logits, an exported file's parity
with its checkpoint, and mean IoU with labels."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from iaseg.metrics.confusion import ConfusionMatrix, class_metrics

from .runners import _source_kind, load_runner

Inputs = Sequence[torch.Tensor]
# the reference of every parity check: the network as trained, no inference-time rewrites
PLAIN_FP32 = {"backend": "eager", "precision": "fp32", "fold_bn": False, "channels_last": False, "fuse": False}


def _batches(inputs: Inputs | Iterable[Inputs]) -> Iterable[tuple[torch.Tensor, ...]]:
    """One input tuple, or an iterable of them."""
    if isinstance(inputs, torch.Tensor):
        return [(inputs,)]
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return [tuple(inputs)]
    return (tuple(b) if not isinstance(b, torch.Tensor) else (b,) for b in inputs)


@torch.no_grad()
def agreement(reference: Callable[..., torch.Tensor], candidate: Callable[..., torch.Tensor],
              inputs: Inputs | Iterable[Inputs]) -> dict[str, float]:
    """Compare two runners (or any callables returning N x C x H x W logits) on the same inputs.

    Returns max_abs_diff and mean_abs_diff of the logits, argmax_agreement (fraction of pixels
    with the same predicted class), pixels, images, and near_ties: the fraction of pixels whose
    reference top-2 logit margin is below the max |diff| seen, i.e. pixels that an error of that
    size could flip. A randomly initialised network has many near ties, so its agreement says
    little; apply this to trained weights for a meaningful figure."""
    max_diff, sum_diff, agree, pixels, images, ties, values = 0.0, 0.0, 0, 0, 0, 0, 0
    margins = []
    for batch in _batches(inputs):
        a = reference(*batch).float().cpu()
        b = candidate(*batch).float().cpu()
        if a.shape != b.shape:
            raise ValueError(f"logit shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
        d = (a - b).abs()
        max_diff = max(max_diff, float(d.max()))
        sum_diff += float(d.double().sum())
        values += d.numel()
        agree += int((a.argmax(1) == b.argmax(1)).sum())
        pixels += a.shape[0] * a.shape[2] * a.shape[3]
        images += a.shape[0]
        if a.shape[1] > 1:
            top2 = a.topk(2, dim=1).values
            margins.append((top2[:, 0] - top2[:, 1]).flatten())
    if pixels == 0:
        raise ValueError("agreement needs at least one input")
    if margins:
        ties = int((torch.cat(margins) <= max_diff).sum())
    return {"max_abs_diff": max_diff, "mean_abs_diff": sum_diff / values,
            "argmax_agreement": agree / pixels, "near_ties": ties / pixels,
            "pixels": pixels, "images": images}


def parity_check(checkpoint: str | Path | dict[str, Any], exported: str | Path,
                 inputs: Sequence[Sequence[torch.Tensor]] | None = None, count: int = 4,
                 batch: int = 2, seed: int = 0, offsets: torch.Tensor | None = None) -> dict[str, Any]:
    """Run an exported file and the checkpoint (plain fp32 eager, BN unfolded) on the same
    inputs: agreement() of their logits plus 'precision' of the file. Default inputs: `count`
    seeded uniform images at the file's sizes in batches of `batch` (also exercises the
    dynamic batch axis). `offsets`: the file has a decision rule baked in; the checkpoint's
    logits + offsets are the reference."""
    # an exported checkpoint is compared as it is stored (plain fp32 eager, like the reference);
    # ONNX/TorchScript files run as they would be deployed
    candidate = load_runner(exported, **(PLAIN_FP32 if _source_kind(exported) == "checkpoint" else {}))
    reference = load_runner(checkpoint, **PLAIN_FP32)
    if inputs is None:
        g = torch.Generator().manual_seed(seed)
        sizes = [candidate.input_size, candidate.spatial_size][: len(candidate.input_names)]
        inputs = []
        for start in range(0, count, batch):
            n = min(batch, count - start)
            inputs.append(tuple(torch.rand(n, 3, *s, generator=g) for s in sizes))
    if offsets is not None:
        b = torch.as_tensor(offsets, dtype=torch.float32).view(1, -1, 1, 1)
        plain = reference
        reference = lambda *xs: plain(*xs).float() + b  # noqa: E731
    result = agreement(reference, candidate, inputs)
    result["precision"] = candidate.precision
    return result


def confusion_matrix(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                     ignore_index: int) -> torch.Tensor:
    """num_classes x num_classes int64 counts (CPU), rows = ground truth, columns = prediction;
    pixels labelled ignore_index are left out (`iaseg.metrics.ConfusionMatrix`: any other value
    outside 0..C-1 is an error)."""
    cm = ConfusionMatrix(num_classes, ignore_index, device="cpu")
    cm.update(pred.cpu(), label.cpu())
    return cm.matrix


def iou_from_confusion(conf: torch.Tensor) -> torch.Tensor:
    """Per-class IoU (float64; NaN where a class is absent from both prediction and labels)."""
    return class_metrics(conf)["iou"]


@torch.no_grad()
def mean_iou(runner: Callable[..., torch.Tensor], samples: Iterable[tuple[Inputs, torch.Tensor]],
             num_classes: int, ignore_index: int) -> dict[str, object]:
    """Mean IoU (in %) of a runner over (inputs, label N x H x W) pairs, classes absent from
    both prediction and labels left out of the mean."""
    cm = ConfusionMatrix(num_classes, ignore_index, device="cpu")
    for inputs, label in samples:
        cm.update(runner(*inputs).argmax(1).cpu(), label.cpu())
    iou = iou_from_confusion(cm.matrix)
    valid = ~torch.isnan(iou)
    miou = float(iou[valid].mean()) * 100 if valid.any() else float("nan")
    return {"miou": miou, "iou": [float(v) * 100 for v in iou], "confusion": cm.matrix}
