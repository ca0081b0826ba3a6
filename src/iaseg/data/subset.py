"""A subset of a dataset's images for quick evaluation and calibration (`--max-images N`,
`--images LIST`): a seeded random choice or a named list, recorded so a report says exactly which
images it scored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from .errors import DatasetError


def item_names(dataset: Any) -> list[str]:
    """The image path of every item, without reading any (file datasets list their pairs,
    generated ones name their items), else the item's index."""
    pairs = getattr(dataset, "pairs", None)
    if pairs is not None:
        return [str(p.image) for p in pairs]
    name = getattr(dataset, "item_name", None)
    return [name(i) if name else str(i) for i in range(len(dataset))]


def read_image_list(text: str) -> list[str]:
    """--images: a text file of names (one a line, '#' comments), or names separated by commas."""
    path = Path(text)
    if path.is_file():
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        names = [n for n in lines if n]
        if not names:
            raise DatasetError(f"{path}: the image list names no image")
        return names
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DatasetError(f"--images {text!r}: neither a list file nor comma-separated image names")
    return names


def _matches(name: str, path: str) -> bool:
    """A listed name picks a path by its full path, its end (sub/folder/a.png), its file name or stem."""
    p = Path(path)
    return name in (path, p.name, p.stem) or path.endswith("/" + name.lstrip("/")) or \
        str(p.with_suffix("")).endswith("/" + name.lstrip("/"))


def choose_images(dataset: Any, max_images: int | None = None, images: Sequence[str] | None = None,
                  seed: int = 0) -> tuple[list[int], dict[str, Any] | None]:
    """(sorted item indices, what was chosen) for the items named in `images` and/or at most
    `max_images` of them drawn at random with `seed` (numpy's default_rng, without replacement).
    None for the choice when neither is given (all items). DatasetError for a name that matches no
    image or several, or max_images < 1."""
    names = item_names(dataset)
    indices = list(range(len(names)))
    if images is None and max_images is None:
        return indices, None
    if images is not None:
        picked: list[int] = []
        for name in images:
            hits = [i for i, path in enumerate(names) if _matches(name, path)]
            if not hits:
                raise DatasetError(f"--images: {name!r} is none of the {len(names)} images of the split")
            if len(hits) > 1:
                raise DatasetError(f"--images: {name!r} matches {len(hits)} images ({names[hits[0]]}, "
                                   f"{names[hits[1]]}, ...): give more of its path")
            picked.append(hits[0])
        indices = sorted(set(picked))
    if max_images is not None:
        if max_images < 1:
            raise DatasetError(f"--max-images {max_images}: give at least 1")
        if max_images < len(indices):
            rng = np.random.default_rng(seed)
            indices = sorted(int(i) for i in rng.choice(np.asarray(indices), size=max_images, replace=False))
    choice = {"images": [names[i] for i in indices], "of": len(names), "max_images": max_images,
              "listed": len(images) if images is not None else None, "seed": seed if max_images is not None else None}
    return indices, choice


def describe_choice(choice: dict[str, Any]) -> str:
    """One line: how many images of how many, and how they were chosen."""
    how = []
    if choice["listed"] is not None:
        how.append(f"{choice['listed']} listed by --images")
    if choice["max_images"] is not None and choice["seed"] is not None:
        how.append(f"at most {choice['max_images']} drawn at random with seed {choice['seed']}")
    shown = ", ".join(Path(n).name for n in choice["images"][:5]) + (", ..." if len(choice["images"]) > 5 else "")
    return f"{len(choice['images'])} of {choice['of']} images ({'; '.join(how)}): {shown}"


class ImageSubset(Dataset):
    """The items `indices` of `dataset`, keeping what callers read from a dataset (description,
    pairs) and the choice (`subset`, for reports)."""

    def __init__(self, dataset: Any, indices: Sequence[int], choice: dict[str, Any] | None = None) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.description = dataset.description
        self.subset = choice
        if getattr(dataset, "pairs", None) is not None:
            self.pairs = [dataset.pairs[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __getattr__(self, name: str) -> Any:  # size, spatial_size, ... of the whole dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def subset(dataset: Any, max_images: int | None = None, images: Sequence[str] | None = None,
           seed: int = 0) -> Any:
    """`dataset` itself when nothing is asked, else an ImageSubset of the chosen images."""
    indices, choice = choose_images(dataset, max_images, images, seed)
    return dataset if choice is None else ImageSubset(dataset, indices, choice)
