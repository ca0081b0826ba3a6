"""Shared input handling for the losses: checks, the per-pixel log-probability of the ground-truth
class, and the clipped cross-entropy term of the authors' code."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# The authors take -log(clip(p, 1e-10, 1)); clamping -log_softmax at this value gives the same
# value and, like their clip, a zero gradient where p < 1e-10.
MAX_NLL = -math.log(1e-10)


def as_weight_tensor(class_weights: Sequence[float] | torch.Tensor | None, owner: str) -> torch.Tensor | None:
    """Class weights as a 1-D float tensor (None stays None); finite and non-negative. A float64
    tensor stays float64 (for float64 references); anything else becomes float32."""
    if class_weights is None:
        return None
    w = torch.as_tensor(class_weights).detach().clone()
    if w.dtype != torch.float64:
        w = w.to(torch.float32)
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"{owner}: class_weights must be a non-empty 1-D list or tensor, got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{owner}: class_weights must be finite and >= 0, got {w.tolist()}")
    return w


def compute_dtype(logits: torch.Tensor) -> torch.dtype:
    """float64 stays float64 (references, gradcheck); everything else is computed in float32, so
    fp16/bf16 logits from autocast never overflow or lose the small probabilities."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def check_inputs(owner: str, logits: torch.Tensor, target: torch.Tensor, num_classes: int | None,
                 ignore_index: int) -> None:
    """Shapes, dtypes and (without a host sync on accelerators) label values."""
    if not torch.is_tensor(logits) or not torch.is_tensor(target):
        raise ValueError(f"{owner}: logits and target must be tensors")
    if logits.dim() < 2 or not logits.is_floating_point():
        raise ValueError(f"{owner}: logits must be a float tensor N x C x H x W, got {logits.dtype} "
                         f"of shape {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{owner}: target shape {tuple(target.shape)} does not match logits shape "
                         f"{tuple(logits.shape)} (expected target {expected})")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"{owner}: target must hold integer class ids (int64), got {target.dtype}")
    c = logits.shape[1]
    if num_classes is not None and c != num_classes:
        raise ValueError(f"{owner}: logits have {c} classes but the loss was built for {num_classes} "
                         "(class_weights / groups)")
    bad = ((target < 0) | (target >= c)) & (target != ignore_index)
    if target.device.type == "cpu":
        if bad.any():
            vals = torch.unique(target[bad])[:10].tolist()
            raise ValueError(f"{owner}: target has values {vals} outside [0, {c}) that are not "
                             f"ignore_index={ignore_index}")
    else:  # no host sync in the training step; fails as a device-side assert instead
        torch._assert_async(~bad.any(), f"{owner}: target has values outside [0, {c}) that are not ignore_index")


def gt_log_prob(logits: torch.Tensor, target: torch.Tensor, ignore_index: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (logp, valid, safe_target), all flattened over N x H x W.

    logp is log softmax(z_u)[y_u] in float32 (float64 for float64 logits); at void pixels it is
    the log-probability of class 0, finite, and must be masked out by the caller."""
    x = logits.to(compute_dtype(logits))
    target = target.long()
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    logp = torch.log_softmax(x, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    return logp.reshape(-1), valid.reshape(-1), safe.reshape(-1)


def clipped_nll(logp: torch.Tensor) -> torch.Tensor:
    """-log(clip(p, 1e-10, 1)) computed from log p."""
    return (-logp).clamp(max=MAX_NLL)


def pixel_weights(weights: torch.Tensor | None, safe: torch.Tensor, valid: torch.Tensor,
                  dtype: torch.dtype) -> torch.Tensor:
    """w_{y_u} at labelled pixels, 0 at void pixels."""
    v = valid.to(dtype)
    if weights is None:
        return v
    return weights.to(device=safe.device, dtype=dtype)[safe] * v


class PixelWeightedLoss(nn.Module):
    """Shared state of the per-pixel class-weighted losses: optional weights and the void label."""

    def __init__(self, class_weights: Sequence[float] | torch.Tensor | None, ignore_index: int) -> None:
        super().__init__()
        w = as_weight_tensor(class_weights, type(self).__name__)
        self.register_buffer("class_weights", w, persistent=False)
        self.ignore_index = int(ignore_index)

    @property
    def num_classes(self) -> int | None:
        return None if self.class_weights is None else self.class_weights.numel()
