"""Optional training augmentation (off by default, as in the paper): random scale + crop,
horizontal flip, colour jitter and blur, applied to image and label with the same geometry.

The label is warped with nearest sampling; pixels that come from outside the image (zoom out)
get the ignore index. Uses kornia, imported only when augmentation is switched on.

    >>> ds = build_dataset("camvid", root, "train", augment=True)                 # defaults
    >>> ds = build_dataset("camvid", root, "train", augment={"scale": (0.5, 2.0), "hue": 0})
    >>> ds = build_dataset("camvid", root, "train", augment={"scale": (0.5, 2.0), "crop": (288, 384)})
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
    tensors; the output has the input's size, or `crop`'s.

    scale:      zoom factor range (log-uniform), or None for no scaling; the zoomed image is
                cropped (or padded) back to the input size at a random position
    crop:       (h, w) of the output, smaller than the input for training on crops (None: the
                input's size): a random window of the zoomed image, padded with the ignore
                label where the zoomed image is smaller than the window
    hflip:      probability of a horizontal flip
    brightness: additive brightness offset drawn from [-b, b]
    contrast, saturation: multiplicative factors drawn from [1 - c, 1 + c]
    hue:        hue shift drawn from [-h, h] in turns (0.5 = half the colour circle), applied as a
                rotation of the YUV chroma plane
    blur:       probability of a Gaussian blur (3x3 .. 7x7 kernel, sigma drawn from blur_sigma)
    """
    scale: tuple[float, float] | None = (0.75, 1.5)
    crop: tuple[int, int] | None = None
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    ignore_index: int = 255
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            lo, hi = (float(v) for v in self.scale)
            if not 0 < lo <= hi:
                raise ValueError(f"augment scale must be (low, high) with 0 < low <= high, got {self.scale!r}")
            self.scale = (lo, hi)
        if self.crop is not None:
            crop = tuple(self.crop)
            if len(crop) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 8 for v in crop):
                raise ValueError(f"augment crop must be (height, width), integers >= 8, got {self.crop!r}")
            self.crop = (int(crop[0]), int(crop[1]))
        lo, hi = (float(v) for v in self.blur_sigma)
        if not 0 < lo <= hi:
            raise ValueError(f"augment blur_sigma must be (low, high) with 0 < low <= high, got {self.blur_sigma!r}")
        self.blur_sigma = (lo, hi)
        for name in ("hflip", "brightness", "contrast", "saturation", "hue", "blur"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"augment {name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("hflip", "blur"):
            if not getattr(self, name) <= 1:
                raise ValueError(f"augment {name} is a probability, got {getattr(self, name)!r}")
        _kornia()  # fail now, not inside a DataLoader worker

    def _uniform(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator)

    def _warp(self, kornia: Any, image: torch.Tensor, label: torch.Tensor, s: torch.Tensor, tx: torch.Tensor,
              ty: torch.Tensor, out: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        m = torch.zeros(len(s), 2, 3)
        m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2] = s, s, tx, ty
        image = kornia.geometry.transform.warp_affine(image, m, out, mode="bilinear",
                                                      padding_mode="zeros", align_corners=False)
        # shift by one so that padding (0) is distinguishable from class 0
        shifted = (label.to(torch.float32) + 1)[:, None]
        shifted = kornia.geometry.transform.warp_affine(shifted, m, out, mode="nearest",
                                                        padding_mode="zeros", align_corners=False)[:, 0]
        label = shifted.round().to(torch.int64) - 1
        label[label < 0] = self.ignore_index
        return image, label

    def __call__(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kornia = _kornia()
        batched = image.dim() == 4
        if not batched:
            image, label = image[None], label[None]
        if image.shape[0] != label.shape[0] or image.shape[-2:] != label.shape[-2:]:
            raise ValueError(f"augment: image {tuple(image.shape)} and label {tuple(label.shape)} do not match")
        n, _, h, w = image.shape
        ch, cw = self.crop or (h, w)
        scaled = self.scale is not None and self.scale != (1.0, 1.0)
        if scaled or (ch, cw) != (h, w):
            if scaled:
                lo, hi = self.scale
                s = torch.exp(self._uniform(n, math.log(lo), math.log(hi)))
            else:
                s = torch.ones(n)
            # x_out = s * x_in + t: a random window of the zoomed image when it is larger than the
            # output, the zoomed image at a random place in the output (padded) when it is smaller
            tx = self._uniform(n, 0, 1) * (cw - s * w)
            ty = self._uniform(n, 0, 1) * (ch - s * h)
            if not scaled:  # a plain crop: whole pixels, no resampling
                image, label = _place(image, label, ty.floor().long(), tx.floor().long(), (ch, cw),
                                      self.ignore_index)
            else:
                image, label = self._warp(kornia, image, label, s, tx, ty, (ch, cw))
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
        if self.blur > 0:
            # drawn for every sample (blurred or not), so the number of draws never depends on them
            hit = torch.rand(n, generator=self.generator) < self.blur
            sigma = self._uniform(n, *self.blur_sigma)
            if hit.any():
                image = image.clone()
            for i in torch.nonzero(hit).flatten().tolist():
                k = 2 * min(3, max(1, math.ceil(2 * float(sigma[i])))) + 1   # 3, 5 or 7 taps
                sig = torch.full((1, 2), float(sigma[i]))
                image[i:i + 1] = kornia.filters.gaussian_blur2d(image[i:i + 1], (k, k), sig, border_type="reflect")
        image = image.clamp(0.0, 1.0)
        if not batched:
            image, label = image[0], label[0]
        return image, label


def _place(image: torch.Tensor, label: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor, out: tuple[int, int],
           ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched images and labels shifted by whole pixels (ty, tx: where the input's top-left
    corner lands in the output) into an output of size `out`; uncovered pixels are 0 / ignore."""
    n, c, h, w = image.shape
    oh, ow = out
    new_img = image.new_zeros(n, c, oh, ow)
    new_lab = label.new_full((n, oh, ow), ignore_index)
    for i in range(n):
        dy, dx = int(ty[i]), int(tx[i])
        y0, y1, x0, x1 = max(0, dy), min(oh, dy + h), max(0, dx), min(ow, dx + w)
        if y0 < y1 and x0 < x1:
            new_img[i, :, y0:y1, x0:x1] = image[i, :, y0 - dy:y1 - dy, x0 - dx:x1 - dx]
            new_lab[i, y0:y1, x0:x1] = label[i, y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return new_img, new_lab


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
