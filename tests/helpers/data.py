"""Small builders for dataset trees in tmp_path (used by tests/data/ and tests/cli/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, h: int = 24, w: int = 32, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(rgb)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return rgb


def write_label(path: Path, h: int = 24, w: int = 32, values: tuple[int, ...] = (0, 3, 11), seed: int = 0,
                mode: str = "L") -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    lab = rng.choice(np.asarray(values), size=(h, w)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(lab) if mode == "L" else Image.fromarray(lab).convert(mode)
    img.save(path)
    return lab


def camvid_tree(root: Path, split: str = "train", names: tuple[str, ...] = ("a", "b", "c"), **kw) -> Path:
    for i, n in enumerate(names):
        write_image(root / split / f"{n}.png", seed=i, **kw)
        write_label(root / f"{split}annot" / f"{n}.png", seed=i, **kw)
    return root


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# A description for colour-coded labels, and its colours: the classes, then void.
COLOUR_DESC = """name: tiny
classes: [background, person, sign]
palette: [[10, 10, 10], [255, 0, 0], [0, 255, 0]]
ignore_index: 255
ignore_color: [0, 0, 0]
groups:
  low: [background]
  high: [person, sign]
"""
COLOURS = np.array([[10, 10, 10], [255, 0, 0], [0, 255, 0], [0, 0, 0]], dtype=np.uint8)


def write_colour_label(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A colour label of COLOUR_DESC, and the ids a per-pixel reference gives (void = 255)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, 4, (h, w))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(COLOURS[index]).save(path)
    return np.array([[255 if i == 3 else i for i in row] for row in index.tolist()])
