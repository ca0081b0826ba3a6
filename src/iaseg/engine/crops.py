"""Fig. 4-style boundary crops of two checkpoints (image, label, A, B) for `iaseg compare
--checkpoints ... --crops N`: where do the predicted edges of thin and important objects fall?

The crops are chosen from the labels alone, never from the predictions, so the figure cannot be
steered towards either model: images spread evenly over the split, and in each the window with
the most ground-truth boundary pixels of the chosen classes (default: the most important group).
Both networks run at their own input sizes, logits upsampled to the labels' native resolution
(as `iaseg evaluate --full-resolution`), so ERF-PSPNet and BiERF-PSPNet are compared at the
same pixels; each crop's caption gives both models' boundary F-score inside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from iaseg.checkpoint import dataset_settings
from iaseg.data.loader import collate
from iaseg.metrics.boundary import BoundaryFScore, boundary_map, boundary_tolerance

from .evaluator import iter_logits
from .overlay import load_pair, pair_datasets, to_uint8


def crop_classes(description: Any, names: Sequence[str] | None) -> list[int]:
    """Class ids of `names` (default: the most important group's classes); ValueError naming an
    unknown class."""
    if not names:
        return [int(i) for i in description.group_indices()[-1]]
    ids = []
    for n in names:
        if n not in description.classes:
            raise ValueError(f"unknown class {n!r} (classes: {', '.join(description.classes)})")
        ids.append(description.classes.index(n))
    return ids


def best_window(label: np.ndarray, class_ids: Sequence[int], size: int, ignore_index: int | None
                ) -> tuple[int, int, int]:
    """(top, left, count): the size x size window (clipped to the image) holding the most
    ground-truth boundary pixels of `class_ids`, on a grid of stride size // 4; ties go to the
    first in row-major order."""
    lab = torch.as_tensor(np.asarray(label, dtype=np.int64))[None]
    valid = lab != ignore_index if ignore_index is not None else None
    edges = boundary_map(lab, valid)[0]
    hits = torch.isin(edges, torch.as_tensor(list(class_ids))).numpy().astype(np.int64)
    h, w = hits.shape
    sh, sw = min(size, h), min(size, w)
    integral = np.pad(hits.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    stride = max(1, size // 4)
    best = (0, 0, -1)
    for top in sorted(set(range(0, h - sh + 1, stride)) | {h - sh}):
        for left in sorted(set(range(0, w - sw + 1, stride)) | {w - sw}):
            n = int(integral[top + sh, left + sw] - integral[top, left + sw] - integral[top + sh, left]
                    + integral[top, left])
            if n > best[2]:
                best = (top, left, n)
    return best


def crop_boundary_f(pred: np.ndarray, gt: np.ndarray, class_ids: Sequence[int], num_classes: int,
                    ignore_index: int | None, tolerance: int) -> float:
    """Mean boundary F over `class_ids` (those defined) of one crop, in %; NaN if none is."""
    bf = BoundaryFScore(num_classes, ignore_index, tolerance=tolerance)
    bf.update(torch.as_tensor(pred, dtype=torch.int64)[None], torch.as_tensor(gt, dtype=torch.int64)[None])
    f = bf.metrics()["f"][list(class_ids)].double()
    f = f[~torch.isnan(f)]
    return float(100 * f.mean()) if len(f) else float("nan")


def boundary_crops(checkpoints: Sequence[str | Path], names: Sequence[str], out_png: str | Path,
                   dataset: str | None = None, root: str | Path | None = None, split: str = "val",
                   crops: int = 6, size: int = 120, classes: Sequence[str] | None = None,
                   device: str = "cpu") -> tuple[Path, list[dict[str, Any]]]:
    """Draw `crops` crops (one per image) into one PNG: image, label, A, B per row. Returns the
    PNG and, per crop, {"image", "window": [top, left, height, width], "boundary_pixels",
    "boundary_f": [A, B]} (F in %, tolerance of the full image as in the reports)."""
    from iaseg.metrics.figures import plot_crops

    if crops < 1 or size < 8:
        raise ValueError(f"crops must be >= 1 and the crop size >= 8 pixels, got {crops} and {size}")
    ckpts, loaded, desc = load_pair(checkpoints, device)
    ids = crop_classes(desc, classes)
    settings = dataset_settings(ckpts[0], dataset, root, fallback=desc.name)
    data = pair_datasets([meta for _, meta in loaded], settings, split)  # labels' native resolution
    n = len(data[0])
    if n == 0:
        raise ValueError(f"dataset {settings['name']!r} split {split!r} at {settings['root']} has no images")
    # labels only: up to 10 evenly spaced candidates per crop, keep those with boundary pixels of the classes
    found = []
    for i in sorted({int(round(v)) for v in np.linspace(0, n - 1, min(n, 10 * crops))}):
        top, left, count = best_window(np.asarray(data[0][i]["label"]), ids, size, desc.ignore_index)
        if count > 0:
            found.append((i, top, left, count))
    if not found:
        raise ValueError(f"no image of {settings['name']} {split} shows a boundary of "
                         f"{', '.join(desc.classes[c] for c in ids)}")
    if len(found) > crops:
        found = [found[int(round(v))] for v in np.linspace(0, len(found) - 1, crops)]
    preds = []
    for (model, meta), ds in zip(loaded, data):
        batches = [collate([ds[i]]) for i, *_ in found]
        preds.append([logits.argmax(1)[0].cpu().numpy() for _, logits, _ in
                      iter_logits(model, batches, meta.input_names, device, input_size=tuple(meta.input_size),
                                  progress=False)])
    rows, info = [], []
    for k, (i, top, left, count) in enumerate(found):
        item = data[0][i]
        gt = np.asarray(item["label"])
        h, w = gt.shape
        tol = boundary_tolerance(h, w)
        win = (slice(top, top + min(size, h)), slice(left, left + min(size, w)))
        fs = [crop_boundary_f(p[k][win], gt[win], ids, desc.num_classes, desc.ignore_index, tol) for p in preds]
        name = Path(str(item.get("path", f"image {i}"))).name
        rows.append((to_uint8(item["image"])[win], gt[win], preds[0][k][win], preds[1][k][win],
                     f"{name} ({top},{left})", f"boundary F {names[0]} {fs[0]:.0f}, {names[1]} {fs[1]:.0f}"))
        info.append({"image": name, "window": [top, left, win[0].stop - top, win[1].stop - left],
                     "boundary_pixels": count, "boundary_f": fs})
    what = ", ".join(desc.classes[c] for c in ids)
    return plot_crops(rows, desc, out_png, names, f"boundary crops ({what}; chosen from the labels only)"), info
