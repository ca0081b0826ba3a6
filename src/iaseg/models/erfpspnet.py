"""ERF-PSPNet (Yang et al. 2018; Xiang, Wang, Yang, ITSC 2019): ERFNet encoder + PSP decoder."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .blocks import Encoder, PyramidPooling, check_input, init_weights, upsample_logits
from .dropout import Dropout


class ERFPSPNet(nn.Module):
    """ERF-PSPNet as in the authors' TensorFlow code.

    Args:
        num_classes: number of output classes C.
        bins: pyramid branches. The default (0, 2, 4, 8) is the authors' TF decoder: an
            unpooled identity branch plus 2/4/8 bins with their window formula. (1, 2, 4, 8) is
            the co-author's PyTorch variant with a global bin. Any tuple works.
        init: 'kaiming' (PyTorch default) or 'tf_normal' (the authors' N(0, 0.1^2)).
        dropout: dropout before the classifier (0.1 in the paper).

    forward(x): x is N x 3 x H x W RGB in [0, 1], H and W divisible by 8; returns logits
    N x C x H x W (bilinearly upsampled from 1/8 resolution).
    """

    # the forward arguments, also the input names of exported graphs
    input_names: tuple[str, ...] = ("image",)
    # encoder layers whose conv kernels the authors' code leaves out of the L2 decay (d8)
    authors_undecayed_layers: tuple[int, ...] = (7,)

    def __init__(self, num_classes: int, bins: Sequence[int] = (0, 2, 4, 8),
                 init: str = "kaiming", dropout: float = 0.1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.encoder = Encoder()
        self.psp = PyramidPooling(128, 32, pools=bins, mode="bins", out_channels=256)
        self.dropout = Dropout(dropout)
        self.classifier = nn.Conv2d(256, num_classes, 1, bias=False)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x)
        y = self.classifier(self.dropout(self.psp(self.encoder(x))))
        return upsample_logits(y, x.shape[-2:])
