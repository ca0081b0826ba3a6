"""Confusion matrix accumulated over a whole split, and the per-class metrics derived from it.

Orientation: rows = ground truth, columns = prediction. So for class c
    precision_c = M[c, c] / M[:, c].sum()   (TP / predicted as c)
    recall_c    = M[c, c] / M[c, :].sum()   (TP / ground truth c)
    iou_c       = M[c, c] / (M[c, :].sum() + M[:, c].sum() - M[c, c])
A denominator of zero gives NaN (undefined), never 0: an absent class must not look like a
class the network gets wrong.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

METRICS = ("precision", "recall", "iou")


def _as_matrix(matrix: Any) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(matrix) if isinstance(matrix, (list, tuple)) else matrix)
    if m.dim() < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"a confusion matrix must be square C x C (or a batch ... x C x C), got shape "
                         f"{tuple(m.shape)}")
    return m.detach().cpu().to(torch.float64)


def class_metrics(matrix: Any) -> dict[str, torch.Tensor]:
    """Per-class precision, recall and IoU (float64 CPU tensors, NaN where undefined) of a
    C x C confusion matrix with rows = ground truth and columns = prediction, or of a batch of
    them (... x C x C -> ... x C: the candidate rules of a decision-rule search, the bootstrap's
    resampled matrices))."""
    m = _as_matrix(matrix)
    tp = m.diagonal(dim1=-2, dim2=-1)
    gt = m.sum(-1)
    predicted = m.sum(-2)
    # 0/0 -> NaN is what we want; x/0 with x > 0 cannot happen (tp <= gt, tp <= predicted)
    return {"precision": tp / predicted, "recall": tp / gt, "iou": tp / (gt + predicted - tp)}


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """torch.distributed SUM of a count tensor in place; a no-op without a process group. The one
    all-reduce of the metric accumulators (confusion, boundary, offset sweeps)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # NCCL reduces CUDA tensors only; gloo handles CPU (and CUDA) tensors
        if dist.get_backend() == "nccl" and t.device.type != "cuda":
            buf = t.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            t.copy_(buf)
        else:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class ConfusionMatrix:
    """Accumulate a C x C int64 confusion matrix (rows = ground truth, columns = prediction) with
    one `torch.bincount` per batch on the inputs' device.

    Args:
        num_classes: C.
        ignore_index: ground-truth value excluded from the counts (void), or None.
        device: where the matrix lives; by default the device of the first `update`.

    In DDP, each process updates with its own shard; then one call to `all_reduce()` makes every
    process hold the matrix of the whole split.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None,
                 device: str | torch.device | None = None) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a class id (0..{self.num_classes - 1})")
        self._device = torch.device(device) if device is not None else None
        self._matrix: torch.Tensor | None = None

    def __repr__(self) -> str:
        return (f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
                f"pixels={int(self.matrix.sum())})")

    @property
    def matrix(self) -> torch.Tensor:
        """The C x C int64 counts (rows = ground truth, columns = prediction), on its device."""
        if self._matrix is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64,
                               device=self._device or "cpu")
        return self._matrix

    def _ensure(self, device: torch.device) -> torch.Tensor:
        if self._matrix is None:
            self._device = self._device or device
            self._matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64, device=self._device)
        return self._matrix

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch. `pred` and `target` are integer class-id tensors of the same shape
        (N x H x W, or any shape); pixels whose target is `ignore_index` are skipped."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
        for name, t in (("pred", pred), ("target", target)):
            if t.is_floating_point() or t.is_complex():
                raise TypeError(f"{name} must hold integer class ids (e.g. logits.argmax(1)), got {t.dtype}")
        m = self._ensure(pred.device)
        c = self.num_classes
        pred = pred.to(m.device, torch.int64).reshape(-1)
        target = target.to(m.device, torch.int64).reshape(-1)
        valid = target != self.ignore_index if self.ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
        bad_pred = (pred < 0) | (pred >= c)
        bad_target = valid & ((target < 0) | (target >= c))
        if bool((bad_pred.any() | bad_target.any()).item()):  # one device sync per batch
            if bad_pred.any():
                v = pred[bad_pred][0].item()
                raise ValueError(f"prediction value {v} is outside the class ids 0..{c - 1}")
            v = target[bad_target][0].item()
            raise ValueError(f"target value {v} is neither a class id 0..{c - 1} nor ignore_index "
                             f"{self.ignore_index}")
        # ignored pixels go to an extra bin that is dropped: no boolean indexing, no extra sync
        index = torch.where(valid, target * c + pred, torch.full_like(target, c * c))
        counts = torch.bincount(index, minlength=c * c + 1)[: c * c]
        m += counts.view(c, c)

    def reset(self) -> None:
        if self._matrix is not None:
            self._matrix.zero_()

    def precision(self) -> torch.Tensor:
        """Per class TP / predicted (float64, CPU, NaN where nothing was predicted as the class)."""
        return class_metrics(self.matrix)["precision"]

    def recall(self) -> torch.Tensor:
        """Per class TP / ground truth (float64, CPU, NaN where the class is absent from the GT)."""
        return class_metrics(self.matrix)["recall"]

    def iou(self) -> torch.Tensor:
        """Per class TP / union (float64, CPU, NaN where the class is absent from both)."""
        return class_metrics(self.matrix)["iou"]

    @torch.no_grad()
    def all_reduce(self) -> "ConfusionMatrix":
        """Sum the matrices of all processes (torch.distributed SUM) in place; a no-op when
        torch.distributed is not initialised. Call it once, after the last update."""
        all_reduce_sum_(self._ensure(self._device or torch.device("cpu")))
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add the counts of another matrix with the same classes and ignore index (in place)."""
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"cannot merge a {type(other).__name__} into a ConfusionMatrix")
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(f"cannot merge a matrix of {other.num_classes} classes / ignore {other.ignore_index} "
                             f"into one of {self.num_classes} classes / ignore {self.ignore_index}")
        if other._matrix is not None:
            m = self._ensure(other._matrix.device)
            m += other._matrix.to(m.device)
        return self

    def __iadd__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        return self.merge(other)
