"""`build_dataset(name, root, split, size=None, **options)`: the one entry point to the datasets."""
from __future__ import annotations

import inspect
from typing import Any

from torch.utils.data import Dataset

from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset
from .folder import FolderDataset
from .synthetic import SyntheticStreets

DATASETS: dict[str, type[Dataset]] = {
    "camvid": CamVidDataset,
    "cityscapes": CityscapesDataset,
    "folder": FolderDataset,
    "synthetic": SyntheticStreets,
}


def default_split(name: str) -> str | None:
    """The split used when none is given: 'train', or None (flat layout) for folder datasets."""
    return None if name.lower() == "folder" else "train"


def dataset_options(name: str) -> list[str]:
    """Keyword options `build_dataset` accepts for `name` (besides root, split, size)."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "root", "split", "size")]


def _lookup(name: str) -> type[Dataset]:
    try:
        return DATASETS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def build_dataset(name: str, root: Any, split: str | None = "train", size: Any = None, **options: Any) -> Dataset:
    """A dataset of dict items {'image', 'label', 'path'[, 'spatial']}.

    name     'camvid' | 'cityscapes' | 'folder' | 'synthetic'
    root     the dataset folder (ignored by 'synthetic', may be None there)
    split    'train' | 'val' | 'test' | ...; None for a flat folder dataset
    size     (H, W) to resize to (image bilinear, label nearest), None = native
    options  common: description, spatial_size=(H1, W1) | 'native', augment, strict;
             camvid: list_file; cityscapes: label_type, label_dir; folder: label_suffix;
             synthetic: length, seed
    """
    cls = _lookup(name)
    unknown = set(options) - set(dataset_options(name))
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for dataset {name!r}; "
                         f"accepted: {', '.join(dataset_options(name))}")
    return cls(root, split, size=size, **options)
