"""The calibration cache: the logits and labels of the labelled pixels, computed once, and the
fast re-scoring of offsets on it (one confusion matrix, or one per candidate offset in a pass)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from iaseg.engine.evaluator import iter_logits
from iaseg.io import atomic_write

from .rule import DecisionRuleError

CACHE_FORMAT = "iaseg-calibration-cache"
CACHE_VERSION = 2  # 2: the image of every pixel (`images`) and the image names (info["names"])
_READABLE_VERSIONS = (1, 2)
DEFAULT_MAX_PIXELS = 20_000_000  # > CamVid val (101 x 360 x 480 = 17.5 M): exact there


@dataclass
class CalibrationData:
    """Logits (N x C, float16) and labels (N, class ids) of the labelled calibration pixels, and
    the image each pixel comes from (`images`, N int32 indexes into info["names"]; None in caches
    of version 1), which per-image statistics (promises, risk control) need.

    Memory: N x C x 2 bytes + N bytes, e.g. CamVid val at 360x480, 11 classes: ~17 M pixels,
    ~0.4 GB (twice that while it is being assembled). The search works on chunks of
    CHUNK_ELEMENTS logits at a time, so it adds only ~0.5 GB of temporaries on top."""
    logits: torch.Tensor
    labels: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    images: torch.Tensor | None = None

    CHUNK_ELEMENTS = 1 << 24

    def __post_init__(self) -> None:
        if self.logits.ndim != 2 or self.labels.shape != self.logits.shape[:1]:
            raise ValueError(f"calibration data: logits {tuple(self.logits.shape)} and labels "
                             f"{tuple(self.labels.shape)} do not match (want N x C and N)")
        if self.images is not None and self.images.shape != self.labels.shape:
            raise ValueError(f"calibration data: {tuple(self.images.shape)} image indexes for "
                             f"{self.labels.numel()} pixels")

    @property
    def names(self) -> list[str] | None:
        """The image names (CamVid frame names carry their sequence), or None when not recorded."""
        names = self.info.get("names")
        return list(names) if self.images is not None and isinstance(names, list) else None

    @property
    def num_pixels(self) -> int:
        return self.logits.shape[0]

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def chunks(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """(float32 logits n x C, int64 labels n) slices small enough to bound memory."""
        step = max(1, self.CHUNK_ELEMENTS // max(1, self.num_classes))
        for s in range(0, self.num_pixels, step):
            yield self.logits[s:s + step].float(), self.labels[s:s + step].long()

    def to(self, device: torch.device | str) -> "CalibrationData":
        images = None if self.images is None else self.images.to(device)
        return CalibrationData(self.logits.to(device), self.labels.to(device), self.info, images)

    def save(self, path: str | Path) -> Path:
        """torch.save to a temporary file in the same folder, then rename (atomic, no second
        copy of the logits in memory)."""
        path = Path(path)
        state = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "logits": self.logits.cpu(),
                 "labels": self.labels.cpu(), "info": self.info,
                 "images": None if self.images is None else self.images.cpu()}
        atomic_write(path, lambda f: torch.save(state, f))  # streamed: the cache can be large
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CalibrationData":
        path = Path(path)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            raise DecisionRuleError(f"calibration cache {path} cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(d, dict) or d.get("format") != CACHE_FORMAT or d.get("version") not in _READABLE_VERSIONS:
            raise DecisionRuleError(f"{path} is not an iaseg calibration cache (version {CACHE_VERSION})")
        return cls(d["logits"], d["labels"], d.get("info") or {}, d.get("images"))


@torch.no_grad()
def collect_logits(net: nn.Module | Callable[..., torch.Tensor], loader: Any, input_names: Sequence[str],
                   num_classes: int, ignore_index: int, device: torch.device | str, amp: str = "off",
                   input_size: tuple[int, int] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                   seed: int = 0, progress: bool = True) -> CalibrationData:
    """Run the network once over a loader (as `evaluate_loader` does: logits upsampled to the
    label size when they differ; `input_size` resizes the images first) and keep the logits and
    labels of the labelled pixels. When the split has more than `max_pixels` of them, a uniform
    random subset (seeded, so deterministic) is kept: an unbiased sample of the confusion matrix."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    keep_logits: list[torch.Tensor] = []
    keep_labels: list[torch.Tensor] = []
    keep_images: list[torch.Tensor] = []
    names: list[str] = []
    labelled = kept = images = 0
    keep_prob = None
    label_dtype = torch.uint8 if num_classes <= 255 else torch.int16
    for batch, logits, target in iter_logits(net, loader, input_names, device, amp=amp, input_size=input_size,
                                         progress=progress, desc="calibration logits"):
        if logits.shape[1] != num_classes:
            raise ValueError(f"the network gives {logits.shape[1]} classes, the description {num_classes}")
        if keep_prob is None:  # an upper bound of the labelled pixels: every pixel of every image
            total = len(loader.dataset) * target.shape[-2] * target.shape[-1]
            keep_prob = min(1.0, max_pixels / max(total, 1))
        mask = target != ignore_index
        bad = target[mask]
        bad = bad[(bad < 0) | (bad >= num_classes)]
        if bad.numel():
            raise ValueError(f"labels contain class ids {sorted(set(bad.unique().tolist()))} outside "
                             f"0..{num_classes - 1} (ignore index {ignore_index})")
        labelled += int(mask.sum())
        if keep_prob < 1.0:
            mask &= (torch.rand(mask.shape, generator=gen) < keep_prob).to(device)
        keep_logits.append(logits.permute(0, 2, 3, 1)[mask].half().cpu())
        keep_labels.append(target[mask].to(label_dtype).cpu())
        index = torch.arange(images, images + target.shape[0], dtype=torch.int32, device=mask.device)
        keep_images.append(index.view(-1, *([1] * (mask.ndim - 1))).expand_as(mask)[mask].cpu())
        paths = batch.get("path") if isinstance(batch, dict) else None
        names += [Path(str(p)).name for p in paths] if isinstance(paths, (list, tuple)) and len(paths) == \
            target.shape[0] else [f"image_{images + i:06d}" for i in range(target.shape[0])]
        kept += keep_labels[-1].numel()
        images += target.shape[0]
    if kept == 0:
        raise ValueError("the calibration split has no labelled pixels")
    logits_all = torch.cat(keep_logits)
    del keep_logits
    labels_all = torch.cat(keep_labels)
    images_all = torch.cat(keep_images)
    if kept > max_pixels:  # the keep probability used an upper bound; trim to exactly max_pixels
        idx = torch.randperm(kept, generator=gen)[:max_pixels].sort().values
        logits_all, labels_all, images_all = logits_all[idx], labels_all[idx], images_all[idx]
    info = {"images": images, "labelled_pixels": labelled, "pixels": labels_all.numel(),
            "subsampled": labels_all.numel() < labelled, "names": names}
    return CalibrationData(logits_all, labels_all, info, images_all)


def pool(parts: Sequence[CalibrationData], sources: Sequence[str] | None = None) -> CalibrationData:
    """One calibration set from several (cross-fitting: each part scored by a model that never
    saw its images): pixels concatenated, image indexes shifted, names joined (each prefixed
    with `partI/`, so equal names of different parts stay apart; a CamVid frame keeps its
    sequence), the sources recorded in info["parts"]."""
    if not parts:
        raise ValueError("pool: no calibration data")
    if len({p.num_classes for p in parts}) != 1:
        raise ValueError(f"pool: parts have {sorted({p.num_classes for p in parts})} classes")
    if any(p.names is None for p in parts):
        raise ValueError("pool: every part needs its image indexes and names (a version-2 cache)")
    names: list[str] = []
    images = []
    for i, p in enumerate(parts):
        images.append(p.images.to(torch.int32) + len(names))
        names += [f"part{i}/{n}" for n in p.names]  # frame_key reads the last component
    info = {"images": len(names), "pixels": sum(p.num_pixels for p in parts), "names": names,
            "labelled_pixels": sum(int(p.info.get("labelled_pixels") or p.num_pixels) for p in parts),
            "subsampled": any(bool(p.info.get("subsampled")) for p in parts),
            "parts": [{"source": None if sources is None else str(sources[i]), "images": len(p.names),
                       "pixels": p.num_pixels} for i, p in enumerate(parts)]}
    return CalibrationData(torch.cat([p.logits for p in parts]), torch.cat([p.labels for p in parts]), info,
                           torch.cat(images))


def per_image_confusions(data: CalibrationData, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """(images, C, C) int64 confusion matrices of argmax(logits + offsets), one per image of the
    cache (as `confusion_from_cache`, split by `data.images`); their sum is its matrix."""
    if data.images is None or data.names is None:
        raise DecisionRuleError("the calibration cache records no images (made by an older iaseg): recompute it")
    c, n = data.num_classes, len(data.names)
    device = data.logits.device
    cm = torch.zeros(n * c * c, dtype=torch.int64, device=device)
    b = None if offsets is None or not bool(torch.as_tensor(offsets).any()) else \
        torch.as_tensor(offsets, dtype=torch.float32, device=device)
    step = max(1, data.CHUNK_ELEMENTS // max(1, c))
    for s in range(0, data.num_pixels, step):
        z, y = data.logits[s:s + step].float(), data.labels[s:s + step].long()
        pred = z.argmax(1) if b is None else (z + b).argmax(1)
        cell = (data.images[s:s + step].long() * c + y) * c + pred
        cm += torch.bincount(cell, minlength=n * c * c)
    return cm.view(n, c, c).cpu()


def confusion_from_cache(data: CalibrationData, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """C x C int64 confusion matrix (rows = ground truth) of argmax(logits + offsets) over the
    cached pixels, exactly as DecisionRule.decide labels them."""
    c = data.num_classes
    device = data.logits.device
    cm = torch.zeros(c * c, dtype=torch.int64, device=device)
    b = None if offsets is None or not bool(torch.as_tensor(offsets).any()) else \
        torch.as_tensor(offsets, dtype=torch.float32, device=device)
    for z, y in data.chunks():
        pred = z.argmax(1) if b is None else (z + b).argmax(1)
        cm += torch.bincount(y * c + pred, minlength=c * c)
    return cm.view(c, c).cpu()


def sweep_confusions(data: CalibrationData, offsets: torch.Tensor, classes: Sequence[int],
                     values: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """For each class k in `classes`: confusion matrices (G x C x C, int64) of the rule with b_k
    replaced by each of values[k] (G increasing numbers), the other offsets as given, in one pass
    over the cache.

    With the others fixed, pixel i is labelled k iff b_k > t_i = m_i - z_ik, where m_i / a_i are
    the best score / class among the others; otherwise it is labelled a_i. So the confusion at
    candidate v is: all pixels at (y_i, a_i), minus those with t_i < v moved to column k. Exact
    ties (b_k == t_i) may resolve differently from argmax; callers re-check accepted moves with
    `confusion_from_cache`."""
    c = data.num_classes
    device = data.logits.device
    b = torch.as_tensor(offsets, dtype=torch.float32, device=device)
    grids = {k: values[k].to(device=device, dtype=torch.float32) for k in classes}
    counts = {k: torch.zeros((grids[k].numel() + 1) * c * c, dtype=torch.int64, device=device) for k in classes}
    for z, y in data.chunks():
        s = z + b
        i1 = s.argmax(1, keepdim=True)
        v1 = s.gather(1, i1)
        s.scatter_(1, i1, -math.inf)
        i2 = s.argmax(1, keepdim=True)
        v2 = s.gather(1, i2)
        i1, v1, i2, v2 = i1[:, 0], v1[:, 0], i2[:, 0], v2[:, 0]
        ya1, ya2 = y * c + i1, y * c + i2  # (label, best other) cell when k is / is not the top class
        for k in classes:
            top = i1 == k
            t = torch.where(top, v2, v1).sub_(z[:, k])
            bucket = torch.bucketize(t, grids[k], right=True)  # flips to k at grid[g] for g >= bucket
            cell = torch.where(top, ya2, ya1).add_(bucket, alpha=c * c)
            counts[k] += torch.bincount(cell, minlength=counts[k].numel())
    out = {}
    for k in classes:
        g = grids[k].numel()
        h = counts[k].view(g + 1, c, c)
        everyone = h.sum(0)
        flipped = h[:g].cumsum(0)
        cm = everyone.unsqueeze(0) - flipped
        cm[:, :, k] += flipped.sum(-1)
        out[k] = cm.cpu()
    return out


def flip_thresholds(data: CalibrationData, offsets: torch.Tensor, k: int, max_pixels: int = 4_000_000
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """t_i = max_{j != k}(z_ij + b_j) - z_ik (pixel i is labelled k iff b_k > t_i) and the labels,
    for an evenly strided subset of at most `max_pixels` cached pixels (torch.quantile's limit is
    16 M)."""
    stride = max(1, math.ceil(data.num_pixels / max_pixels))
    b = torch.as_tensor(offsets, dtype=torch.float32, device=data.logits.device)
    z = data.logits[::stride].float() + b
    zk = z[:, k] - b[k]
    z[:, k] = -math.inf
    return (z.max(1).values - zk).cpu(), data.labels[::stride].long().cpu()
