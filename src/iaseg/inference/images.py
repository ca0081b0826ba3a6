"""Model inputs from image files or datasets, for int8 calibration and accuracy checks.

Inputs follow the training convention: RGB scaled to [0, 1], resized (bilinear) to the export
size; BiERF-PSPNet's spatial input is the same image resized to its spatial size. Files are read
by `iaseg.data.io`, strictly: unreadable, 16-bit or float images and label values that are
neither classes nor void raise DatasetError. Labels are mapped with the description (its
label_map when it has one) and resized with nearest neighbour at pixel centres, as datasets do.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from iaseg.data.base import image_to_tensor
from iaseg.data.io import IMAGE_EXTENSIONS, label_lut, map_label, read_image, resize_label
from iaseg.data.io import read_label as read_raw_label
from iaseg.metadata import ModelMetadata


def image_files(root: str | Path) -> list[Path]:
    """Image files under `root` (recursively), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}")
    return files


def _pick(files: list[Any], count: int | None, seed: int) -> list[Any]:
    if count is None or count >= len(files):
        return list(files)
    return sorted(random.Random(seed).sample(files, count), key=str)


def read_rgb(path: str | Path) -> torch.Tensor:
    """3 x H x W float32 in [0, 1] (`iaseg.data.io.read_image`: strict)."""
    return image_to_tensor(read_image(path))


def inputs_from_image(image: torch.Tensor, meta: ModelMetadata) -> tuple[torch.Tensor, ...]:
    """The model input tuple (batch 1) for one 3 x H x W image in [0, 1]."""
    if meta.input_size is None:
        raise ValueError("the model has no input size: give one (--size HxW)")
    if meta.num_inputs == 2 and meta.spatial_size is None:
        raise ValueError("BiERF-PSPNet needs a spatial size")
    return meta.image_inputs(image[None].float())


def folder_inputs(root: str | Path, meta: ModelMetadata, count: int | None = 32, seed: int = 0
                  ) -> list[tuple[torch.Tensor, ...]]:
    """Up to `count` images of a folder (a seeded random subset) as model input tuples."""
    return [inputs_from_image(read_rgb(p), meta) for p in _pick(image_files(root), count, seed)]


def read_label(path: str | Path, meta: ModelMetadata) -> torch.Tensor:
    """H x W int64 class ids (or the ignore index) at the model input size."""
    desc = meta.description
    label = map_label(read_raw_label(path), label_lut(desc), path, desc)
    return torch.from_numpy(resize_label(label, meta.input_size).astype("int64"))


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
    from iaseg.data import build_dataset

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
            label = torch.from_numpy(resize_label(torch.as_tensor(label).long().numpy(), meta.input_size))[None]
        out.append((inputs_from_image(image, meta), label))
    return out
