"""A custom dataset from two folders, paired by file stem (sub-folders allowed):

    root/images/<...>/<stem>.jpg|png|...    root/labels/<...>/<stem><label_suffix>.png     split=None
    root/<split>/images/...                 root/<split>/labels/...                        split='train'
    root/images/<split>/...                 root/labels/<split>/...                        (also accepted)

Labels are single-channel PNGs of class ids (raw values mapped by the description's optional
`label_map`). The description (classes, palette, ignore index, groups) is a YAML file given as
`description=`, or `root/description.yaml`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import FileDataset, Pair, list_files, require_root, resolve_description, subfolders
from .errors import DatasetError
from .io import IMAGE_EXTENSIONS, LABEL_EXTENSIONS

LAYOUT = "<root>/images/ and <root>/labels/ (or <root>/<split>/images/ and <root>/<split>/labels/)"


def folder_dirs(root: Path, split: str | None) -> tuple[Path, Path]:
    if split in (None, ""):
        candidates = [(root / "images", root / "labels")]
    else:
        candidates = [(root / split / "images", root / split / "labels"),
                      (root / "images" / split, root / "labels" / split)]
    for img_dir, lab_dir in candidates:
        if img_dir.is_dir() and lab_dir.is_dir():
            return img_dir, lab_dir
    hint = " (use split=None for the flat images/ + labels/ layout)" if split and (root / "images").is_dir() else ""
    want = " or ".join(f"{i.relative_to(root)}/ + {l.relative_to(root)}/" for i, l in candidates)
    raise DatasetError(f"{root}: not a folder dataset layout for split {split!r}: expected {want}"
                       f" (found {subfolders(root)}){hint}")


def scan_folder(root: Any, split: str | None, label_suffix: str = "") -> tuple[list[Pair], list[str], str]:
    root = require_root(root, "folder", LAYOUT)
    img_dir, lab_dir = folder_dirs(root, split)
    images = list_files(img_dir, IMAGE_EXTENSIONS, recursive=True)
    labels = {}
    for p in list_files(lab_dir, LABEL_EXTENSIONS, recursive=True):
        key = str(p.relative_to(lab_dir).with_suffix(""))
        if label_suffix:
            if not key.endswith(label_suffix):
                continue
            key = key[: -len(label_suffix)]
        labels[key] = p
    pairs: list[Pair] = []
    problems: list[str] = []
    keys = set()
    for image in images:
        key = str(image.relative_to(img_dir).with_suffix(""))
        if key in keys:
            problems.append(f"{image}: two images share the stem {key!r}; labels are paired by stem")
            continue
        keys.add(key)
        label = labels.get(key)
        if label is None:
            problems.append(f"{image}: no label (expected {lab_dir / (key + label_suffix)}.png)")
        else:
            pairs.append(Pair(image, label))
    for key, label in labels.items():
        if key not in keys:
            problems.append(f"{label}: label without image (no {img_dir / key}.*)")
    return pairs, problems, str(img_dir)


class FolderDataset(FileDataset):
    """images/ + labels/ paired by stem. Options: `description` (YAML path or shipped name; default
    `<root>/description.yaml`), `label_suffix` (e.g. '_mask'), `strict`, `spatial_size`, `augment`."""

    def __init__(self, root: Any, split: str | None = None, size: Any = None, *, description: Any = None,
                 label_suffix: str = "", strict: bool = True, spatial_size: Any = None,
                 augment: Any = None) -> None:
        if description is None:
            default = Path(root) / "description.yaml" if root is not None else None
            if default is None or not default.is_file():
                raise DatasetError(f"{root}: a folder dataset needs a description: pass description="
                                   f"<YAML file or shipped name> or put description.yaml in the root")
            description = default
        desc = resolve_description(description, None)
        pairs, problems, where = scan_folder(root, split, label_suffix)
        self.root, self.split = Path(root), split
        super().__init__(pairs, problems, where, desc, strict=strict, size=size,
                         spatial_size=spatial_size, augment=augment)
