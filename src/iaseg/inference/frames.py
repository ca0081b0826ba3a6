"""Input frames for prediction: an image file, each image of a folder (optionally its whole
tree), or each frame of a video.

Images are read by `iaseg.data.io.read_image`, the one strict image reader: unreadable,
truncated, 16-bit or float images and decompression bombs raise DatasetError naming the file.
Each frame has a name, the output file's path relative to the output folder without suffix:
an image's stem, `sub/dir/stem` for an image found in a sub-folder (the output tree mirrors the
input tree), `<stem>_<index:06d>` for a video frame. Two inputs that would get the same name
(`a.png` and `a.jpg`, compared case-insensitively for case-insensitive disks) are refused
before anything is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from iaseg.data.errors import DatasetError
from iaseg.data.io import IMAGE_EXTENSIONS, read_image

from .video import VIDEO_EXTENSIONS, iter_video


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_images(path: str | Path, recursive: bool = False) -> list[tuple[str, Path]]:
    """(name, file) of each image to predict, sorted by name: the image itself, or the images
    of a folder (with `recursive`, of its whole tree). Missing input: FileNotFoundError; a folder
    without images or two images of one name: DatasetError."""
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file or folder")
        return [(path.stem, path)]
    found = path.rglob("*") if recursive else path.iterdir()
    files = sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        where = "this folder or below" if recursive else "this folder (--recursive searches sub-folders)"
        raise DatasetError(f"{path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {where}")
    items = [(p.relative_to(path).with_suffix("").as_posix(), p) for p in files]
    seen: dict[str, Path] = {}
    for name, p in items:
        other = seen.setdefault(name.casefold(), p)
        if other is not p:
            raise DatasetError(f"{other} and {p} would both be written as {name}.png: rename one of them "
                               "(or predict them separately)")
    return sorted(items)


def iter_frames(path: str | Path, recursive: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    """(name, H x W x 3 uint8 RGB) for an image, each image of a folder (sorted; with
    `recursive` its whole tree), or each video frame. Errors: see `list_images`; an unreadable
    image: DatasetError; a video without PyAV: ImportError."""
    path = Path(path)
    if is_video(path) and path.is_file():
        yield from iter_video(path)
        return
    for name, f in list_images(path, recursive):
        yield name, read_image(f)
