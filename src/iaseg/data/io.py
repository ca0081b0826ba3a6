"""Reading image and label files strictly: every failure becomes a `DatasetError` naming the file.

Images come back as uint8 H x W x 3 RGB arrays, labels as int32 H x W class ids (raw values
mapped through a lookup table built from the dataset description, or, for colour-coded labels,
colours mapped through the description's palette and void colour).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from iaseg.io import atomic_write_bytes

from .errors import DatasetError
from .description import DatasetDescription

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")

# Modes PIL converts to RGB without losing meaning; 16-bit/float modes would be clipped, so
# they are refused instead of silently turned into garbage.
CONVERTIBLE_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "L", "LA", "La", "P", "PA", "1",
                               "CMYK", "YCbCr", "LAB", "HSV"})
LABEL_MODES = frozenset({"L", "P", "I", "I;16", "I;16L", "I;16B", "1"})
# Colour-coded labels: 8-bit colour (or palette) images; alpha is dropped.
RGB_LABEL_MODES = frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "L"})
LABEL_FORMATS = ("ids", "rgb")

INVALID = np.iinfo(np.int32).min  # lookup-table entry for raw values that are not allowed
_LUT_SIZE = 1 << 16


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise DatasetError(f"{path}: {what} file not found")
    try:
        img = Image.open(path)
        img.load()  # decode now: truncated files fail here, not later in a worker
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: unreadable or truncated {what} ({e})") from None
    return img


def _check_image_mode(img: Image.Image, path: Path) -> None:
    if img.mode not in CONVERTIBLE_MODES:
        raise DatasetError(f"{path}: image mode {img.mode!r} is not RGB and cannot be converted "
                           f"safely (16-bit/float?); save it as 8-bit RGB")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 H x W x 3 RGB. Grayscale, palette, RGBA (alpha dropped) and
    CMYK images are converted; 16-bit or float images raise DatasetError."""
    path = Path(path)
    img = _open(path, "image")
    _check_image_mode(img, path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def check_image(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file that `read_image` would accept, checked cheaply: the header (size,
    mode), then PNG chunk CRCs (`verify`, no decompression) or a JPEG decoded at 1/8 scale, which
    both read the whole file and so find truncation. DatasetError naming the file otherwise, with
    read_image's words."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
            _check_image_mode(img, path)
            if img.format == "PNG":
                img.verify()                      # chunk CRCs up to IEND, no decompression
            else:
                if img.format == "JPEG":
                    img.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # DCT at 1/8 scale, whole stream
                img.load()
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: unreadable or truncated image ({e})") from None
    return h, w


def read_label(path: str | Path) -> np.ndarray:
    """Decode a single-channel label file to an integer H x W array of raw values."""
    path = Path(path)
    img = _open(path, "label")
    if img.mode not in LABEL_MODES:
        hint = ("; colour-coded labels? read them with --label-format rgb (config: data.options: "
                "{label_format: rgb}) or convert them with `iaseg data convert-labels`"
                if img.mode in RGB_LABEL_MODES else "")
        raise DatasetError(f"{path}: label mode {img.mode!r} is not a single-channel id image "
                           f"(expected 8/16-bit grayscale or palette PNG with one class id per pixel){hint}")
    if img.mode == "1":
        img = img.convert("L")
    arr = np.asarray(img)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def read_rgb_label(path: str | Path) -> np.ndarray:
    """Decode a colour-coded label file to uint8 H x W x 3 RGB (palette and grayscale images
    are converted, alpha is dropped; 16-bit or float images raise DatasetError)."""
    path = Path(path)
    img = _open(path, "label")
    if img.mode not in RGB_LABEL_MODES:
        raise DatasetError(f"{path}: label mode {img.mode!r} is not an 8-bit colour image "
                           f"(label_format 'rgb' expects RGB colours of the description's palette)")
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


class ColourTable:
    """Colour -> class id (the description's palette) and void colour -> ignore index, for
    colour-coded labels. DatasetError when two classes (or a class and void) share a colour."""

    def __init__(self, description: DatasetDescription) -> None:
        self.description = description
        colours = [*description.palette, description.ignore_color]
        ids = [*range(description.num_classes), description.ignore_index]
        names = [*description.classes, "void"]
        seen: dict[tuple[int, int, int], str] = {}
        for colour, name in zip(colours, names):
            if colour in seen:
                raise DatasetError(f"{description.name}: {seen[colour]} and {name} share the colour "
                                   f"{list(colour)}: colour-coded labels need one colour per class and void")
            seen[colour] = name
        codes = _codes(np.asarray(colours, dtype=np.uint8))
        order = np.argsort(codes)
        self.codes = codes[order]
        self.ids = np.asarray(ids, dtype=np.int32)[order]

    def __call__(self, rgb: np.ndarray, path: str | Path) -> np.ndarray:
        """int32 H x W class ids / ignore index of an H x W x 3 colour label; DatasetError naming
        the file, the first unknown colour (row by row) and its pixel position."""
        codes = _codes(rgb)
        pos = np.minimum(np.searchsorted(self.codes, codes), self.codes.size - 1)
        unknown = self.codes[pos] != codes
        if unknown.any():
            first = int(np.argmax(unknown))
            y, x = divmod(first, codes.shape[1])
            d = self.description
            raise DatasetError(f"{path}: unknown label colour {rgb[y, x].tolist()} at x={x}, y={y} (first of "
                               f"{int(unknown.sum()):,} pixels whose colour is neither in the palette of {d.name} "
                               f"nor its void colour {list(d.ignore_color)})")
        return self.ids[pos]


def _codes(rgb: np.ndarray) -> np.ndarray:
    """One int32 per colour: R << 16 | G << 8 | B."""
    c = rgb.astype(np.int32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def raw_values(description: DatasetDescription) -> np.ndarray:
    """The raw label value that stands for each class id (index C: for void), so that written
    labels read back through `label_lut`: the ids themselves, or with a `label_map` the smallest
    raw value mapped to each. DatasetError when the label_map has no value for some class."""
    targets = [*range(description.num_classes), description.ignore_index]
    if description.label_map is None:
        return np.asarray(targets, dtype=np.int64)
    out = []
    for cls in targets:
        raws = [raw for raw, c in description.label_map.items() if c == cls]
        if not raws:
            name = description.classes[cls] if cls < description.num_classes else "void"
            raise DatasetError(f"{description.name}: the label_map has no raw value for {name}, so labels "
                               "of it cannot be written")
        out.append(min(raws))
    return np.asarray(out, dtype=np.int64)


def encode_label(ids: np.ndarray, description: DatasetDescription) -> bytes:
    """PNG bytes of an H x W map of class ids / ignore index, in the raw values the dataset
    readers expect (see raw_values): an 8-bit palette PNG coloured with the description's
    palette when the values fit in a byte (viewers show colours, readers get the values),
    else a 16-bit grayscale PNG."""
    raw = raw_values(description)  # C + 1 values: the classes, then void
    c = description.num_classes
    ids = np.asarray(ids)
    index = np.where(ids == description.ignore_index, c, ids)
    if index.size and (index.min() < 0 or index.max() > c):
        raise ValueError(f"label ids outside 0..{c - 1} and void {description.ignore_index}")
    if raw.min() < 0 or raw.max() > 65535:
        raise DatasetError(f"{description.name}: label values {raw.min()}..{raw.max()} cannot be stored in a "
                           "PNG (0..65535)")
    values = raw[index]
    buf = io.BytesIO()
    if raw.max() <= 255:
        img = Image.fromarray(values.astype(np.uint8))
        colours = np.tile(np.asarray(description.ignore_color, dtype=np.uint8), (256, 1))
        colours[raw[:c]] = np.asarray(description.palette, dtype=np.uint8)
        img.putpalette(colours.ravel().tolist())  # L -> P: the same bytes, now with colours
    else:
        img = Image.fromarray(values.astype(np.uint16))
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_label(path: str | Path, ids: np.ndarray, description: DatasetDescription) -> Path:
    """Write `encode_label(ids, description)` atomically to `path`."""
    return atomic_write_bytes(path, encode_label(ids, description))


def label_lut(description: DatasetDescription) -> np.ndarray:
    """Lookup table raw label value -> class id / ignore index; INVALID for values that are
    neither. With a `label_map` in the description only its keys are allowed; without one the
    raw values are the class ids themselves."""
    lut = np.full(_LUT_SIZE, INVALID, dtype=np.int32)
    if description.label_map is not None:
        for raw, cls in description.label_map.items():
            if 0 <= raw < _LUT_SIZE:
                lut[raw] = cls
    else:
        lut[: description.num_classes] = np.arange(description.num_classes, dtype=np.int32)
        if 0 <= description.ignore_index < _LUT_SIZE:
            lut[description.ignore_index] = description.ignore_index
    return lut


def map_label(raw: np.ndarray, lut: np.ndarray, path: str | Path, description: DatasetDescription) -> np.ndarray:
    """Map raw values through `lut`; raise DatasetError naming the file and the bad values."""
    if raw.dtype not in (np.uint8, np.uint16) and raw.size and (raw.min() < 0 or raw.max() >= lut.size):
        bad = np.unique(raw[(raw < 0) | (raw >= lut.size)])[:8]
        raise DatasetError(f"{path}: label values {bad.tolist()} outside the lookup range")
    out = np.take(lut, raw)  # much faster than lut[raw]
    if (out == INVALID).any():
        bad = np.unique(raw[out == INVALID])
        shown = ", ".join(str(v) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise DatasetError(f"{path}: label values [{shown}] are neither classes nor void "
                           f"({allowed_values(description)})")
    return out


def allowed_values(description: DatasetDescription) -> str:
    if description.label_map is not None:
        keys = sorted(description.label_map)
        return f"allowed raw values: {keys[0]}..{keys[-1]} as listed in the label_map of {description.name}"
    return (f"allowed: 0..{description.num_classes - 1} and void {description.ignore_index} "
            f"for {description.name}")


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a uint8 H x W x 3 array to size=(H, W)."""
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return image
    h, w = size
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def resize_label(label: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Nearest-neighbour resize (pixel-centre sampling) of an H x W integer array."""
    if size is None or tuple(label.shape[:2]) == tuple(size):
        return label
    return label[np.ix_(nearest_index(label.shape[0], size[0]), nearest_index(label.shape[1], size[1]))]


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel for nearest sampling at pixel centres."""
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)
