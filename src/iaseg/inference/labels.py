"""Label maps at the image's size from logits at the network's size: `resize_logits` then
`argmax_decision`, the reference path every caller shares (the engine's evaluator, the
predictor, kept here below both), and `upsample_argmax`, the same label map without upsampling
every class (PyTorch bilinear, align_corners=False, then argmax) at a fraction of the cost.

Why it is the same: a bilinearly interpolated pixel is a convex combination of its (up to) four
source pixels. Where those four have the same argmax c (first maximum on ties), c is still the
first maximum of the combination (every z_c - z_k >= 0, strictly for k < c, stays so under
non-negative weights summing to one). So only pixels whose four sources disagree, the class
boundaries, need their logits interpolated; every other pixel copies a low-resolution label.
The boundary pixels are interpolated in float32 (rows of columns, as PyTorch's CPU kernel
does). Only an exact mathematical tie between two classes can come out otherwise: PyTorch's
weights are off by a few ulp there and pick either class (tests compare against
`resize_logits(...).argmax(1)`; on the shipped network's logits the maps are equal).
A decision rule that adds per-class offsets before argmax (`DecisionRule`) keeps the argument
(resizing commutes with adding a constant per class): the low-resolution labels take the
offsets, and boundary pixels add them after interpolating, as the resize-then-decide path does.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def argmax_decision(logits: torch.Tensor) -> torch.Tensor:
    """N x C x H x W logits -> N x H x W class ids: the decision without a rule."""
    return logits.argmax(1)


def resize_logits(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """float32 logits, bilinearly resized to `size` (H, W) when they differ: the reference path
    (the evaluator's, and the predictor's for a decision other than offsets)."""
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits


def argmax_classes(logits: np.ndarray) -> np.ndarray:
    """C x h x w float logits -> h x w uint8 index of the first maximum (as torch.argmax).
    A running maximum over the classes: contiguous class planes, far faster on CPU than an
    argmax across the strided class axis."""
    if logits.shape[0] > 256:
        raise ValueError(f"{logits.shape[0]} classes do not fit a uint8 label map")
    best = logits[0].copy()
    idx = np.zeros(logits.shape[1:], dtype=np.uint8)
    for c in range(1, logits.shape[0]):
        better = logits[c] > best
        np.maximum(best, logits[c], out=best)
        idx[better] = c
    return idx


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's bilinear source taps along one axis (align_corners=False): first index,
    second index, and their float32 weights."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=f32) + f32(0.5)) - f32(0.5), f32(0))
    i0 = src.astype(np.int64)
    i1 = i0 + (i0 < n_in - 1)
    w1 = np.clip(src - i0.astype(f32), f32(0), f32(1)).astype(f32)
    return i0, i1, (f32(1) - w1).astype(f32), w1


def upsample_argmax(logits: np.ndarray, size: tuple[int, int], offsets: np.ndarray | None = None) -> np.ndarray:
    """C x h x w float32 logits -> H x W uint8 label map equal to argmax of the logits
    bilinearly resized to `size` (after adding per-class `offsets`, if given)."""
    z = np.asarray(logits, dtype=np.float32)
    b = None if offsets is None else np.asarray(offsets, dtype=np.float32)[:, None]
    low = argmax_classes(z if b is None else z + b[:, :, None])
    H, W = size
    h, w = low.shape
    if (h, w) == (H, W):
        return low
    y0, y1, hy0, hy1 = _taps(h, H)
    x0, x1, wx0, wx1 = _taps(w, W)
    # a low-resolution cell (i, j) is uniform when its four taps (i or its next row, j or its
    # next column, clamped at the border) carry one label
    below = np.concatenate([low[1:], low[-1:]])
    same_row = low[:, :-1] == low[:, 1:]
    same_below = below[:, :-1] == below[:, 1:]
    mixed_cell = low != below
    mixed_cell[:, :-1] |= ~same_row | ~same_below
    out = low.take(y0, 0).take(x0, 1)
    ys, xs = np.nonzero(mixed_cell.take(y0, 0).take(x0, 1))
    if ys.size:
        a0, a1, b0, b1 = y0[ys], y1[ys], x0[xs], x1[xs]
        wb0, wb1 = wx0[xs], wx1[xs]
        # PyTorch's order: rows first combine columns, then the two rows are combined
        top = z[:, a0, b0] * wb0 + z[:, a0, b1] * wb1
        bottom = z[:, a1, b0] * wb0 + z[:, a1, b1] * wb1
        mixed = top * hy0[ys] + bottom * hy1[ys]
        if b is not None:  # after resizing, as `decide(resize_logits(z))` adds them
            mixed += b
        out[ys, xs] = argmax_classes(mixed[:, :, None])[:, 0]
    return out
