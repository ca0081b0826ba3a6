"""Probe scenes (structured synthetic images) and a briefly trained network, for accuracy checks
of fast paths when no trained weights are at hand. (The street scenes of the synthetic dataset
are `iaseg.data.street_scenes`; these are simpler on purpose: learnable in ~100 steps.)

A randomly initialised network has near-tied logits almost everywhere, so "argmax agreement
with fp32" is dominated by tie-breaking noise there. A network fitted for ~100 steps on scenes
whose classes are learnable (a colour and a shape per class) makes confident predictions, so
agreement and mIoU deltas measured on it mean something. Real weights remain the final check.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.models import build_model, image_inputs


def structured_scenes(n: int, size: tuple[int, int], num_classes: int, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(images N x 3 x H x W in [0, 1], labels N x H x W int64): a sky/ground background (classes
    0 and 1) with rectangles and discs of the other classes, each class with its own colour,
    plus noise and a brightness gradient. Class colours are the same for every seed."""
    if num_classes < 2:
        raise ValueError("structured_scenes needs at least 2 classes")
    h, w = size
    colours = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(12345))  # same for every seed
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    labels = torch.zeros(n, h, w, dtype=torch.int64)
    for i in range(n):
        horizon = int(h * (0.35 + 0.3 * float(torch.rand((), generator=g))))
        labels[i, horizon:] = 1
        for _ in range(int(torch.randint(3, 8, (), generator=g))):
            c = int(torch.randint(2, num_classes, (), generator=g)) if num_classes > 2 else 1
            cy, cx = float(torch.rand((), generator=g)) * h, float(torch.rand((), generator=g)) * w
            r = (0.08 + 0.15 * float(torch.rand((), generator=g))) * min(h, w)
            if c % 2:  # odd classes are discs, even ones rectangles: shape is a cue too
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            else:
                mask = ((yy - cy).abs() <= r) & ((xx - cx).abs() <= 1.6 * r)
            labels[i][mask] = c
    images = colours[labels].permute(0, 3, 1, 2).contiguous()
    gradient = 0.85 + 0.15 * torch.cos(math.pi * yy / h)
    images = images * gradient + 0.06 * torch.randn(images.shape, generator=g)
    return images.clamp_(0, 1), labels


def fit_briefly(model_name: str, num_classes: int = 11, size: tuple[int, int] = (64, 64),
                steps: int = 100, batch: int = 4, seed: int = 0, lr: float = 3e-3,
                spatial_size: tuple[int, int] | None = None) -> nn.Module:
    """A network trained for `steps` Adam steps on structured_scenes (eval mode on return, BN
    running statistics non-trivial). ~10-20 s on one CPU core at the defaults. BiERF-PSPNet's
    spatial input defaults to twice the context size."""
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = structured_scenes(steps * batch // 4 + batch, size, num_classes, seed=seed + 1)
    spatial_size = spatial_size or (2 * size[0], 2 * size[1])
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (batch,))
        logits = model(*image_inputs(model_name, images[idx], spatial_size=spatial_size))
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()
