"""Per-image confusion counts: what the hierarchical bootstrap resamples.

An evaluation saves, beside report.json, one C x C confusion matrix per image (rows = ground
truth, columns = prediction, ignore index excluded) with the image names; their sum is the
report's matrix. Images of video datasets are ordered frames of sequences, so
`sequence_blocks` cuts them into blocks of consecutive frames that never cross a sequence.

    >>> acc = PerImageConfusion(num_classes=11, ignore_index=11)
    >>> acc.update(logits.argmax(1), labels, names)          # per batch
    >>> save_per_image("eval/per_image.npz", acc.names, acc.counts, classes, 11)
    >>> data = load_per_image("eval/per_image.npz")           # PerImageCounts
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from iaseg.data.sequences import frame_key

from .confusion import ConfusionMatrix

FORMAT = "iaseg-per-image-confusion"
VERSION = 1



@dataclass(frozen=True)
class PerImageCounts:
    """Per-image confusion counts of one evaluation: counts[i] belongs to names[i]."""
    names: tuple[str, ...]
    counts: np.ndarray            # (N, C, C) int64, rows = ground truth, columns = prediction
    classes: tuple[str, ...]
    ignore_index: int | None

    @property
    def total(self) -> np.ndarray:
        """The split's C x C matrix (the report's confusion matrix)."""
        return self.counts.sum(0)


class PerImageConfusion:
    """Accumulate one C x C int64 confusion matrix per image, each counted by `ConfusionMatrix`
    (same validation, same ignore handling), so their sum equals the split's matrix."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        ConfusionMatrix(num_classes, ignore_index)  # validates the arguments once
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.names: list[str] = []
        self._counts: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.names)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, names: Sequence[str]) -> None:
        """Add a batch: `pred` and `target` are N x H x W integer class ids, `names` the N image
        names (paths are reduced to their file names)."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)
        names = [Path(str(n)).name for n in names]
        if pred.dim() < 1 or len(names) != pred.shape[0]:
            raise ValueError(f"{len(names)} image names for a batch of shape {tuple(pred.shape)}")
        for i, name in enumerate(names):
            cm = ConfusionMatrix(self.num_classes, self.ignore_index)
            cm.update(pred[i], target[i])
            self._counts.append(cm.matrix.cpu().numpy())
            self.names.append(name)

    @property
    def counts(self) -> np.ndarray:
        """(N, C, C) int64 counts in update order."""
        if not self._counts:
            return np.zeros((0, self.num_classes, self.num_classes), np.int64)
        return np.stack(self._counts)


def _validate(names: Sequence[str], counts: Any, classes: Sequence[str]) -> np.ndarray:
    counts = np.asarray(counts)
    c = len(classes)
    if counts.ndim != 3 or counts.shape[1:] != (c, c):
        raise ValueError(f"per-image counts must have shape (N, {c}, {c}) for {c} classes, got {counts.shape}")
    if len(names) != counts.shape[0]:
        raise ValueError(f"{len(names)} image names for {counts.shape[0]} per-image matrices")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if list(names).count(n) > 1})
        raise ValueError(f"image names are not unique: {dup[:5]}")
    if not np.issubdtype(counts.dtype, np.integer) and not np.array_equal(counts, np.round(counts)):
        raise ValueError("per-image counts must be integers")
    if counts.size and counts.min() < 0:
        raise ValueError("per-image counts must be non-negative")
    return counts.astype(np.int64)


def save_per_image(path: str | Path, names: Sequence[str], counts: Any, classes: Sequence[str],
                   ignore_index: int | None) -> Path:
    """Write per-image counts as a compressed NPZ (uint32 counts, uint64 if a count needs it),
    atomically. Holds format/version, class names, image names and the ignore index; no
    pickles. Returns the path."""
    names = [str(n) for n in names]
    classes = [str(c) for c in classes]
    counts = _validate(names, counts, classes)
    dtype = np.uint32 if counts.size == 0 or counts.max() < 2 ** 32 else np.uint64
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array(FORMAT), version=np.array(VERSION, np.int64),
                        classes=np.array(classes, dtype=np.str_), names=np.array(names, dtype=np.str_),
                        ignore_index=np.array([] if ignore_index is None else [int(ignore_index)], np.int64),
                        counts=counts.astype(dtype))
    from iaseg.io import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_per_image(path: str | Path) -> PerImageCounts:
    """Read a file written by `save_per_image`; ValueError naming the file if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable per-image counts file ({e})") from None
    if str(fields.get("format", "")) != FORMAT:
        raise ValueError(f"{path}: not an iaseg per-image counts file")
    version = int(fields["version"])
    if version != VERSION:
        raise ValueError(f"{path}: per-image counts format version {version}; this iaseg reads {VERSION}")
    try:
        names = tuple(str(n) for n in fields["names"])
        classes = tuple(str(c) for c in fields["classes"])
        ignore = fields["ignore_index"]
        counts = _validate(names, fields["counts"], classes)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: malformed per-image counts ({e})") from None
    return PerImageCounts(names, counts, classes, int(ignore[0]) if ignore.size else None)


def sequence_blocks(names: Sequence[str], block_len: int = 10) -> list[np.ndarray]:
    """Cut images into blocks of at most `block_len` consecutive frames, never across a sequence.

    Returns index arrays into `names`. Names with the CamVid pattern (`frame_key`) are ordered
    by (sequence, frame) and grouped by sequence; names without it form one more sequence, in
    the given order. A sequence's last block may be shorter."""
    if int(block_len) < 1:
        raise ValueError(f"block_len must be >= 1, got {block_len}")
    block_len = int(block_len)
    keys = [frame_key(n) for n in names]
    sequences: dict[str | None, list[tuple[int, int]]] = {}
    for i, key in enumerate(keys):
        seq, frame = key if key is not None else (None, i)
        sequences.setdefault(seq, []).append((frame, i))
    blocks = []
    for seq in sorted(sequences, key=lambda s: (s is None, s or "")):
        order = [i for _, i in sorted(sequences[seq])]
        blocks += [np.array(order[j:j + block_len], dtype=np.int64) for j in range(0, len(order), block_len)]
    return blocks
