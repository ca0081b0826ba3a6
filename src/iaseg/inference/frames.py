"""Input frames for prediction: an image file, each image of a folder, or each frame of a video.

Images are read by `iaseg.data.io.read_image`, the one strict image reader: unreadable,
truncated, 16-bit or float images and decompression bombs raise DatasetError naming the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from iaseg.data.errors import DatasetError
from iaseg.data.io import IMAGE_EXTENSIONS, read_image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def iter_frames(path: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, H x W x 3 uint8 RGB) for an image, each image of a folder (sorted), or each video
    frame (named `<stem>_<index:06d>`). Missing input: FileNotFoundError; a folder without
    images or an unreadable image: DatasetError; a video without PyAV: ImportError."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DatasetError(f"{path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder")
        for f in files:
            yield f.stem, read_image(f)
    elif path.suffix.lower() in VIDEO_EXTENSIONS:
        yield from _iter_video(path)
    elif path.is_file():
        yield path.stem, read_image(path)
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")


def _iter_video(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    try:
        import av
    except ImportError:
        raise ImportError("reading video needs PyAV: pip install av") from None
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                yield f"{path.stem}_{i:06d}", frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise DatasetError(f"{path}: cannot read video ({e})") from None
