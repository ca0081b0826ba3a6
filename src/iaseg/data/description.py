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
    if not isinstance(d, dict):
        raise DescriptionError(f"{src}: a dataset description must be a mapping")
    unknown = set(d) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise DescriptionError(f"{src}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise DescriptionError(f"{src}: missing key(s) {missing}")
    classes = tuple(str(c) for c in d["classes"])
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DescriptionError(f"{src}: 'classes' must list at least two distinct names")
    palette = tuple(_color(c, src) for c in d["palette"])
    if len(palette) != len(classes):
        raise DescriptionError(f"{src}: 'palette' has {len(palette)} colours for {len(classes)} classes")
    ignore = int(d["ignore_index"])
    if 0 <= ignore < len(classes):
        raise DescriptionError(f"{src}: ignore_index {ignore} collides with class {classes[ignore]!r}")
    groups_raw = d["groups"]
    if not isinstance(groups_raw, dict) or len(groups_raw) < 2:
        raise DescriptionError(f"{src}: 'groups' must map at least two group names to class lists")
    groups: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for g, members in groups_raw.items():
        members = tuple(str(m) for m in (members or []))
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
        if len(size) != 2 or min(int(s) for s in size) <= 0:
            raise DescriptionError(f"{src}: native_size must be [height, width]")
        native = (int(size[0]), int(size[1]))
    label_map = d.get("label_map")
    if label_map is not None:
        label_map = {int(k): int(v) for k, v in label_map.items()}
        bad = {k: v for k, v in label_map.items() if not (0 <= v < len(classes) or v == ignore)}
        if bad:
            raise DescriptionError(f"{src}: label_map targets outside the classes: {bad}")
    return DatasetDescription(
        name=str(d["name"]), classes=classes, palette=palette, ignore_index=ignore, groups=groups,
        native_size=native, ignore_color=_color(d.get("ignore_color", (0, 0, 0)), src),
        label_map=label_map, source=src)


def _color(c: Any, src: str) -> tuple[int, int, int]:
    try:
        r, g, b = (int(v) for v in c)
    except (TypeError, ValueError):
        raise DescriptionError(f"{src}: colour {c!r} is not [R, G, B]") from None
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise DescriptionError(f"{src}: colour {c!r} has values outside 0..255")
    return r, g, b
