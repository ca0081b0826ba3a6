"""Operating-point frontiers: what logit offsets alone buy on a trained model.

Any segmentation model trades precision for recall of a class set S (e.g. the most important
group) when a number delta is added to the logits of S before the argmax. Sweeping delta traces
the model's frontier: (mean IoU, group recall) and (group precision, group recall) pairs. A loss
helps only if its model lies above the frontier of the weighted-CE model (the evidence protocol).

`OffsetSweep` accumulates, in ONE pass over a split, the confusion matrix of

    argmax_c  z_c + b_c + delta * [c in S]

for every delta of a grid (and several sets S at once): with the other classes fixed, a pixel
goes to its best class in S exactly when delta exceeds t = max_out - max_in, so a histogram of
t split by (label, best class in S, best class outside S) gives every delta's matrix. Flips are
decided with the same float32 additions as `DecisionRule.decide`, ties included (argmax picks
the lower class id), so a grid value reproduces `iaseg evaluate --decision-rule` with that offset
on S. (One caveat for sets of 2+ classes: two logits of S that differ by less than float32's
rounding of `z + delta` can swap which class of S wins; singletons are exact.) The same kernel
scores calibrate's candidate offsets (`sweep_counts`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .confusion import all_reduce_sum_

FORMAT = "iaseg-offset-frontier"
VERSION = 1
CHUNK_PIXELS = 1 << 22
DEFAULT_DELTAS = tuple(round(-1.0 + 0.05 * i, 2) for i in range(101))  # -1.00 .. +4.00


def sweep_counts(scores: torch.Tensor, labels: torch.Tensor, members: torch.Tensor,
                 values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Histograms of one chunk of pixels for an offset `v` added to the classes in `members`.

    scores: n x C float32 (logits plus any fixed offsets); labels: n int64 class ids (no void);
    members: C bool (at least one class in and one out); values: G increasing float32.
    Returns (h_in, h_out), each (G + 1) x C x C int64: h[b, y, a] counts pixels of label y whose
    best class in S (h_in) / outside S (h_out) is a and that flip to S from grid index b on.
    `confusions_from_counts` turns summed histograms into the G confusion matrices.
    """
    c = scores.shape[1]
    g = values.numel()
    neg = torch.tensor(-torch.inf, dtype=scores.dtype, device=scores.device)
    s_in = torch.where(members, scores, neg)
    m_in, a_in = s_in.max(1)
    s_out = torch.where(members, neg, scores)
    m_out, a_out = s_out.max(1)

    def flipped(idx: torch.Tensor) -> torch.Tensor:
        # what argmax does: S wins when its shifted score is larger, or equal with a lower id
        shifted = m_in + values[idx.clamp(0, g - 1)]
        return (shifted > m_out) | ((shifted == m_out) & (a_in < a_out))

    # first grid index that flips: bucketize t, then fix the +-1 that rounding can cause
    b = torch.bucketize(m_out - m_in, values, right=True)
    b = torch.where((b > 0) & flipped(b - 1), b - 1, b)
    b = torch.where((b < g) & ~flipped(b), b + 1, b)
    base = (b * c + labels) * c
    size = (g + 1) * c * c
    h_in = torch.bincount(base + a_in, minlength=size).view(g + 1, c, c)
    h_out = torch.bincount(base + a_out, minlength=size).view(g + 1, c, c)
    return h_in, h_out


def confusions_from_counts(h_in: torch.Tensor, h_out: torch.Tensor) -> torch.Tensor:
    """G x C x C confusion matrices (rows = ground truth) from summed `sweep_counts` histograms:
    at grid index k, pixels with flip index <= k are labelled with their best class in S, the
    others with their best class outside S."""
    into = h_in.cumsum(0)[:-1]
    stay = h_out.sum(0, keepdim=True) - h_out.cumsum(0)[:-1]
    return into + stay


class OffsetSweep:
    """Accumulate offset-sweep confusion matrices over a split, like `ConfusionMatrix`.

    Args:
        num_classes: C.
        ignore_index: ground-truth value left out (void), or None.
        sets: name -> class ids that receive the offset (e.g. {"G3": [3, 5, 8, 10]}).
        deltas: the offsets to score (sorted on construction; repeats refused).
        base_offsets: fixed per-class offsets added first (default none).
    """

    def __init__(self, num_classes: int, ignore_index: int | None, sets: Mapping[str, Sequence[int]],
                 deltas: Sequence[float] = DEFAULT_DELTAS, base_offsets: Sequence[float] | None = None,
                 device: str | torch.device | None = None) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        if not sets:
            raise ValueError("an offset sweep needs at least one class set")
        self.sets: dict[str, tuple[int, ...]] = {}
        for name, ids in sets.items():
            ids = tuple(sorted({int(i) for i in ids}))
            if not ids or ids[0] < 0 or ids[-1] >= self.num_classes:
                raise ValueError(f"offset set {name!r}: class ids {list(ids)} not in 0..{self.num_classes - 1}")
            if len(ids) == self.num_classes:
                raise ValueError(f"offset set {name!r} holds every class: an offset on all classes changes nothing")
            self.sets[str(name)] = ids
        d = sorted(float(v) for v in deltas)
        if not d or len(set(d)) != len(d) or not all(np.isfinite(d)):
            raise ValueError("deltas must be distinct finite numbers")
        self.deltas = torch.tensor(d, dtype=torch.float32)
        self.base = torch.zeros(self.num_classes) if base_offsets is None else \
            torch.as_tensor(base_offsets, dtype=torch.float32).flatten()
        if self.base.numel() != self.num_classes or not torch.isfinite(self.base).all():
            raise ValueError(f"base_offsets must be {self.num_classes} finite numbers")
        self._device = torch.device(device) if device is not None else None
        self._counts: dict[str, list[torch.Tensor]] | None = None

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """logits N x C x H x W (or n x C), target N x H x W (or n) class ids."""
        if logits.dim() == 4 and logits.shape[0] > 1:
            # a few images at a time, at most ~4 M pixels: the float32 copies below stay bounded
            # (evaluate runs the sweep on every batch, at full resolution too); small images
            # still go in one call, which is much faster than one call per image
            step = max(1, CHUNK_PIXELS // (logits.shape[-2] * logits.shape[-1]))
            if step < logits.shape[0]:
                for i in range(0, logits.shape[0], step):
                    self.update(logits[i:i + step], target[i:i + step])
                return
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits have {logits.shape[1]} classes, the sweep {self.num_classes}")
        device = self._device or logits.device
        z = logits.detach().to(device=device, dtype=torch.float32)
        if z.dim() == 4:
            z = z.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
        y = target.detach().to(device).reshape(-1).long()
        if y.numel() != z.shape[0]:
            raise ValueError(f"{z.shape[0]} pixels of logits but {y.numel()} labels")
        keep = y != self.ignore_index if self.ignore_index is not None else torch.ones_like(y, dtype=torch.bool)
        bad = y[keep]
        bad = bad[(bad < 0) | (bad >= self.num_classes)]
        if bad.numel():
            raise ValueError(f"labels contain class ids {sorted(set(bad.unique().tolist()))} outside "
                             f"0..{self.num_classes - 1} (ignore index {self.ignore_index})")
        z, y = z[keep] + self.base.to(device), y[keep]
        values = self.deltas.to(device)
        if self._counts is None:
            self._counts = {}
        for name, ids in self.sets.items():
            members = torch.zeros(self.num_classes, dtype=torch.bool, device=device)
            members[list(ids)] = True
            h_in, h_out = sweep_counts(z, y, members, values)
            if name in self._counts:
                self._counts[name][0] += h_in
                self._counts[name][1] += h_out
            else:
                self._counts[name] = [h_in, h_out]

    def all_reduce(self) -> "OffsetSweep":
        """Sum the histograms of all processes (DDP); a no-op without a process group."""
        for pair in (self._counts or {}).values():
            for t in pair:
                all_reduce_sum_(t)
        return self

    def confusions(self, name: str) -> torch.Tensor:
        """G x C x C int64 (CPU) confusion matrices of set `name`, one per delta."""
        if name not in self.sets:
            raise KeyError(f"no offset set {name!r} (sets: {', '.join(self.sets)})")
        c, g = self.num_classes, self.deltas.numel()
        if self._counts is None:
            return torch.zeros(g, c, c, dtype=torch.int64)
        h_in, h_out = self._counts[name]
        return confusions_from_counts(h_in, h_out).cpu()

    def to_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        """The JSON-able content of frontier.json: sets, deltas and every confusion matrix."""
        return {"format": FORMAT, "version": VERSION, "classes": list(classes),
                "deltas": [float(v) for v in self.deltas.tolist()],
                "base_offsets": [float(v) for v in self.base.tolist()],
                "sets": {name: {"classes": [classes[i] for i in ids],
                                "confusions": self.confusions(name).tolist()}
                         for name, ids in self.sets.items()}}


def save_frontier(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write `OffsetSweep.to_dict(...)` as JSON, atomically."""
    from iaseg.io import write_json

    return write_json(Path(path), data, indent=None, separators=(",", ":"))


def load_frontier(path: str | Path) -> dict[str, Any]:
    """Read frontier.json; confusions come back as int64 arrays (G x C x C)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable frontier file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path}: not an iaseg frontier file (format {FORMAT!r}, version {VERSION})")
    g, c = len(data["deltas"]), len(data["classes"])
    for name, entry in data["sets"].items():
        m = np.asarray(entry["confusions"], dtype=np.int64)
        if m.shape != (g, c, c):
            raise ValueError(f"{path}: set {name!r} holds confusions of shape {m.shape}, expected {(g, c, c)}")
        entry["confusions"] = m
    return data


def frontier_curves(data: Mapping[str, Any], set_name: str, groups: Mapping[str, Sequence[str]],
                    group: str | None = None) -> dict[str, np.ndarray]:
    """Per delta: mean IoU / precision / recall and the group's IoU / precision / recall
    (group default: the set's own name when it is a group, else the last, most important)."""
    from .report import confusion_metrics

    entry = data["sets"][set_name]
    m = confusion_metrics(entry["confusions"], data["classes"], groups)
    group = group or (set_name if set_name in m["groups"] else list(m["groups"])[-1])
    out = {"delta": np.asarray(data["deltas"], dtype=np.float64)}
    for metric in ("iou", "precision", "recall"):
        out[f"mean_{metric}"] = np.asarray(m["mean"][metric], dtype=np.float64)
        out[f"group_{metric}"] = np.asarray(m["groups"][group][metric], dtype=np.float64)
    return out


def recall_at_iou(mean_iou: Sequence[float], recall: Sequence[float], target: float) -> float:
    """The highest recall of a frontier whose mean IoU is at least `target`: over the grid
    points that qualify and the points where a segment between neighbours crosses `target`
    (linear interpolation). NaN when the whole curve stays below `target`."""
    x = np.asarray(mean_iou, dtype=np.float64)
    y = np.asarray(recall, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    best = [float(v) for v in y[ok & (x >= target)]]
    for i in range(len(x) - 1):
        x0, x1, y0, y1 = x[i], x[i + 1], y[i], y[i + 1]
        if not (ok[i] and ok[i + 1]) or x0 == x1:
            continue
        if (x0 - target) * (x1 - target) < 0:
            best.append(float(y0 + (y1 - y0) * (x0 - target) / (x0 - x1)))
    return max(best) if best else float("nan")


def curve_span(mean_iou: Sequence[float]) -> tuple[float, float]:
    """(lowest, highest) finite mean IoU of a frontier: the range of mean IoU its offsets reach
    (NaN, NaN when none is finite)."""
    x = np.asarray(mean_iou, dtype=np.float64)
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if x.size else (math.nan, math.nan)


def recall_envelope(mean_iou: Sequence[float], recall: Sequence[float], targets: Sequence[float]) -> np.ndarray:
    """`recall_at_iou` at many targets at once (the same grid points and segment crossings,
    vectorised): the frontier's upper recall envelope, non-increasing in the target."""
    x = np.asarray(mean_iou, dtype=np.float64)
    y = np.asarray(recall, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)[:, None]
    ok = np.isfinite(x) & np.isfinite(y)
    cand = np.where(ok & (x >= t), y, -np.inf)
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    seg = ok[:-1] & ok[1:] & (x0 != x1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.where(seg & ((x0 - t) * (x1 - t) < 0), y0 + (y1 - y0) * (x0 - t) / (x0 - x1), -np.inf)
    best = np.maximum(cand.max(1, initial=-np.inf), cross.max(1, initial=-np.inf))
    return np.where(np.isneginf(best), np.nan, best)


def band_recall(mean_iou: Sequence[float], recall: Sequence[float], low: float, high: float,
                points: int = 201) -> float:
    """The mean of `recall_at_iou` over mean-IoU targets in [low, high] (trapezoid rule on
    `points` equally spaced targets): the area under the frontier's recall envelope over the
    band divided by its width, so the difference of two runs' values is the area between their
    frontiers per point of mean IoU. NaN when the curve does not reach `high`."""
    if not high > low:
        raise ValueError(f"a mean-IoU band needs high > low, got [{low}, {high}]")
    env = recall_envelope(mean_iou, recall, np.linspace(low, high, int(points)))
    if np.isnan(env).any():
        return math.nan
    return float(np.sum((env[1:] + env[:-1]) / 2.0) / (len(env) - 1))
