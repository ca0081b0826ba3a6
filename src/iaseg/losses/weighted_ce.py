"""Class-weighted cross-entropy as in the authors' training scripts."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ._common import PixelWeightedLoss, check_inputs, clipped_nll, gt_log_prob, pixel_weights


class WeightedCrossEntropy(PixelWeightedLoss):
    """L = sum_u w_{y_u} * l_u / N over the N labelled pixels, l_u = -log(clip(p_u, 1e-10, 1)).

    Divided by the number of labelled pixels, not by the sum of their weights as
    `torch.nn.CrossEntropyLoss(weight=w)` does (spec section 3.3). `class_weights=None` is plain CE.
    """

    def __init__(self, class_weights: Sequence[float] | torch.Tensor | None = None, ignore_index: int = 255):
        super().__init__(class_weights, ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(type(self).__name__, logits, target, self.num_classes, self.ignore_index)
        logp, valid, safe = gt_log_prob(logits, target, self.ignore_index)
        w = pixel_weights(self.class_weights, safe, valid, logp.dtype)
        n = valid.sum().clamp(min=1)  # all-void batch: 0 / 1 = 0 with zero gradients
        return (w * clipped_nll(logp)).sum() / n

    def extra_repr(self) -> str:
        w = "None" if self.class_weights is None else f"[{self.num_classes} values]"
        return f"class_weights={w}, ignore_index={self.ignore_index}"
