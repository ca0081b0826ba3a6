"""Model inputs from image files or datasets, for int8 calibration and accuracy checks.

Inputs follow the training convention: RGB scaled to [0, 1], resized (bilinear) to the export
size; BiERF-PSPNet's spatial input is the same image resized to its spatial size. Labels are
resized with nearest neighbour and mapped with the description's label_map when it has one.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .metadata import ModelMetadata

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}


def image_files(root: str | Path) -> list[Path]:
    """Image files under `root` (recursively), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return files


def _pick(files: list[Any], count: int | None, seed: int) -> list[Any]:
    if count is None or count >= len(files):
        return list(files)
    return sorted(random.Random(seed).sample(files, count), key=str)


def read_rgb(path: str | Path) -> torch.Tensor:
    """3 x H x W float32 in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def inputs_from_image(image: torch.Tensor, meta: ModelMetadata) -> tuple[torch.Tensor, ...]:
    """The model input tuple (batch 1) for one 3 x H x W image in [0, 1]."""
    if meta.input_size is None:
        raise ValueError("the model has no input size: give one (--size HxW)")
    sizes = [meta.input_size] + ([meta.spatial_size] if meta.num_inputs == 2 else [])
    if None in sizes:
        raise ValueError("BiERF-PSPNet needs a spatial size")
    x = image[None].float()
    return tuple(F.interpolate(x, size=tuple(s), mode="bilinear", align_corners=False).clamp_(0, 1)
                 if tuple(x.shape[-2:]) != tuple(s) else x for s in sizes)


def folder_inputs(root: str | Path, meta: ModelMetadata, count: int | None = 32, seed: int = 0
                  ) -> list[tuple[torch.Tensor, ...]]:
    """Up to `count` images of a folder (a seeded random subset) as model input tuples."""
    return [inputs_from_image(read_rgb(p), meta) for p in _pick(image_files(root), count, seed)]


def read_label(path: str | Path, meta: ModelMetadata) -> torch.Tensor:
    """H x W int64 class ids at the model input size; unknown values become ignore_index."""
    from PIL import Image

    desc = meta.description
    with Image.open(path) as im:
        raw = np.asarray(im if im.mode in ("L", "P", "I", "I;16") else im.convert("L")).astype(np.int64)
    if desc.label_map is not None:
        lut = np.full(max(max(desc.label_map), int(raw.max())) + 1, desc.ignore_index, dtype=np.int64)
        for k, v in desc.label_map.items():
            if k >= 0:
                lut[k] = v
        raw = lut[raw]
    lab = torch.from_numpy(raw)
    lab[(lab < 0) | (lab >= desc.num_classes)] = desc.ignore_index
    h, w = meta.input_size
    if tuple(lab.shape) != (h, w):
        lab = F.interpolate(lab[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
    return lab


def labelled_folder_samples(images: str | Path, labels: str | Path, meta: ModelMetadata,
                            count: int | None = None, seed: int = 0
                            ) -> list[tuple[tuple[torch.Tensor, ...], torch.Tensor]]:
    """(inputs, label[None]) pairs for images with a label file of the same stem in `labels`."""
    by_stem = {p.stem: p for p in image_files(labels)}
    pairs = [(p, by_stem[p.stem]) for p in image_files(images) if p.stem in by_stem]
    if not pairs:
        raise FileNotFoundError(f"no image in {images} has a label with the same name in {labels}")
    return [(inputs_from_image(read_rgb(i), meta), read_label(lab, meta)[None])
            for i, lab in _pick(pairs, count, seed)]


def dataset_samples(name: str, root: str | Path, split: str, meta: ModelMetadata,
                    count: int | None = None, seed: int = 0
                    ) -> list[tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]:
    """(inputs, label[None] or None) from `iaseg.data.build_dataset(name, root, split=split)`.
    Samples may be (image, label) tuples or dicts with 'image'/'label'; images 3 x H x W float
    in [0, 1] or uint8."""
    try:
        from iaseg.data import build_dataset  # type: ignore[attr-defined]
    except ImportError:
        raise ValueError("reading a dataset by name needs iaseg.data.build_dataset, which this build "
                         "lacks; give a folder of images instead") from None
    ds = build_dataset(name, root, split=split)
    out = []
    for i in _pick(list(range(len(ds))), count, seed):
        sample = ds[i]
        if isinstance(sample, dict):
            image, label = sample.get("image"), sample.get("label")
        else:
            image, label = sample[0], (sample[1] if len(sample) > 1 else None)
        image = torch.as_tensor(image)
        if image.dtype == torch.uint8:
            image = image.float() / 255
        if label is not None:
            label = torch.as_tensor(label).long()
            if tuple(label.shape[-2:]) != tuple(meta.input_size):
                label = F.interpolate(label[None, None].float(), size=tuple(meta.input_size),
                                      mode="nearest")[0, 0].long()
            label = label[None]
        out.append((inputs_from_image(image, meta), label))
    return out
