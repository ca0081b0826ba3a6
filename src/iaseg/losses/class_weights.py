"""Class-frequency weights computed from data: pixel counts, ENet weights 1/ln(a + f) and
median-frequency (SegNet) weights, with a small JSON cache. Dataset-agnostic: anything that
yields label maps (tensors, arrays, PIL images, dicts with a "label" entry, (image, label) tuples).

    >>> stats = count_class_pixels([torch.tensor([[0, 1], [1, 255]])], num_classes=2, ignore_index=255)
    >>> compute_class_weights(stats, "enet")
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

METHODS = ("enet", "median", "none")
CACHE_VERSION = 1


def _label_of(item: Any) -> np.ndarray:
    if isinstance(item, dict):
        if "label" not in item:
            raise ValueError(f"dataset items are dicts without a 'label' entry (keys: {sorted(item)})")
        item = item["label"]
    elif isinstance(item, tuple) and len(item) == 2:  # (image, label)
        item = item[1]
    a = item.detach().cpu().numpy() if torch.is_tensor(item) else np.asarray(item)
    if a.dtype.kind not in "iu":
        raise ValueError(f"labels must hold integer class ids, got dtype {a.dtype}")
    return a.astype(np.int64) if a.dtype == np.uint64 else a  # bincount cannot take uint64


def _items(labels: Any) -> tuple[Iterable[Any], int | None]:
    size = len(labels) if hasattr(labels, "__len__") else None
    if isinstance(labels, torch.utils.data.Dataset) and hasattr(labels, "__len__"):
        return (labels[i] for i in range(len(labels))), size  # map-style: index, do not rely on __iter__
    return labels, size


def count_class_pixels(labels: Iterable[Any], num_classes: int, ignore_index: int,
                       progress: bool = False) -> dict[str, Any]:
    """Count pixels per class over label maps (H x W each; N x H x W counts as N images).

    Returns {"counts": [int]*C, "void": int, "total": int (all pixels, void included),
    "images": int, "image_pixels_with_class": [int]*C (pixels of the images that contain the class),
    "image_labelled_pixels_with_class": [int]*C (the same without their void pixels)}.
    Raises ValueError naming label values outside [0, C) that are not `ignore_index`."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index {ignore_index} is a class id in [0, {num_classes})")
    c = int(num_classes)
    counts = np.zeros(c, dtype=np.int64)
    img_pix = np.zeros(c, dtype=np.int64)
    img_lab = np.zeros(c, dtype=np.int64)
    void = total = images = 0
    items, size = _items(labels)
    if progress:
        from tqdm import tqdm
        items = tqdm(items, total=size, desc="counting class pixels", unit="img")
    # numpy's bincount is single-threaded: on small label maps it is several times faster than
    # torch's under CPU contention, and exact in int64.
    for i, item in enumerate(items):
        a = _label_of(item)
        batch = a.reshape(-1, *a.shape[-2:]) if a.ndim >= 2 else a.reshape(1, -1)
        for lab in batch:  # one label map at a time: presence is per image
            lab = lab.reshape(-1)
            n_all, n_void = lab.size, 0
            if lab.dtype.kind == "i" and lab.size and lab.min() < 0:  # negative ignore_index (e.g. -1), or bad values
                neg = lab[lab < 0]
                _check_values(i, np.unique(neg), c, ignore_index)
                n_void = neg.size
                lab = lab[lab >= 0]
            b = np.bincount(lab, minlength=c)
            if b.size > c:  # values >= C: only ignore_index is allowed
                _check_values(i, np.flatnonzero(b[c:]) + c, c, ignore_index)
                n_void += int(b[ignore_index]) if ignore_index >= c else 0
            present = b[:c] > 0
            counts += b[:c]
            img_pix[present] += n_all
            img_lab[present] += n_all - n_void
            void += n_void
            total += n_all
            images += 1
    return {"counts": [int(n) for n in counts], "void": int(void), "total": int(total), "images": images,
            "image_pixels_with_class": [int(n) for n in img_pix],
            "image_labelled_pixels_with_class": [int(n) for n in img_lab]}


def _check_values(i: int, values: np.ndarray, c: int, ignore_index: int) -> None:
    bad = values[values != ignore_index]
    if bad.size:
        raise ValueError(f"label map {i}: values {bad[:10].tolist()} are outside [0, {c}) and not the "
                         f"ignore_index {ignore_index}")


def class_frequencies(stats: dict[str, Any], include_void: bool = True) -> list[float]:
    """f_c = class pixels / all pixels (void in the denominator, as the authors), or / labelled
    pixels with `include_void=False`."""
    counts = [int(n) for n in stats["counts"]]
    denom = int(stats["total"]) if include_void else sum(counts)
    if denom <= 0:
        raise ValueError("no labelled pixels were counted: cannot compute class frequencies")
    return [n / denom for n in counts]


def enet_weights(frequencies: Sequence[float] | torch.Tensor, a: float = 1.02) -> torch.Tensor:
    """ENet weighting w_c = 1 / ln(a + f_c); bounded by 1/ln(a) for absent classes."""
    if not a > 1:
        raise ValueError(f"enet_weights: a must be > 1 (ln(a + f) > 0), got {a}")
    f = torch.as_tensor(frequencies, dtype=torch.float64)
    if f.dim() != 1 or ((f < 0) | (f > 1)).any():
        raise ValueError(f"enet_weights: frequencies must be a 1-D list of values in [0, 1], got {f.tolist()}")
    return (1.0 / torch.log(a + f)).to(torch.float32)


def median_frequency_weights(stats: dict[str, Any], include_void: bool = True) -> torch.Tensor:
    """SegNet median-frequency balancing: freq_c = class pixels / pixels of the images containing
    class c (void pixels of those images included unless `include_void=False`), w_c = median(freq) / freq_c.
    Classes never seen get weight 0, with a warning."""
    key = "image_pixels_with_class" if include_void else "image_labelled_pixels_with_class"
    counts = np.asarray(stats["counts"], dtype=np.float64)
    denom = np.asarray(stats[key], dtype=np.float64)
    seen = denom > 0
    if not seen.any():
        raise ValueError("no labelled pixels were counted: cannot compute median-frequency weights")
    if not seen.all():
        warnings.warn(f"classes {np.flatnonzero(~seen).tolist()} never appear in the labels: weight 0", stacklevel=2)
    freq = np.where(seen, counts / np.where(seen, denom, 1), 0.0)
    med = float(np.median(freq[seen]))
    return torch.as_tensor(np.where(seen, med / np.where(seen, freq, 1), 0.0), dtype=torch.float32)


def compute_class_weights(stats: dict[str, Any], method: str = "enet", a: float = 1.02,
                          include_void: bool = True) -> torch.Tensor:
    """Class weights from pixel statistics: "enet" (1/ln(a + f)), "median" (median frequency)
    or "none" (all ones). `include_void` puts void pixels in the frequency denominators."""
    if method == "enet":
        return enet_weights(class_frequencies(stats, include_void), a)
    if method == "median":
        return median_frequency_weights(stats, include_void)
    if method == "none":
        return torch.ones(len(stats["counts"]))
    raise ValueError(f"unknown class-weight method {method!r}; choose one of {list(METHODS)}")


def dataset_class_stats(dataset: Iterable[Any], num_classes: int, ignore_index: int,
                        cache: str | Path | None = None, cache_key: dict[str, Any] | None = None,
                        progress: bool = True) -> dict[str, Any]:
    """Pixel statistics of a dataset (see `count_class_pixels`), cached in a small JSON file.

    The cache is reused only if the key it records equals `cache_key` (e.g. dataset name, root,
    split, size) plus num_classes and ignore_index; otherwise the counts are recomputed and the
    file is rewritten atomically."""
    key = json.loads(json.dumps({**(cache_key or {}), "num_classes": int(num_classes),
                                 "ignore_index": int(ignore_index)}, sort_keys=True, default=str))
    path = Path(cache) if cache is not None else None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("version") == CACHE_VERSION and data.get("key") == key:
                return data["stats"]
        except (OSError, ValueError, AttributeError) as e:
            warnings.warn(f"class-statistics cache {path} is unreadable ({e}); recomputing", stacklevel=2)
    stats = count_class_pixels(dataset, num_classes, ignore_index, progress=progress)
    if path is not None:
        from iaseg.io import write_json

        write_json(path, {"version": CACHE_VERSION, "key": key, "stats": stats}, indent=1)
    return stats
