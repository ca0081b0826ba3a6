"""Label maps for images of any size: resize to the network, run it, bring the logits back."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from iaseg.data.base import image_to_tensor
from iaseg.engine.evaluator import argmax_decision, resize_logits
from iaseg.models import image_inputs


class Predictor:
    """Callable: list of H x W x 3 uint8 images (sizes may differ) -> list of H x W int64 label
    maps at the images' own sizes.

    Each image is resized (bilinear) to `input_size` (and BiERF-PSPNet's `spatial_size`), the
    batch goes through `net` (a runner, which owns the precision), and each image's logits are
    upsampled to its size before `decide` (default argmax; a decision rule plugs in here)."""

    def __init__(self, net: Callable[..., torch.Tensor], model_name: str, input_size: tuple[int, int],
                 spatial_size: tuple[int, int] | None, device: torch.device,
                 decide: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.net, self.model_name, self.device = net, model_name, device
        self.input_size, self.spatial_size = tuple(input_size), spatial_size
        self.decide = decide or argmax_decision

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        parts = [image_inputs(self.model_name, image_to_tensor(im)[None], self.input_size, self.spatial_size)
                 for im in images]
        logits = self.net(*(torch.cat(x).to(self.device) for x in zip(*parts)))
        return [self.decide(resize_logits(logits[i:i + 1], im.shape[:2]))[0].cpu().numpy()
                for i, im in enumerate(images)]
