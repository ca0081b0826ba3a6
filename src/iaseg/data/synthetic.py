"""The synthetic dataset: street scenes in the CamVid 11-class scheme, generated on the fly by
`iaseg.data.street_scenes.render_scene` (no files needed).

Deterministic per (seed, split, index); any size; about 5-10 ms per 360x480 image on one core.

    >>> ds = build_dataset("synthetic", None, "train", size=(360, 480), length=200, seed=0)
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from .base import SegmentationDataset, resolve_description
from .street_scenes import VOID, render_scene

DEFAULT_LENGTH = {"train": 200, "val": 50, "test": 50}
DEFAULT_SIZE = (360, 480)


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for one image: a function of (seed, split, index) only."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(str(split).encode()), int(index)])


class SyntheticStreets(SegmentationDataset):
    """Synthetic street scenes (CamVid classes), generated on the fly; no files needed.

    Options: `length` (images per split; default 200 for train, 50 otherwise), `seed`,
    `description` (defaults to camvid), `spatial_size`, `augment`. `size` defaults to 360x480;
    with `spatial_size` the scene is drawn at the spatial size and shrunk for the context image.
    """

    def __init__(self, root: Any = None, split: str = "train", size: Any = None, *, length: int | None = None,
                 seed: int = 0, description: Any = None, spatial_size: Any = None, augment: Any = None) -> None:
        desc = resolve_description(description, "camvid")
        if desc.num_classes != 11 or desc.ignore_index != VOID:
            raise ValueError(f"{desc.source}: synthetic scenes use the CamVid classes (11 classes, void 11)")
        super().__init__(desc, size=size if size is not None else DEFAULT_SIZE, spatial_size=spatial_size,
                         augment=augment)
        self.split = split or "train"
        self.seed = int(seed)
        self.length = int(length if length is not None else DEFAULT_LENGTH.get(self.split, 50))
        if self.length < 1:
            raise ValueError(f"synthetic dataset length must be >= 1, got {length}")
        self.root = None

    def __len__(self) -> int:
        return self.length

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        size = self.spatial_size if isinstance(self.spatial_size, tuple) else self.size
        image, label = render_scene(size[0], size[1], scene_rng(self.seed, self.split, index))
        return image, label, self.item_name(index)

    def item_name(self, index: int) -> str:
        """The path an item reports, without rendering it."""
        return f"synthetic://{self.split}/seed{self.seed}/{index:06d}"
