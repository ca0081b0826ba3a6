"""Optional training augmentation (off by default, as in the paper): random scale + crop,
horizontal flip and colour jitter, applied to image and label with the same geometry.

The label is warped with nearest sampling; pixels that come from outside the image (zoom out)
get the ignore index. Uses kornia, imported only when augmentation is switched on.

    >>> ds = build_dataset("camvid", root, "train", augment=True)                 # defaults
    >>> ds = build_dataset("camvid", root, "train", augment={"scale": (0.5, 2.0), "hue": 0})
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import torch


def _kornia() -> Any:
    try:
        import kornia
    except ImportError:
        raise ImportError("augmentation needs kornia: pip install kornia (or pip install 'iaseg[augment]')") from None
    return kornia


@dataclass
class Augment:
    """Callable (image, label) -> (image, label) for 3xHxW / HxW or batched Nx3xHxW / NxHxW
    tensors; the output has the input's size.

    scale:      zoom factor range (log-uniform), or None for no scaling; the zoomed image is
                cropped (or padded) back to the input size at a random position
    hflip:      probability of a horizontal flip
    brightness: additive brightness offset drawn from [-b, b]
    contrast, saturation: multiplicative factors drawn from [1 - c, 1 + c]
    hue:        hue shift drawn from [-h, h] in turns (0.5 = half the colour circle), applied as a
                rotation of the YUV chroma plane
    """
    scale: tuple[float, float] | None = (0.75, 1.5)
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    ignore_index: int = 255
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            lo, hi = (float(v) for v in self.scale)
            if not 0 < lo <= hi:
                raise ValueError(f"augment scale must be (low, high) with 0 < low <= high, got {self.scale!r}")
            self.scale = (lo, hi)
        for name in ("hflip", "brightness", "contrast", "saturation", "hue"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"augment {name} must be >= 0, got {getattr(self, name)!r}")
        if not self.hflip <= 1:
            raise ValueError(f"augment hflip is a probability, got {self.hflip!r}")
        _kornia()  # fail now, not inside a DataLoader worker

    def _uniform(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator)

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kornia = _kornia()
        batched = image.dim() == 4
        if not batched:
            image, label = image[None], label[None]
        if image.shape[0] != label.shape[0] or image.shape[-2:] != label.shape[-2:]:
            raise ValueError(f"augment: image {tuple(image.shape)} and label {tuple(label.shape)} do not match")
        n, _, h, w = image.shape
        if self.scale is not None and self.scale != (1.0, 1.0):
            lo, hi = self.scale
            s = torch.exp(self._uniform(n, math.log(lo), math.log(hi)))
            # x_out = s * x_in + t; t keeps the zoomed image covering the frame when s >= 1
            tx = self._uniform(n, 0, 1) * (w - s * w)
            ty = self._uniform(n, 0, 1) * (h - s * h)
            m = torch.zeros(n, 2, 3)
            m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2] = s, s, tx, ty
            image = kornia.geometry.transform.warp_affine(image, m, (h, w), mode="bilinear",
                                                          padding_mode="zeros", align_corners=False)
            # shift by one so that padding (0) is distinguishable from class 0
            shifted = (label.to(torch.float32) + 1)[:, None]
            shifted = kornia.geometry.transform.warp_affine(shifted, m, (h, w), mode="nearest",
                                                            padding_mode="zeros", align_corners=False)[:, 0]
            label = shifted.round().to(torch.int64) - 1
            label[label < 0] = self.ignore_index
        if self.hflip > 0:
            flip = torch.rand(n, generator=self.generator) < self.hflip
            if flip.any():
                image, label = image.clone(), label.clone()
                image[flip] = image[flip].flip(-1)
                label[flip] = label[flip].flip(-1)
        enhance = kornia.enhance
        if self.brightness > 0:
            image = enhance.adjust_brightness(image, self._uniform(n, -self.brightness, self.brightness))
        if self.contrast > 0:
            image = enhance.adjust_contrast(image, self._uniform(n, 1 - self.contrast, 1 + self.contrast))
        if self.saturation > 0:
            image = enhance.adjust_saturation(image, self._uniform(n, 1 - self.saturation, 1 + self.saturation))
        if self.hue > 0:
            # rotate the chroma plane in YUV: a hue shift that is 5x cheaper than going via HSV
            angle = (self._uniform(n, -self.hue, self.hue) * 2 * math.pi).view(-1, 1, 1)
            yuv = kornia.color.rgb_to_yuv(image)
            cos, sin = torch.cos(angle), torch.sin(angle)
            u, v = yuv[:, 1], yuv[:, 2]
            image = kornia.color.yuv_to_rgb(torch.stack([yuv[:, 0], cos * u - sin * v, sin * u + cos * v], 1))
        image = image.clamp(0.0, 1.0)
        if not batched:
            image, label = image[0], label[0]
        return image, label


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation draws: a function of (seed, epoch, index) alone, so
    neither the loader's worker count nor an interruption and resume changes them."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2, np.uint32)
               .astype(np.uint64) @ np.array([1 << 32, 1], dtype=np.uint64)) & ((1 << 63) - 1)


def make_augment(augment: Any, ignore_index: int) -> Callable[[torch.Tensor, torch.Tensor], tuple] | None:
    """The `augment=` option of the datasets: None/False (off), True (defaults), a dict of
    Augment fields, or any callable (image, label) -> (image, label)."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return Augment(ignore_index=ignore_index)
    if isinstance(augment, dict):
        known = {f.name for f in fields(Augment)}
        unknown = set(augment) - known
        if unknown:
            raise ValueError(f"unknown augment option(s) {sorted(unknown)}; allowed: {sorted(known - {'generator'})}")
        return Augment(**{"ignore_index": ignore_index, **augment})
    if callable(augment):
        return augment
    raise ValueError(f"augment must be True/False, a dict of options or a callable, got {type(augment).__name__}")
