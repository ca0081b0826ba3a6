"""Boundary metrics accumulated over a split like the confusion matrix: the boundary F-score
(Csurka et al., BMVC 2013) and the trimap IoU (IoU in a band around the ground-truth boundaries).

    >>> bm = BoundaryMetrics(num_classes=11, ignore_index=11)      # tolerance 0.75 % of the diagonal
    >>> bm.update(logits.argmax(1), labels)                         # per batch, CPU or CUDA
    >>> bm.all_reduce()                                             # DDP: sum over processes
    >>> res = bm.result(classes, groups)   # {"boundary_f": {...}, "trimap_iou": {...}}

Definitions (the tests' numpy reference implements the same ones):

- Valid pixels: those whose ground truth is not `ignore_index`. Void is treated like the outside
  of the image, for the ground truth and the prediction alike: what a void pixel is predicted as
  never matters.
- Boundary pixel of class c in a label map L (ground truth or prediction): a valid pixel p with
  L[p] == c that has a valid 4-neighbour q with L[q] != c. So both sides of an edge between two
  classes are boundary pixels (of their own class); an edge between a class and void, and the
  image border, are not boundaries (where the true edge lies is unknown there).
- Distance: Euclidean between pixel centres; "within t" means dy**2 + dx**2 <= t**2 (a disc).
- Boundary F of class c: P = (predicted boundary pixels of c within `tolerance` of a
  ground-truth boundary pixel of c) / (predicted boundary pixels of c); R = (ground-truth boundary
  pixels of c within `tolerance` of a predicted boundary pixel of c) / (ground-truth boundary
  pixels of c); F = 2PR / (P + R). Matching is within one image. The split value is a ratio of
  sums (the four counts are summed over all images first, as the confusion matrix does), so large
  or boundary-rich images weigh more; Csurka et al. average per-image scores instead, which
  `f_image_mean` reports as well (mean over the images where the class has a boundary in the
  ground truth or the prediction). P or R alone is NaN where its denominator is 0; F is NaN only
  when the class has no boundary pixel in the ground truth nor in the prediction (a class present
  on one side only scores F = 0, never NaN).
- Default tolerance: 0.75 % of the image diagonal, rounded to the nearest whole pixel with halves
  rounded up, at least 1: 360x480 -> 5 px (4.5), 720x960 -> 9, 1024x2048 -> 17. An explicit
  `tolerance` in pixels replaces it.
- Trimap IoU at width d: per-class IoU (`class_metrics` of a confusion matrix) over the valid
  pixels within distance d of a ground-truth boundary pixel of any class.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from .confusion import METRICS, all_reduce_sum_, class_metrics
from .report import summarize

BOUNDARY_METRICS = ("precision", "recall", "f", "f_image_mean")
BOUNDARY_COUNTS = ("pred_matched", "pred", "gt_matched", "gt")
TRIMAP_WIDTHS = (2, 4, 8, 16)
DEFAULT_TOLERANCE_FRACTION = 0.0075

# elements per temporary index tensor: bounds memory at 1024x2048 (about 64 MiB of int64)
_CHUNK = 1 << 23


def boundary_tolerance(height: int, width: int, fraction: float = DEFAULT_TOLERANCE_FRACTION) -> int:
    """`fraction` of the image diagonal in whole pixels (halves rounded up), at least 1."""
    if not fraction > 0:
        raise ValueError(f"the tolerance fraction must be > 0, got {fraction}")
    # the epsilon keeps exact halves (0.0075 * 600 = 4.5) from rounding down through float error
    return max(1, math.floor(fraction * math.hypot(height, width) + 0.5 + 1e-9))


def boundary_map(labels: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The class id at the boundary pixels of an N x H x W label map, -1 elsewhere: a valid pixel
    is a boundary pixel when a valid 4-neighbour has another label (invalid = void, treated like
    the outside of the image). `valid` defaults to all pixels."""
    if labels.dim() != 3:
        raise ValueError(f"labels must be N x H x W, got shape {tuple(labels.shape)}")
    edge = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for dim in (1, 2):
        n = labels.shape[dim]
        a, b = labels.narrow(dim, 0, n - 1), labels.narrow(dim, 1, n - 1)
        differs = a != b
        if valid is not None:
            differs &= valid.narrow(dim, 0, n - 1) & valid.narrow(dim, 1, n - 1)
        edge.narrow(dim, 0, n - 1).logical_or_(differs)
        edge.narrow(dim, 1, n - 1).logical_or_(differs)
    return torch.where(edge, labels, -1)


def _squared_distance(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Squared Euclidean distance from each pixel to the nearest True pixel of its plane (the
    last two dims), exact where it is <= radius**2; larger values only mean "farther".

    Rows first (nearest True to the left and right by cumulative max/min of indices), then
    the columns as min over |dy| <= radius of dy**2 + row distance**2: O(radius) tensor ops."""
    w = mask.shape[-1]
    x = torch.arange(w, device=mask.device, dtype=torch.int32)
    far = 1 << 30
    left = torch.where(mask, x, -far).cummax(-1).values
    right = torch.where(mask, x, far).flip(-1).cummin(-1).values.flip(-1)
    # capping at radius + 1 keeps every capped value above radius**2 and the squares small
    # enough for int16 (half the memory traffic of the column pass) up to radius 126
    dtype = torch.int16 if 2 * (radius + 1) ** 2 < 2 ** 15 else torch.int32
    g = torch.minimum(x - left, right - x).clamp_(max=radius + 1).to(dtype).square_()
    d2 = g.clone()
    for dy in range(1, min(radius, mask.shape[-2] - 1) + 1):
        torch.minimum(d2[..., dy:, :], g[..., :-dy, :] + dy * dy, out=d2[..., dy:, :])
        torch.minimum(d2[..., :-dy, :], g[..., dy:, :] + dy * dy, out=d2[..., :-dy, :])
    return d2


def _disc_offsets(radius: int) -> list[tuple[int, int]]:
    """(dy, dx) with dy**2 + dx**2 <= radius**2, nearest first."""
    r = int(radius)
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r]
    return sorted(offsets, key=lambda o: (o[0] ** 2 + o[1] ** 2, o))


def _matched(points: torch.Tensor, others: torch.Tensor,
             radius: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Whether each boundary pixel of `points` (an N x H x W boundary map) has a pixel of the
    same class in `others` within `radius` in the same image. Returns (image index, class,
    matched) per boundary pixel of `points`. Sparse: only boundary pixels are visited, nearest
    offsets first, and the ones already matched drop out."""
    h, w = points.shape[-2:]
    padded = F.pad(others, (radius, radius, radius, radius), value=-1).reshape(-1)
    hp, wp = h + 2 * radius, w + 2 * radius
    img, y, x = (points >= 0).nonzero(as_tuple=True)
    cls = points[img, y, x]
    base = img * (hp * wp) + (y + radius) * wp + (x + radius)
    offsets = torch.tensor([dy * wp + dx for dy, dx in _disc_offsets(radius)], device=points.device)
    matched = torch.zeros(cls.shape, dtype=torch.bool, device=points.device)
    todo = torch.arange(cls.numel(), device=points.device)
    start, step = 0, 1
    while todo.numel() and start < offsets.numel():
        step = max(1, min(step, _CHUNK // todo.numel()))
        chunk = offsets[start:start + step]
        hit = (padded[base[todo, None] + chunk] == cls[todo, None]).any(1)
        matched[todo[hit]] = True
        todo = todo[~hit]
        start, step = start + step, 2 * step
    return img, cls, matched


def _fscore(pred_matched: torch.Tensor, pred: torch.Tensor, gt_matched: torch.Tensor,
            gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Precision, recall and F (float64) from counts; F is NaN only where pred == gt == 0."""
    pm, p, gm, g = (t.to(torch.float64) for t in (pred_matched, pred, gt_matched, gt))
    precision, recall = pm / p, gm / g
    p0, r0 = precision.nan_to_num(0.0), recall.nan_to_num(0.0)
    f = torch.where(p0 + r0 > 0, 2 * p0 * r0 / (p0 + r0), torch.zeros_like(p0))
    return {"precision": precision, "recall": recall, "f": f.masked_fill(p + g == 0, math.nan)}


def _prepare(pred: Any, target: Any, num_classes: int, ignore_index: int | None,
             device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked N x H x W pred and target class ids on `device` (default pred's; void target
    pixels set to 0), and the valid mask."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if pred.dim() not in (2, 3):
        raise ValueError(f"boundary metrics need H x W or N x H x W label maps, got shape {tuple(pred.shape)}")
    for name, t in (("pred", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name} must hold integer class ids (e.g. logits.argmax(1)), got {t.dtype}")
    device = device or pred.device
    pred = pred.to(device, torch.int64).reshape(-1, *pred.shape[-2:])
    target = target.to(device, torch.int64).reshape(-1, *target.shape[-2:])
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    bad_pred = (pred < 0) | (pred >= num_classes)
    bad_target = valid & ((target < 0) | (target >= num_classes))
    if bool((bad_pred.any() | bad_target.any()).item()):
        if bad_pred.any():
            raise ValueError(f"prediction value {pred[bad_pred][0].item()} is outside the class ids "
                             f"0..{num_classes - 1}")
        raise ValueError(f"target value {target[bad_target][0].item()} is neither a class id 0..{num_classes - 1} "
                         f"nor ignore_index {ignore_index}")
    # class ids fit int16 (checked above): a quarter of the memory of int64 for the boundary maps
    small = torch.int16 if num_classes < 2 ** 15 else torch.int64
    return pred.to(small), target.masked_fill(~valid, 0).to(small), valid


def _check_classes(num_classes: int, ignore_index: int | None) -> tuple[int, int | None]:
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if ignore_index is not None and 0 <= int(ignore_index) < int(num_classes):
        raise ValueError(f"ignore_index {ignore_index} is a class id (0..{int(num_classes) - 1})")
    return int(num_classes), None if ignore_index is None else int(ignore_index)


def _means(per_class: Mapping[str, Mapping[str, float]],
           groups: Mapping[str, Sequence[str]]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Group means and the mean over classes of any per-class values, by `report.summarize`
    (the report's own rule: NaN left out, mean over classes, not of the groups). summarize
    averages the keys of METRICS, so ours are mapped onto them, len(METRICS) at a time."""
    keys = list(next(iter(per_class.values()), {}))
    group_means: dict[str, dict[str, float]] = {str(g): {} for g in groups}
    mean: dict[str, float] = {}
    for i in range(0, len(keys), len(METRICS)):
        slots = dict(zip(METRICS, keys[i:i + len(METRICS)]))
        s = summarize({c: {m: v[k] for m, k in slots.items()} for c, v in per_class.items()}, groups, warn=False)
        for g, v in s["groups"].items():
            group_means[str(g)].update({k: v[m] for m, k in slots.items()})
        mean.update({k: s["mean"][m] for m, k in slots.items()})
    return group_means, mean


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    return names


class BoundaryFScore:
    """Boundary precision / recall / F per class (definitions in the module docstring), from
    four int64 counts per class accumulated on the inputs' device.

    Args:
        num_classes: C.
        ignore_index: ground-truth value of void pixels, or None.
        tolerance: matching distance in pixels (0 = same pixel); None = `tolerance_fraction`
            of each batch's image diagonal (see `boundary_tolerance`).
        tolerance_fraction: the default's fraction of the diagonal (0.75 %).
        device: where the counts live; by default the device of the first `update`.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, tolerance: int | None = None,
                 tolerance_fraction: float = DEFAULT_TOLERANCE_FRACTION,
                 device: str | torch.device | None = None) -> None:
        self.num_classes, self.ignore_index = _check_classes(num_classes, ignore_index)
        if tolerance is not None and (int(tolerance) != tolerance or tolerance < 0):
            raise ValueError(f"tolerance must be a whole number of pixels >= 0, got {tolerance}")
        if not tolerance_fraction > 0:
            raise ValueError(f"tolerance_fraction must be > 0, got {tolerance_fraction}")
        self.tolerance = None if tolerance is None else int(tolerance)
        self.tolerance_fraction = float(tolerance_fraction)
        self.tolerances_used: set[int] = set()  # pixel tolerances of this process's batches
        self._device = torch.device(device) if device is not None else None
        self._counts: torch.Tensor | None = None  # 4 x C, rows BOUNDARY_COUNTS
        self._image_f: torch.Tensor | None = None  # 2 x C float64: sum of per-image F, images

    def __repr__(self) -> str:
        tol = f"{self.tolerance} px" if self.tolerance is not None else f"{100 * self.tolerance_fraction:g}% diagonal"
        return f"BoundaryFScore(num_classes={self.num_classes}, ignore_index={self.ignore_index}, tolerance={tol})"

    def _state(self, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self._counts is None:
            self._device = self._device or device or torch.device("cpu")
            self._counts = torch.zeros(4, self.num_classes, dtype=torch.int64, device=self._device)
            self._image_f = torch.zeros(2, self.num_classes, dtype=torch.float64, device=self._device)
        return self._counts, self._image_f

    @property
    def counts(self) -> torch.Tensor:
        """4 x C int64: predicted boundary pixels matched, predicted, ground-truth matched,
        ground-truth (rows in BOUNDARY_COUNTS order), on the accumulator's device."""
        return self._state()[0]

    def tolerance_for(self, height: int, width: int) -> int:
        """The matching distance in pixels used for images of this size."""
        if self.tolerance is not None:
            return self.tolerance
        return boundary_tolerance(height, width, self.tolerance_fraction)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of N x H x W (or H x W) integer class ids; void target pixels are skipped."""
        pred, target, valid = _prepare(pred, target, self.num_classes, self.ignore_index, self._device)
        self._add(pred, valid, boundary_map(target, valid))

    def _add(self, pred: torch.Tensor, valid: torch.Tensor, gt_boundary: torch.Tensor) -> None:
        counts, image_f = self._state(pred.device)
        pred_boundary = boundary_map(pred, valid)
        radius = self.tolerance_for(*pred.shape[-2:])
        self.tolerances_used.add(radius)
        n, c = pred.shape[0], self.num_classes
        per_image = []  # N x C counts, in BOUNDARY_COUNTS order
        for points, others in ((pred_boundary, gt_boundary), (gt_boundary, pred_boundary)):
            img, cls, matched = _matched(points, others, radius)
            key = img * c + cls
            per_image += [torch.bincount(key[matched], minlength=n * c).view(n, c),
                          torch.bincount(key, minlength=n * c).view(n, c)]
        stacked = torch.stack(per_image).to(counts.device)
        counts += stacked.sum(1)
        f = _fscore(*stacked)["f"]
        defined = ~f.isnan()
        image_f[0] += f.nan_to_num(0.0).sum(0)
        image_f[1] += defined.sum(0)

    def reset(self) -> None:
        if self._counts is not None:
            self._counts.zero_()
            self._image_f.zero_()
        self.tolerances_used.clear()

    def metrics(self) -> dict[str, torch.Tensor]:
        """Per class precision, recall, f (ratios of summed counts) and f_image_mean (mean of
        per-image F): float64 CPU tensors, NaN where undefined."""
        counts, image_f = (t.detach().cpu() for t in self._state())
        out = _fscore(*counts)
        out["f_image_mean"] = image_f[0] / image_f[1]
        return out

    def result(self, class_names: Sequence[str] | None = None,
               groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """{"per_class": {class: {precision, recall, f, f_image_mean}}, "groups": {group: ...},
        "mean": {...}, "counts": {class: {pred_matched, pred, gt_matched, gt}}, "meta": {...}}:
        fractions, NaN where undefined; group means and mean as the report computes them."""
        names = _names(class_names, self.num_classes)
        values = {k: v.tolist() for k, v in self.metrics().items()}
        per_class = {c: {k: values[k][i] for k in BOUNDARY_METRICS} for i, c in enumerate(names)}
        group_means, mean = _means(per_class, groups or {})
        counts = self.counts.cpu().tolist()
        return {
            "per_class": per_class, "groups": group_means, "mean": mean,
            "counts": {c: {k: counts[j][i] for j, k in enumerate(BOUNDARY_COUNTS)} for i, c in enumerate(names)},
            "meta": {"tolerance_px": sorted(self.tolerances_used),
                     "tolerance": (f"{self.tolerance} px" if self.tolerance is not None else
                                   f"{100 * self.tolerance_fraction:g}% of the image diagonal"),
                     "distance": "euclidean", "aggregation": "ratio of counts summed over the split"},
        }

    @torch.no_grad()
    def all_reduce(self) -> "BoundaryFScore":
        """Sum the counts of all processes in place (no-op without torch.distributed); call once,
        after the last update."""
        for t in self._state():
            all_reduce_sum_(t)
        return self

    def merge(self, other: "BoundaryFScore") -> "BoundaryFScore":
        """Add the counts of another accumulator of the same classes (in place)."""
        if not isinstance(other, BoundaryFScore) or other.num_classes != self.num_classes:
            raise ValueError("can only merge a BoundaryFScore with the same number of classes")
        if other._counts is not None:
            counts, image_f = self._state(other._counts.device)
            counts += other._counts.to(counts.device)
            image_f += other._image_f.to(image_f.device)
            self.tolerances_used |= other.tolerances_used
        return self


class TrimapIoU:
    """Per-class IoU restricted to a band around the ground-truth boundaries (any class, void
    excluded), for several band widths: one C x C confusion matrix per width (rows = ground
    truth, columns = prediction, like `ConfusionMatrix`) over the band's pixels, turned into
    metrics by `class_metrics`.

    Args:
        num_classes, ignore_index, device: as for `ConfusionMatrix`.
        widths: band half-widths d in pixels (Euclidean distance to the nearest ground-truth
            boundary pixel <= d), kept in increasing order.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, widths: Sequence[int] = TRIMAP_WIDTHS,
                 device: str | torch.device | None = None) -> None:
        self.num_classes, self.ignore_index = _check_classes(num_classes, ignore_index)
        if not widths or any(int(d) != d or d < 0 for d in widths) or len(set(widths)) != len(widths):
            raise ValueError(f"trimap widths must be distinct whole pixels >= 0, got {tuple(widths)}")
        self.widths = tuple(sorted(int(d) for d in widths))
        self._device = torch.device(device) if device is not None else None
        self._matrices: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"TrimapIoU(num_classes={self.num_classes}, ignore_index={self.ignore_index}, widths={self.widths})"

    def _state(self, device: torch.device | None = None) -> torch.Tensor:
        if self._matrices is None:
            self._device = self._device or device or torch.device("cpu")
            c = self.num_classes
            self._matrices = torch.zeros(len(self.widths), c, c, dtype=torch.int64, device=self._device)
        return self._matrices

    @property
    def matrices(self) -> torch.Tensor:
        """len(widths) x C x C int64 band confusion matrices, on the accumulator's device."""
        return self._state()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of N x H x W (or H x W) integer class ids; void target pixels are skipped."""
        pred, target, valid = _prepare(pred, target, self.num_classes, self.ignore_index, self._device)
        self._add(pred, target, valid, boundary_map(target, valid))

    def _add(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, gt_boundary: torch.Tensor) -> None:
        matrices = self._state(pred.device)
        k, c = len(self.widths), self.num_classes
        h, w = target.shape[-2:]
        step = max(1, _CHUNK // (h * w))  # images at a time: bounds the distance temporaries
        for i in range(0, target.shape[0], step):
            d2 = _squared_distance(gt_boundary[i:i + step] >= 0, self.widths[-1])
            # the bands are nested: count each pixel once under the narrowest band holding it
            # (k = none), then a cumulative sum over the widths gives every band's matrix
            level = torch.zeros(d2.shape, dtype=torch.int64, device=d2.device)
            for d in self.widths:
                level += d2 > d * d
            inside = valid[i:i + step] & (level < k)
            index = (level * c + target[i:i + step]) * c + pred[i:i + step]  # int64, as level
            index = torch.where(inside, index, k * c * c)
            counts = torch.bincount(index.reshape(-1), minlength=k * c * c + 1)[: k * c * c]
            matrices += counts.view(k, c, c).cumsum(0).to(matrices.device)

    def reset(self) -> None:
        if self._matrices is not None:
            self._matrices.zero_()

    def iou(self) -> torch.Tensor:
        """len(widths) x C float64 CPU IoU, NaN where a class is absent from a band."""
        return torch.stack([class_metrics(m)["iou"] for m in self.matrices])

    def result(self, class_names: Sequence[str] | None = None,
               groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """{"widths": [d, ...], "per_class": {class: [IoU per width]}, "groups": {group: [...]},
        "mean": [...], "pixels": [band pixels per width]}: the IoU-vs-d curves, fractions, NaN
        where undefined; group means and mean as the report computes them."""
        names = _names(class_names, self.num_classes)
        iou = self.iou().T.tolist()  # C x widths
        per_width = {c: {d: iou[i][j] for j, d in enumerate(self.widths)} for i, c in enumerate(names)}
        group_means, mean = _means(per_width, groups or {})
        return {
            "widths": list(self.widths),
            "per_class": {c: list(v.values()) for c, v in per_width.items()},
            "groups": {g: [v[d] for d in self.widths] for g, v in group_means.items()},
            "mean": [mean[d] for d in self.widths],
            "pixels": self.matrices.sum((1, 2)).tolist(),
        }

    @torch.no_grad()
    def all_reduce(self) -> "TrimapIoU":
        """Sum the band matrices of all processes in place (no-op without torch.distributed);
        call once, after the last update."""
        all_reduce_sum_(self._state())
        return self

    def merge(self, other: "TrimapIoU") -> "TrimapIoU":
        """Add the matrices of another accumulator with the same classes and widths (in place)."""
        if not isinstance(other, TrimapIoU) or (other.num_classes, other.widths) != (self.num_classes, self.widths):
            raise ValueError("can only merge a TrimapIoU with the same number of classes and widths")
        if other._matrices is not None:
            m = self._state(other._matrices.device)
            m += other._matrices.to(m.device)
        return self


class BoundaryMetrics:
    """Boundary F-score and trimap IoU together, used like `ConfusionMatrix`: `update` per batch,
    `all_reduce` once under DDP, then `result(class_names, groups)`. The ground-truth
    boundaries are found once per batch for both."""

    def __init__(self, num_classes: int, ignore_index: int | None = None, tolerance: int | None = None,
                 tolerance_fraction: float = DEFAULT_TOLERANCE_FRACTION, widths: Sequence[int] = TRIMAP_WIDTHS,
                 device: str | torch.device | None = None) -> None:
        self.fscore = BoundaryFScore(num_classes, ignore_index, tolerance, tolerance_fraction, device)
        self.trimap = TrimapIoU(num_classes, ignore_index, widths, device)

    def __repr__(self) -> str:
        return f"BoundaryMetrics({self.fscore!r}, {self.trimap!r})"

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of N x H x W (or H x W) integer class ids; void target pixels are skipped."""
        f = self.fscore
        pred, target, valid = _prepare(pred, target, f.num_classes, f.ignore_index, f._device)
        gt_boundary = boundary_map(target, valid)
        f._add(pred, valid, gt_boundary)
        self.trimap._add(pred, target, valid, gt_boundary)

    def reset(self) -> None:
        self.fscore.reset()
        self.trimap.reset()

    @torch.no_grad()
    def all_reduce(self) -> "BoundaryMetrics":
        self.fscore.all_reduce()
        self.trimap.all_reduce()
        return self

    def merge(self, other: "BoundaryMetrics") -> "BoundaryMetrics":
        self.fscore.merge(other.fscore)
        self.trimap.merge(other.trimap)
        return self

    def result(self, class_names: Sequence[str] | None = None,
               groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """{"boundary_f": BoundaryFScore.result(...), "trimap_iou": TrimapIoU.result(...)}."""
        return {"boundary_f": self.fscore.result(class_names, groups),
                "trimap_iou": self.trimap.result(class_names, groups)}
