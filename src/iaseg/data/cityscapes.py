"""Cityscapes in the official layout, labelIds mapped to the 19 trainIds on the fly:

    root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
    root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png        (official, mapped by the table
                                                                    in descriptions/cityscapes.yaml)
    root/gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png   (also accepted: already trainIds)

No conversion step is needed. Void is 255.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .base import FileDataset, Pair, require_root, resolve_description, subfolders
from .errors import DatasetError

LAYOUT = ("<root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png with labels "
          "<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png (official Cityscapes layout)")
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_TYPES = ("auto", "labelIds", "labelTrainIds")


def scan_cityscapes(root: Any, split: str, label_type: str = "auto",
                    label_dir: str = "gtFine") -> tuple[list[Pair], list[str], str]:
    """Pair images and labels of one split; `label_type` 'auto' takes labelIds, or
    labelTrainIds where no labelIds file exists."""
    if label_type not in LABEL_TYPES:
        raise ValueError(f"label_type must be one of {LABEL_TYPES}, got {label_type!r}")
    root = require_root(root, "cityscapes", LAYOUT)
    missing = [f"{d}/" for d in ("leftImg8bit", label_dir) if not (root / d).is_dir()]
    if missing:
        raise DatasetError(f"{root}: not a Cityscapes layout: missing {' and '.join(missing)} "
                           f"(expected {LAYOUT}; found {subfolders(root)})")
    img_root, gt_root = root / "leftImg8bit" / split, root / label_dir / split
    for d in (img_root, gt_root):
        if not d.is_dir():
            raise DatasetError(f"{d}: split folder not found (found splits: {subfolders(d.parent)})")
    pairs: list[Pair] = []
    problems: list[str] = []
    bases = set()
    for image in sorted(img_root.glob(f"*/*{IMAGE_SUFFIX}")):
        base = image.name[: -len(IMAGE_SUFFIX)]
        bases.add((image.parent.name, base))
        stem = gt_root / image.parent.name / f"{base}_{label_dir}"
        ids, train_ids = Path(f"{stem}_labelIds.png"), Path(f"{stem}_labelTrainIds.png")
        if label_type in ("auto", "labelIds") and ids.is_file():
            pairs.append(Pair(image, ids, "labelIds"))
        elif label_type in ("auto", "labelTrainIds") and train_ids.is_file():
            pairs.append(Pair(image, train_ids, "labelTrainIds"))
        else:
            want = {"auto": f"{ids.name} or {train_ids.name}", "labelIds": ids.name,
                    "labelTrainIds": train_ids.name}[label_type]
            problems.append(f"{image}: no label (expected {want} in {stem.parent})")
    for suffix in ("_labelIds.png", "_labelTrainIds.png"):
        for label in sorted(gt_root.glob(f"*/*_{label_dir}{suffix}")):
            base = label.name[: -len(f"_{label_dir}{suffix}")]
            if (label.parent.name, base) not in bases:
                problems.append(f"{label}: label without image (no {img_root / label.parent.name / (base + IMAGE_SUFFIX)})")
    return pairs, problems, str(img_root)


class CityscapesDataset(FileDataset):
    """Cityscapes, 19 trainIds, void 255. Options: `label_type` ('auto' | 'labelIds' |
    'labelTrainIds'), `label_dir` ('gtFine'; 'gtCoarse' works too), `description`, `strict`,
    `spatial_size`, `augment`."""

    def __init__(self, root: Any, split: str = "train", size: Any = None, *, label_type: str = "auto",
                 label_dir: str = "gtFine", description: Any = None, strict: bool = True,
                 spatial_size: Any = None, augment: Any = None) -> None:
        desc = resolve_description(description, "cityscapes")
        if desc.label_map is None:
            raise DatasetError(f"{desc.source}: a Cityscapes description needs a label_map (labelId -> trainId)")
        pairs, problems, where = scan_cityscapes(root, split, label_type, label_dir)
        self.root, self.split = Path(root), split
        super().__init__(pairs, problems, where, desc, strict=strict, size=size,
                         spatial_size=spatial_size, augment=augment,
                         lut_descriptions={"labelIds": desc, "labelTrainIds": replace(desc, label_map=None)})
