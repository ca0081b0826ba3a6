"""Colour masks and overlays from label maps (dataset palettes), legends, and PNG files of them."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

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


def blend_table(description: DatasetDescription, alpha: float = 0.5, only: Iterable[int] | None = None
                ) -> np.ndarray:
    """256 x 3 x 256 uint8 table: [label, channel, image value] -> overlay value. Blending is
    then one lookup per pixel and channel instead of float arithmetic over the whole frame; the
    entries are computed with the float32 formula `overlay` is defined by, so results are equal.
    Labels outside the classes (and outside `only`) map a value to itself: the image shows."""
    values = np.arange(256, dtype=np.float32)[None, None, :]
    color = palette_lut(description).astype(np.float32)[:, :, None]
    table = ((1 - alpha) * values + alpha * color).round().clip(0, 255).astype(np.uint8)
    keep = np.ones(256, dtype=bool)
    keep[: description.num_classes] = False
    if only is not None:
        keep[: description.num_classes] = True
        keep[[k for k in only if 0 <= k < description.num_classes]] = False
    table[keep] = np.arange(256, dtype=np.uint8)
    return table


def blend(image: np.ndarray, label: np.ndarray, table: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 image and H x W label map (ids outside 0..255 show the image) through
    a `blend_table` -> H x W x 3 uint8 overlay."""
    label = np.asarray(label)
    if label.dtype != np.uint8:
        label = np.where((label >= 0) & (label < 256), label, 255).astype(np.uint8)
    index = label.astype(np.int32)[..., None] * 768 + np.array([0, 256, 512], dtype=np.int32)
    index += np.asarray(image, dtype=np.uint8)
    return table.reshape(-1).take(index)


def overlay(image: np.ndarray, label: np.ndarray, description: DatasetDescription,
            alpha: float = 0.5, only: Iterable[int] | None = None) -> np.ndarray:
    """Blend the colour mask over an H x W x 3 uint8 image: round((1 - alpha) * image + alpha *
    colour) in float32; ignored pixels keep the image. `only`: class ids to colour (e.g. the most
    important group); other pixels keep the image. (A lookup table: `blend_table`, `blend`.)"""
    return blend(image, label, blend_table(description, alpha, only))


def highlight_classes(description: DatasetDescription, group: str | None = None) -> tuple[int, ...]:
    """Class ids of `group` (default: the most important, i.e. the last group)."""
    group = group or description.group_names[-1]
    if group not in description.groups:
        raise ValueError(f"no group {group!r} in {description.name} (groups: {', '.join(description.groups)})")
    return tuple(description.group_indices()[description.group_names.index(group)])


def draw_legend(image: np.ndarray, description: DatasetDescription, classes: Iterable[int] | None = None
                ) -> np.ndarray:
    """A copy of the H x W x 3 uint8 image with a legend (colour swatch and class name per
    class, default all) in its top-left corner, on a dark translucent box; the size is kept,
    so a legend never changes what the mask's pixels mean. Text scales with the image height."""
    from PIL import Image, ImageDraw, ImageFont

    ids = list(range(description.num_classes)) if classes is None else list(classes)
    base = Image.fromarray(np.ascontiguousarray(image)).convert("RGBA")
    line = max(8, base.height // 28)  # ~28 lines fit the height
    try:
        font = ImageFont.load_default(size=line - 2)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    names = [str(description.classes[k]) for k in ids]
    width = line + 4 + max((draw.textlength(n, font=font) for n in names), default=0) + 4
    pad = max(2, line // 4)
    draw.rectangle([0, 0, int(width) + 2 * pad, len(ids) * line + 2 * pad], fill=(0, 0, 0, 150))
    for row, (k, name) in enumerate(zip(ids, names)):
        y = pad + row * line
        draw.rectangle([pad, y + 1, pad + line - 3, y + line - 2], fill=tuple(description.palette[k]) + (255,),
                       outline=(255, 255, 255, 255))
        draw.text((pad + line + 2, y), name, fill=(255, 255, 255, 255), font=font)
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"))


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Encode an H x W (x 3) uint8 array as PNG in memory, then write it atomically: a crash
    never leaves half a PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
