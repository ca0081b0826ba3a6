"""A custom dataset from two folders, paired by file stem (sub-folders allowed):

    root/images/<...>/<stem>.jpg|png|...    root/labels/<...>/<stem><label_suffix>.png     split=None
    root/<split>/images/...                 root/<split>/labels/...                        split='train'
    root/images/<split>/...                 root/labels/<split>/...                        (also accepted)

Labels are single-channel PNGs of class ids (raw values mapped by the description's optional
`label_map`), or, with `label_format='rgb'`, colour-coded images whose colours are the
description's palette (and its void colour). The description (classes, palette, ignore index,
groups) is a YAML file given as `description=`, or `root/description.yaml`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import FileDataset, Pair, list_files, require_root, resolve_description, subfolders
from .errors import DatasetError
from .io import IMAGE_EXTENSIONS, LABEL_EXTENSIONS, LABEL_FORMATS, ColourTable, read_rgb_label, write_label

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


def scan_folder(root: Any, split: str | None, label_suffix: str = "",
                label_format: str = "ids") -> tuple[list[Pair], list[str], str]:
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
            pairs.append(Pair(image, label, label_format))
    for key, label in labels.items():
        if key not in keys:
            problems.append(f"{label}: label without image (no {img_dir / key}.*)")
    return pairs, problems, str(img_dir)


class FolderDataset(FileDataset):
    """images/ + labels/ paired by stem. Options: `description` (YAML path or shipped name; default
    `<root>/description.yaml`), `label_suffix` (e.g. '_mask'), `label_format` ('ids': class-id
    PNGs; 'rgb': colour-coded labels in the description's palette), `strict`, `spatial_size`,
    `augment`."""

    def __init__(self, root: Any, split: str | None = None, size: Any = None, *, description: Any = None,
                 label_suffix: str = "", label_format: str = "ids", strict: bool = True, spatial_size: Any = None,
                 augment: Any = None) -> None:
        if label_format not in LABEL_FORMATS:
            raise DatasetError(f"label_format must be one of {list(LABEL_FORMATS)}, got {label_format!r}")
        if description is None:
            default = Path(root) / "description.yaml" if root is not None else None
            if default is None or not default.is_file():
                raise DatasetError(f"{root}: a folder dataset needs a description: pass description="
                                   f"<YAML file or shipped name> or put description.yaml in the root")
            description = default
        desc = resolve_description(description, None)
        pairs, problems, where = scan_folder(root, split, label_suffix, label_format)
        self.root, self.split = Path(root), split
        super().__init__(pairs, problems, where, desc, strict=strict, size=size,
                         spatial_size=spatial_size, augment=augment)


def convert_rgb_labels(source: str | Path, out: str | Path, description: Any) -> tuple[list[Path], list[str]]:
    """Convert colour-coded labels (a file, or every label file under a folder) into index PNGs
    under `out` (same relative paths, .png) that the folder dataset reads with the same
    description (see io.encode_label). A file with an unknown colour is skipped and named in the
    problems (first unknown colour and its position); the others are written. Returns (written
    files, problems)."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if source.is_dir():
        files = [(p, p.relative_to(source)) for p in list_files(source, LABEL_EXTENSIONS, recursive=True)]
        if not files:
            raise DatasetError(f"{source}: no label files ({', '.join(LABEL_EXTENSIONS)})")
        if out.resolve() == source.resolve():
            raise DatasetError(f"{out}: the output folder is the input folder; give another --out "
                               "(the colour labels would be overwritten)")
    else:
        files = [(source, Path(source.name))]
    desc = resolve_description(description, None)
    colours = ColourTable(desc)
    written: list[Path] = []
    problems: list[str] = []
    for path, rel in files:
        target = out / rel.with_suffix(".png")
        if target.resolve() == path.resolve():
            problems.append(f"{path}: would be overwritten by its conversion; give another --out")
            continue
        try:
            ids = colours(read_rgb_label(path), path)
        except DatasetError as e:
            problems.append(str(e))
            continue
        written.append(write_label(target, ids, desc))
    return written, problems
