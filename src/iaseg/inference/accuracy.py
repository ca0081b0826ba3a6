"""Accuracy checks for fast paths: agreement of two runners' logits, an exported file's parity
with its checkpoint, mean IoU with labels, and the guard that refuses a reduced-precision model
whose accuracy dropped too far."""
from __future__ import annotations

import math

import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from iaseg.data.description import DatasetDescription
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
    little; apply this to trained weights for a meaningful figure.

    A pixel with a non-finite logit (NaN, inf) on either side never agrees (NaN against NaN is
    no parity); `nonfinite` counts them and the diffs become inf."""
    max_diff, sum_diff, agree, pixels, images, ties, values, nonfinite = 0.0, 0.0, 0, 0, 0, 0, 0, 0
    margins = []
    for batch in _batches(inputs):
        a = reference(*batch).float().cpu()
        b = candidate(*batch).float().cpu()
        if a.shape != b.shape:
            raise ValueError(f"logit shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
        finite = torch.isfinite(a).all(1) & torch.isfinite(b).all(1)
        nonfinite += int((~finite).sum())
        d = (a - b).abs()
        max_diff = max(max_diff, float(d.max()) if bool(finite.all()) else math.inf)
        sum_diff += float(d.double().sum()) if bool(finite.all()) else math.inf
        values += d.numel()
        agree += int(((a.argmax(1) == b.argmax(1)) & finite).sum())
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
            "pixels": pixels, "images": images, "nonfinite": nonfinite}


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
    kind = _source_kind(exported)
    if kind == "checkpoint":
        options: dict[str, Any] = PLAIN_FP32
    elif kind == "openvino":  # an fp32 IR is checked in fp32 (its default on bf16 CPUs is bf16)
        from .openvino import read_openvino_metadata

        options = {} if read_openvino_metadata(exported).precision == "int8" else {"precision": "fp32"}
    else:
        options = {}
    candidate = load_runner(exported, **options)
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


@torch.no_grad()
def mean_iou(runner: Callable[..., torch.Tensor], samples: Iterable[tuple[Inputs, torch.Tensor]],
             num_classes: int, ignore_index: int) -> dict[str, object]:
    """Mean IoU (in %) of a runner over (inputs, label N x H x W) pairs, with the per-class IoU
    (%) and the confusion matrix, all from the metrics library (`ConfusionMatrix`,
    `class_metrics`, the reports' NaN-aware mean): a class absent from both prediction and
    labels is NaN and left out of the mean."""
    from iaseg.metrics.report import nan_mean

    cm = ConfusionMatrix(num_classes, ignore_index, device="cpu")
    for inputs, label in samples:
        cm.update(runner(*inputs).argmax(1).cpu(), label.cpu())
    iou = class_metrics(cm.matrix)["iou"]
    return {"miou": float(nan_mean(iou)) * 100, "iou": [float(v) * 100 for v in iou], "confusion": cm.matrix}


# Largest drops (in points) a reduced-precision model may show against its fp32 reference on a
# labelled split before accuracy_guard refuses it: mean IoU, and the recall of the most
# important group (G3), the figure the importance-aware loss is about.
MAX_MIOU_DROP = 0.5
MAX_TOP_GROUP_RECALL_DROP = 1.0


class AccuracyDropError(ValueError):
    """A reduced-precision model lost more accuracy than the guard allows; `.result` holds the figures."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def split_accuracy(conf: torch.Tensor, description: DatasetDescription) -> dict[str, float]:
    """Mean IoU and the most important group's recall (mean of its classes' recalls), in %,
    from a confusion matrix (rows = ground truth); classes without a defined value are left out."""
    from iaseg.metrics.report import UndefinedMetricWarning, build_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # small splits miss classes
        report = build_report(conf, description.classes, description.groups)
    top = description.group_names[-1]
    return {"miou": 100 * report["mean"]["iou"], "top_group_recall": 100 * report["groups"][top]["recall"]}


def accuracy_guard(reference: torch.Tensor, candidate: torch.Tensor, description: DatasetDescription,
                   max_miou_drop: float = MAX_MIOU_DROP,
                   max_top_group_recall_drop: float = MAX_TOP_GROUP_RECALL_DROP,
                   allow_drop: bool = False, what: str = "int8") -> dict[str, Any]:
    """Compare a candidate's confusion matrix with its reference's on the same labelled pixels.

    Returns {"reference": split_accuracy(reference), "candidate": ..., "miou_change",
    "top_group", "top_group_recall_change" (points, negative = worse), "passed"}. When mean IoU
    drops by more than `max_miou_drop` points or the most important group's recall by more than
    `max_top_group_recall_drop`, raises AccuracyDropError, or with allow_drop=True warns (a
    UserWarning) and returns passed=False. A NaN change (e.g. G3 absent from the labels) counts
    as passed for that figure."""
    ref, cand = split_accuracy(reference, description), split_accuracy(candidate, description)
    top = description.group_names[-1]
    result: dict[str, Any] = {
        "reference": ref, "candidate": cand, "top_group": top,
        "miou_change": cand["miou"] - ref["miou"],
        "top_group_recall_change": cand["top_group_recall"] - ref["top_group_recall"],
    }
    problems = []
    if result["miou_change"] < -max_miou_drop:
        problems.append(f"mean IoU {ref['miou']:.2f} -> {cand['miou']:.2f} "
                        f"({result['miou_change']:+.2f} points, limit -{max_miou_drop:g})")
    if result["top_group_recall_change"] < -max_top_group_recall_drop:
        problems.append(f"{top} recall {ref['top_group_recall']:.2f} -> {cand['top_group_recall']:.2f} "
                        f"({result['top_group_recall_change']:+.2f} points, limit -{max_top_group_recall_drop:g})")
    result["passed"] = not problems
    if problems:
        message = f"the {what} model loses too much accuracy against fp32: " + "; ".join(problems)
        if not allow_drop:
            raise AccuracyDropError(message + " (allow it explicitly to keep the model anyway)", result)
        warnings.warn(message, UserWarning, stacklevel=2)
    return result


def format_guard(result: dict[str, Any], what: str = "int8") -> str:
    """accuracy_guard's figures in one line: 'mean IoU fp32 65.12, int8 64.78 (change -0.34
    points); G3 recall fp32 80.10, int8 79.50 (change -0.60 points)'."""
    ref, cand, top = result["reference"], result["candidate"], result["top_group"]
    return (f"mean IoU fp32 {ref['miou']:.2f}, {what} {cand['miou']:.2f} (change {result['miou_change']:+.2f} points); "
            f"{top} recall fp32 {ref['top_group_recall']:.2f}, {what} {cand['top_group_recall']:.2f} "
            f"(change {result['top_group_recall_change']:+.2f} points)")


def guarded_accuracy(reference: Callable[..., torch.Tensor] | torch.Tensor, candidate: Callable[..., torch.Tensor],
                     samples: Sequence[tuple[Inputs, torch.Tensor]], description: DatasetDescription,
                     **guard: Any) -> dict[str, Any]:
    """accuracy_guard on two runners' confusion matrices (mean_iou) over labelled samples
    ((inputs, label N x H x W) pairs); keyword arguments go to accuracy_guard. `reference` may
    be its confusion matrix on the same samples, computed once for several candidates."""
    c, ignore = description.num_classes, description.ignore_index
    confs = [r if isinstance(r, torch.Tensor) else mean_iou(r, samples, c, ignore)["confusion"]
             for r in (reference, candidate)]
    return {**accuracy_guard(*confs, description, **guard), "images": sum(int(y.shape[0]) for _, y in samples)}
