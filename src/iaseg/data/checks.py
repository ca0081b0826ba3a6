"""Strict dataset checks: a scan of a whole split that collects every problem.

    >>> from iaseg.data import check_dataset
    >>> report = check_dataset("camvid", "/data/camvid", "train")
    >>> print(report.summary()); report.ok
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .description import DatasetDescription
from .errors import DatasetError, DescriptionError


@dataclass
class CheckReport:
    """What `check_dataset` found: summary numbers and one line per problem."""
    dataset: str
    root: str | None
    split: str | None
    description: DatasetDescription | None = None
    files: int = 0                      # complete image/label pairs found
    images: int = 0                     # pairs that read without problems
    sizes: Counter = field(default_factory=Counter)   # (H, W) -> count
    class_pixels: np.ndarray | None = None            # int64 per class
    void_pixels: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total_pixels(self) -> int:
        cls = int(self.class_pixels.sum()) if self.class_pixels is not None else 0
        return cls + self.void_pixels

    def class_shares(self) -> np.ndarray:
        """Pixel share of each class among all (class + void) pixels."""
        total = max(self.total_pixels, 1)
        return self.class_pixels / total if self.class_pixels is not None else np.zeros(0)

    def summary(self) -> str:
        where = f"{self.root}" if self.root else "(generated)"
        lines = [f"dataset {self.dataset} at {where}, split {self.split}",
                 f"images: {self.images} read ok of {self.files} image/label pairs, {len(self.problems)} problem(s)"]
        if self.sizes:
            sizes = ", ".join(f"{w}x{h} (WxH): {n}" for (h, w), n in self.sizes.most_common())
            lines.append(f"sizes: {sizes}")
        if self.description is not None and self.class_pixels is not None and self.total_pixels:
            total = self.total_pixels
            lines.append(f"{'id':>4}  {'class':<16}{'pixels':>14}{'share %':>10}")
            for i, (name, n) in enumerate(zip(self.description.classes, self.class_pixels)):
                lines.append(f"{i:>4}  {name:<16}{int(n):>14,}{100 * n / total:>10.2f}")
            lines.append(f"{self.description.ignore_index:>4}  {'void':<16}{self.void_pixels:>14,}"
                         f"{100 * self.void_pixels / total:>10.2f}")
        return "\n".join(lines)


def count_pixels(label: np.ndarray, num_classes: int, ignore_index: int) -> tuple[np.ndarray, int]:
    """Per-class pixel counts and the void count of one mapped label array (values must be
    class ids or the ignore index)."""
    flat = label.ravel()
    if 0 <= ignore_index:
        counts = np.bincount(flat, minlength=max(num_classes, ignore_index + 1))
        return counts[:num_classes].astype(np.int64), int(counts[ignore_index])
    void = flat == ignore_index
    return np.bincount(flat[~void], minlength=num_classes)[:num_classes].astype(np.int64), int(void.sum())


def check_dataset(name: str, root: str | Path | None, split: str | None = None,
                  description: Any = None, limit: int | None = None, **options: Any) -> CheckReport:
    """Scan a whole split and collect every problem (does not stop at the first).

    Reads every image and label at native resolution, so truncated files, size mismatches and
    bad label values are found. `limit` reads only the first N pairs (the listing is complete)."""
    from .build import DATASETS, build_dataset, default_split

    split = default_split(name) if split is None else split
    report = CheckReport(dataset=name, root=str(root) if root is not None else None, split=split)
    if description is not None:
        options["description"] = description
    key = name.lower()
    if key in DATASETS and getattr(DATASETS[key], "supports_strict", False):
        options["strict"] = False
    try:
        ds = build_dataset(name, root, split, **options)
    except (DatasetError, DescriptionError) as e:
        report.problems.append(str(e))
        return report
    desc = ds.description
    report.description = desc
    report.problems.extend(getattr(ds, "problems", []))
    report.files = len(ds)
    report.class_pixels = np.zeros(desc.num_classes, dtype=np.int64)
    n = len(ds) if limit is None else min(limit, len(ds))
    for i in range(n):
        try:
            image, label, _ = ds.read(i)
        except DatasetError as e:
            report.problems.append(str(e))
            continue
        report.images += 1
        report.sizes[tuple(image.shape[:2])] += 1
        counts, void = count_pixels(label, desc.num_classes, desc.ignore_index)
        report.class_pixels += counts
        report.void_pixels += void
    if getattr(ds, "problems", None) is not None and len(ds) == 0:
        report.problems.append(ds.empty_message())
    return report
