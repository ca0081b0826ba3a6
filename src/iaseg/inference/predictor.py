"""Label maps for images of any size: resize to the network as training does, run it, bring the
logits back (optionally keeping the aspect ratio by padding)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from iaseg.data.base import image_to_tensor
from iaseg.data.io import resize_image
from iaseg.metadata import ModelMetadata

from .labels import argmax_decision, resize_logits, upsample_argmax


def aspect_padding(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) bands that give an h x w image the aspect ratio of
    `size` = (H, W), split evenly (letterbox): the padded image is h x W' or H' x w, never cut."""
    h, w = shape
    H, W = size
    if w * H > h * W:  # wider than the network: pad height
        extra = math.ceil(w * H / W) - h
        return extra // 2, extra - extra // 2, 0, 0
    extra = math.ceil(h * W / H) - w
    return 0, 0, extra // 2, extra - extra // 2


def pad_image(image: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    """`image` with (top, bottom, left, right) bands mirrored from its edges: the network sees
    the scene continue rather than black bands, which it would label (a class of its own, e.g.
    sky or road) and whose class its pooled context would carry into the image near the bands."""
    t, b, l, r = pad
    if not any(pad):
        return image
    return np.pad(image, ((t, b), (l, r), (0, 0)), mode="symmetric")


class Predictor:
    """Callable: list of H x W x 3 uint8 images (sizes may differ) -> list of H x W integer
    label maps at the images' own sizes (uint8 for argmax and offset rules).

    Each image is resized to the network's input sizes (`meta.sizes`: its input size and a
    two-input network's spatial size, by default at the paper's ratio) exactly as the datasets
    do in training (`iaseg.data.io.resize_image`: PIL bilinear, antialiased when
    shrinking), the batch goes through `net` (a runner, which owns the precision), and each
    image's logits are upsampled to its size before `decide` (default argmax; a decision rule
    plugs in here). With `keep_aspect`, an image of another aspect ratio than `input_size` is
    first padded to that ratio (`aspect_padding`, bands mirrored from the image: `pad_image`)
    instead of being stretched; the logits are brought back to the padded size and the bands cut
    off."""

    def __init__(self, net: Callable[..., torch.Tensor], meta: ModelMetadata, device: torch.device,
                 decide: Callable[[torch.Tensor], torch.Tensor] | None = None, keep_aspect: bool = False) -> None:
        self.net, self.meta, self.device = net, meta, device
        self.sizes = meta.sizes
        self.input_size = self.sizes[0]
        self.decide = decide or argmax_decision
        self.keep_aspect = keep_aspect

    def inputs(self, image: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The network inputs (1 x 3 x h x w each) of one uint8 image, resized like training."""
        return tuple(image_to_tensor(resize_image(image, s))[None] for s in self.sizes)

    def prepare(self, images: list[np.ndarray]) -> Prepared:
        """The batch's network inputs and what `labels` needs to bring the logits back (work
        with no model in it: a pipeline runs it in its reading thread)."""
        pads = [aspect_padding(im.shape[:2], self.input_size) if self.keep_aspect else (0, 0, 0, 0)
                for im in images]
        parts = [self.inputs(pad_image(im, pad)) for im, pad in zip(images, pads)]
        return Prepared(tuple(torch.cat(x) for x in zip(*parts)), [im.shape[:2] for im in images], pads)

    @torch.no_grad()
    def logits(self, prepared: Prepared) -> torch.Tensor:
        """The network's logits for a prepared batch (at the network's size)."""
        return self.net(*(x.to(self.device) for x in prepared.inputs))

    @torch.no_grad()
    def labels(self, prepared: Prepared, logits: torch.Tensor) -> list[np.ndarray]:
        """Label maps at the images' own sizes: argmax (or `decide`) of the logits bilinearly
        resized to each (padded) image, bands cut off. With argmax or a rule of per-class
        offsets (a `decide` with an `offsets` attribute, as `DecisionRule`), `upsample_argmax`
        gives the same uint8 map without resizing every class; any other `decide` gets the
        resized logits."""
        offsets = getattr(self.decide, "offsets", None)
        fast = self.decide is argmax_decision or offsets is not None
        out = []
        for i, ((h, w), (t, b, l, r)) in enumerate(zip(prepared.shapes, prepared.pads)):
            if fast:
                z = logits[i].detach().float().cpu().numpy()
                o = None if offsets is None else np.asarray(torch.as_tensor(offsets).float().cpu())
                out.append(upsample_argmax(z, (h + t + b, w + l + r), o)[t:t + h, l:l + w])
            else:
                z = resize_logits(logits[i:i + 1], (h + t + b, w + l + r))[..., t:t + h, l:l + w]
                out.append(self.decide(z)[0].cpu().numpy())
        return out

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        prepared = self.prepare(images)
        return self.labels(prepared, self.logits(prepared))


@dataclass
class Prepared:
    """A batch ready for the network: its inputs (N x 3 x h x w each, on the CPU), each image's
    size and its `aspect_padding` bands."""
    inputs: tuple[torch.Tensor, ...]
    shapes: list[tuple[int, int]]
    pads: list[tuple[int, int, int, int]]
