"""Focal loss in the form of the authors' commented-out line (spec section 4)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ._common import PixelWeightedLoss, check_inputs, clipped_nll, gt_log_prob, pixel_weights


class FocalLoss(PixelWeightedLoss):
    """L = sum_u w_{y_u} (1 - p_u)^gamma l_u / N over the N labelled pixels,
    l_u = -log(clip(p_u, 1e-10, 1)); the class weight plays the role of the focal alpha_c."""

    def __init__(self, class_weights: Sequence[float] | torch.Tensor | None = None, ignore_index: int = 255,
                 gamma: float = 2.0):
        super().__init__(class_weights, ignore_index)
        if not gamma >= 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(type(self).__name__, logits, target, self.num_classes, self.ignore_index)
        logp, valid, safe = gt_log_prob(logits, target, self.ignore_index)
        w = pixel_weights(self.class_weights, safe, valid, logp.dtype)
        # 1 - p = -expm1(log p) is exact near p = 1; the floor keeps the gradient of q^gamma finite
        # for gamma < 1 where p rounds to exactly 1.
        q = (-torch.expm1(logp)).clamp(min=torch.finfo(logp.dtype).tiny)
        n = valid.sum().clamp(min=1)
        return (w * q.pow(self.gamma) * clipped_nll(logp)).sum() / n

    def extra_repr(self) -> str:
        w = "None" if self.class_weights is None else f"[{self.num_classes} values]"
        return f"class_weights={w}, ignore_index={self.ignore_index}, gamma={self.gamma}"
