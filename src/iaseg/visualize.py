"""Colour masks and overlays from label maps (dataset palettes), and PNG files of them."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from iaseg.data.description import DatasetDescription
from iaseg.io import atomic_write_bytes


def palette_lut(description: DatasetDescription) -> np.ndarray:
    """256 x 3 uint8 lookup table: class id -> colour, everything else -> the ignore colour."""
    lut = np.tile(np.array(description.ignore_color, dtype=np.uint8), (256, 1))
    lut[: description.num_classes] = np.array(description.palette, dtype=np.uint8)
    return lut


def colorize(label: np.ndarray, description: DatasetDescription) -> np.ndarray:
    """H x W integer label map -> H x W x 3 uint8 colour mask."""
    label = np.asarray(label)
    idx = np.where((label >= 0) & (label < 256), label, 255).astype(np.uint8)
    return palette_lut(description)[idx]


def overlay(image: np.ndarray, label: np.ndarray, description: DatasetDescription,
            alpha: float = 0.5) -> np.ndarray:
    """Blend the colour mask over an H x W x 3 uint8 image; ignored pixels keep the image."""
    color = colorize(label, description).astype(np.float32)
    img = np.asarray(image).astype(np.float32)
    valid = ((label >= 0) & (label < description.num_classes))[..., None]
    out = np.where(valid, (1 - alpha) * img + alpha * color, img)
    return out.round().clip(0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Encode an H x W (x 3) uint8 array as PNG in memory, then write it atomically: a crash
    never leaves half a PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
