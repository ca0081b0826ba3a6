"""What every iaseg dataset shares: item assembly (resize, spatial image, augmentation) and, for
file datasets, strict reading of image/label pairs.

An item is a dict:
    image    float32 3 x H x W in [0, 1], RGB (H, W = `size`, or the native size)
    label    int64 H x W class ids, void = description.ignore_index
    path     str, the image path (or a synthetic:// name)
    spatial  float32 3 x H1 x W1, only with `spatial_size` (BiERF-PSPNet's full-resolution input)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .augment import make_augment
from .errors import DatasetError
from .description import DatasetDescription, load_description
from .io import (ColourTable, label_lut, map_label, nearest_index, read_image, read_label, read_rgb_label, resize_image,
                 resize_label)

Size = tuple[int, int]


def parse_size(size: Any, option: str = "size") -> Size | None:
    """None or (H, W) with positive ints; an int means a square."""
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be (height, width), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{option} must be positive, got {size!r}")
    return h, w


def resolve_description(description: Any, default: str | None) -> DatasetDescription:
    """A DatasetDescription, a shipped name, a YAML path, or None for `default`."""
    if isinstance(description, DatasetDescription):
        return description
    if description is None:
        if default is None:
            raise ValueError("a dataset description is required (description=<YAML file or name>)")
        description = default
    return load_description(description)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> float32 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def resize_image_tensor(image: torch.Tensor, size: Size) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp_(0.0, 1.0)


def resize_label_tensor(label: torch.Tensor, size: Size) -> torch.Tensor:
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    rows = torch.from_numpy(nearest_index(label.shape[-2], size[0]))
    cols = torch.from_numpy(nearest_index(label.shape[-1], size[1]))
    return label[rows][:, cols]


class SegmentationDataset(Dataset):
    """Base class: subclasses implement `__len__` and `read(index) -> (image uint8 HxWx3,
    label int32 HxW of class ids/void, path)` at their native resolution."""

    supports_strict = False

    def __init__(self, description: DatasetDescription, size: Any = None, spatial_size: Any = None,
                 augment: Any = None) -> None:
        self.description = description
        self.size = parse_size(size)
        if isinstance(spatial_size, str):
            if spatial_size != "native":
                raise ValueError(f"spatial_size must be (H, W) or 'native', got {spatial_size!r}")
            self.spatial_size: Size | str | None = "native"
        else:
            self.spatial_size = parse_size(spatial_size, "spatial_size")
        self.augment = make_augment(augment, description.ignore_index)

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image, label, path = self.read(index % len(self))
        return self.assemble(image, label, path)

    def assemble(self, image: np.ndarray, label: np.ndarray, path: str) -> dict[str, Any]:
        """Resize to `size`, add the spatial image, apply augmentation (at the spatial size when
        there is one, so the context image, the label and the spatial image stay aligned)."""
        native = tuple(image.shape[:2])
        size = self.size or native
        spatial = None
        if self.spatial_size is not None:
            spatial = native if self.spatial_size == "native" else self.spatial_size
        if self.augment is None:
            item = {"image": image_to_tensor(resize_image(image, size)),
                    "label": torch.from_numpy(resize_label(label, size).astype(np.int64)),
                    "path": path}
            if spatial is not None:
                item["spatial"] = image_to_tensor(resize_image(image, spatial))
            return item
        work = spatial or size
        img_t = image_to_tensor(resize_image(image, work))
        lab_t = torch.from_numpy(resize_label(label, work).astype(np.int64))
        img_t, lab_t = self.augment(img_t, lab_t)
        out = size
        if tuple(lab_t.shape[-2:]) != tuple(work):
            # trained on crops: the context image is the same window at the context scale (a
            # multiple of 8 pixels, as the networks' inputs; alignment within half a stride)
            out = tuple(8 * max(1, round(c * s / (8 * k))) for c, s, k in zip(lab_t.shape[-2:], size, work))
        item = {"image": resize_image_tensor(img_t, out), "label": resize_label_tensor(lab_t, out),
                "path": path}
        if spatial is not None:
            item["spatial"] = img_t
        return item

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} items, {self.description.name}, size={self.size}, "
                f"spatial_size={self.spatial_size}, augment={self.augment is not None})")


class Pair(NamedTuple):
    image: Path
    label: Path
    kind: str = "ids"   # which lookup table maps the label file's raw values; 'rgb': colours via the palette


class FileDataset(SegmentationDataset):
    """Image/label pairs on disk, read strictly. Subclasses set `self.pairs`, `self.problems`
    (pairing problems found while listing) and may add lookup tables per label kind."""

    supports_strict = True

    def __init__(self, pairs: list[Pair], problems: list[str], empty_where: str,
                 description: DatasetDescription, strict: bool = True, size: Any = None,
                 spatial_size: Any = None, augment: Any = None,
                 lut_descriptions: dict[str, DatasetDescription] | None = None) -> None:
        super().__init__(description, size=size, spatial_size=spatial_size, augment=augment)
        self.pairs = pairs
        self.problems = problems
        self._empty_where = empty_where
        if strict and problems:
            more = f" (and {len(problems) - 1} more problem(s): run `iaseg data check`)" if len(problems) > 1 else ""
            raise DatasetError(problems[0] + more)
        if strict and not pairs:
            raise DatasetError(self.empty_message())
        self._lut_desc = {"ids": description, **(lut_descriptions or {})}
        self._luts = {k: label_lut(d) for k, d in self._lut_desc.items()}
        self._colours = ColourTable(description) if any(p.kind == "rgb" for p in pairs) else None

    def empty_message(self) -> str:
        return f"{self._empty_where}: empty split: no image/label pairs found"

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = self.read_label(index)
        check_label_size(pair, label.shape[:2], image.shape[:2])
        return image, label, str(pair.image)

    def read_label(self, index: int) -> np.ndarray:
        """The label of pair `index` as int32 class ids / void, read and converted as for training
        (the pair's label kind: raw values through its lookup table, or colours through the palette)."""
        pair = self.pairs[index]
        if pair.kind == "rgb":
            return self._colours(read_rgb_label(pair.label), pair.label)
        return map_label(read_label(pair.label), self._luts[pair.kind], pair.label, self._lut_desc[pair.kind])


def check_label_size(pair: Pair, label_hw: tuple[int, ...], image_hw: tuple[int, ...]) -> None:
    """DatasetError naming the label file when its (H, W) differs from its image's."""
    if tuple(label_hw) != tuple(image_hw):
        raise DatasetError(f"{pair.label}: label size {label_hw[1]}x{label_hw[0]} differs from image "
                           f"{Path(pair.image).name} size {image_hw[1]}x{image_hw[0]} (WxH)")


def require_root(root: Any, dataset: str, expected: str) -> Path:
    """The dataset root as a Path; a DatasetError saying what was expected if it is missing."""
    if root is None:
        raise DatasetError(f"{dataset}: no root folder given; expected {expected}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root not found ({dataset} expects {expected})")
    return root


def list_files(folder: Path, extensions: tuple[str, ...], recursive: bool = False) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in extensions and p.is_file())


def subfolders(root: Path, limit: int = 12) -> str:
    names = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return shown or "no folders"
