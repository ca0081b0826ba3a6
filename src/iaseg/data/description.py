"""Dataset descriptions: class names, palette, ignore index and importance groups, read from
small YAML files (shipped ones live in `iaseg/data/descriptions/`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DescriptionError

DESCRIPTIONS_DIR = Path(__file__).with_name("descriptions")
_REQUIRED = ("name", "classes", "palette", "ignore_index", "groups")
_OPTIONAL = ("native_size", "ignore_color", "label_map")


@dataclass(frozen=True)
class DatasetDescription:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int
    groups: dict[str, tuple[str, ...]]          # least to most important, e.g. G1, G2, G3
    native_size: tuple[int, int] | None = None  # (height, width)
    ignore_color: tuple[int, int, int] = (0, 0, 0)
    label_map: dict[int, int] | None = None     # raw label value -> class id or ignore; unlisted values are bad input
    source: str = field(default="", compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def group_names(self) -> list[str]:
        return list(self.groups)

    def group_indices(self) -> list[list[int]]:
        """Groups as lists of class ids, least to most important (the loss's `groups`)."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [[index[c] for c in members] for members in self.groups.values()]

    def class_index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"{self.name}: no class named {name!r}; classes are {list(self.classes)}") from None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "classes": list(self.classes),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
            "ignore_color": list(self.ignore_color),
            "groups": {k: list(v) for k, v in self.groups.items()},
            "native_size": list(self.native_size) if self.native_size else None,
        }
        if self.label_map is not None:
            d["label_map"] = {int(k): int(v) for k, v in self.label_map.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> "DatasetDescription":
        return _parse(d, source)


def available_descriptions() -> list[str]:
    return sorted(p.stem for p in DESCRIPTIONS_DIR.glob("*.yaml"))


def load_description(name_or_path: str | Path) -> DatasetDescription:
    """Load a shipped description by name ('camvid', 'cityscapes') or any YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        shipped = DESCRIPTIONS_DIR / f"{name_or_path}.yaml"
        if shipped.exists():
            path = shipped
    if not path.is_file():
        raise DescriptionError(
            f"dataset description {str(name_or_path)!r} not found: give a YAML file or one of "
            f"{available_descriptions()}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DescriptionError(f"{path}: not valid YAML ({e})") from None
    return _parse(data, str(path))


def _parse(d: Any, src: str) -> DatasetDescription:
    """Check every key's type and value; a DescriptionError naming `src` and the key otherwise."""
    if not isinstance(d, dict):
        raise DescriptionError(f"{src}: a dataset description must be a mapping")
    unknown = set(d) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise DescriptionError(f"{src}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise DescriptionError(f"{src}: missing key(s) {missing}")
    if not isinstance(d["name"], str) or not d["name"].strip():
        raise DescriptionError(f"{src}: 'name' must be a non-empty string, got {d['name']!r}")
    classes = tuple(_names(d["classes"], src, "'classes'", "class names"))
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DescriptionError(f"{src}: 'classes' must list at least two distinct names")
    if not isinstance(d["palette"], list):
        raise DescriptionError(f"{src}: 'palette' must be a list of [R, G, B] colours, got {d['palette']!r}")
    palette = tuple(_color(c, src, "'palette'") for c in d["palette"])
    if len(palette) != len(classes):
        raise DescriptionError(f"{src}: 'palette' has {len(palette)} colours for {len(classes)} classes")
    ignore = _integer(d["ignore_index"], src, "'ignore_index'")
    if 0 <= ignore < len(classes):
        raise DescriptionError(f"{src}: ignore_index {ignore} collides with class {classes[ignore]!r}")
    groups_raw = d["groups"]
    if not isinstance(groups_raw, dict) or len(groups_raw) < 2:
        raise DescriptionError(f"{src}: 'groups' must map at least two group names to class lists")
    groups: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for g, members in groups_raw.items():
        members = tuple(_names(members or [], src, f"group {g!r}", "class names"))
        if not members:
            raise DescriptionError(f"{src}: group {g!r} is empty")
        for m in members:
            if m not in classes:
                raise DescriptionError(f"{src}: group {g!r} names unknown class {m!r}")
            if m in seen:
                raise DescriptionError(f"{src}: class {m!r} is in groups {seen[m]!r} and {g!r}")
            seen[m] = str(g)
        groups[str(g)] = members
    ungrouped = [c for c in classes if c not in seen]
    if ungrouped:
        raise DescriptionError(f"{src}: classes {ungrouped} are in no group")
    size = d.get("native_size")
    native = None
    if size is not None:
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(_is_int(s) and s > 0 for s in size)):
            raise DescriptionError(f"{src}: 'native_size' must be [height, width] (positive integers), got {size!r}")
        native = (int(size[0]), int(size[1]))
    label_map = d.get("label_map")
    if label_map is not None:
        # keys are ints in YAML, strings in the JSON metadata of exported models
        if not isinstance(label_map, dict) or not all((_is_int(k) or isinstance(k, str) and k.lstrip("-").isdigit())
                                                      and _is_int(v) for k, v in label_map.items()):
            raise DescriptionError(f"{src}: 'label_map' must map raw label values to class ids (integers)")
        label_map = {int(k): int(v) for k, v in label_map.items()}
        bad = {k: v for k, v in label_map.items() if not (0 <= v < len(classes) or v == ignore)}
        if bad:
            raise DescriptionError(f"{src}: label_map targets outside the classes: {bad}")
    ignore_color = d.get("ignore_color")
    return DatasetDescription(
        name=d["name"], classes=classes, palette=palette, ignore_index=ignore, groups=groups,
        native_size=native,
        ignore_color=(0, 0, 0) if ignore_color is None else _color(ignore_color, src, "'ignore_color'"),
        label_map=label_map, source=src)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _integer(v: Any, src: str, key: str) -> int:
    if not _is_int(v):
        raise DescriptionError(f"{src}: {key} must be an integer, got {v!r}")
    return int(v)


def _names(v: Any, src: str, key: str, what: str) -> list[str]:
    """A YAML list of names (strings, or numbers written bare: YAML reads `- 1` as an int)."""
    if not isinstance(v, list) or not all(isinstance(m, (str, int)) and not isinstance(m, bool) for m in v):
        raise DescriptionError(f"{src}: {key} must be a list of {what}, got {v!r}")
    return [str(m) for m in v]


def _color(c: Any, src: str, key: str = "colour") -> tuple[int, int, int]:
    if not isinstance(c, (list, tuple)) or len(c) != 3 or not all(_is_int(v) for v in c):
        raise DescriptionError(f"{src}: {key}: colour {c!r} is not [R, G, B] (three integers)")
    if not all(0 <= v <= 255 for v in c):
        raise DescriptionError(f"{src}: {key}: colour {c!r} has values outside 0..255")
    return int(c[0]), int(c[1]), int(c[2])
