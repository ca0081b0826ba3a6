"""What a runner needs to know besides the weights: the network, its classes and input sizes.

Stored inside exported files (ONNX `metadata_props`, TorchScript `_extra_files`) so that an
exported file alone can be run, coloured and evaluated.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from iaseg.data.description import DatasetDescription
from iaseg.models import input_names

# 2: every file records its weights' SHA-256 (WEIGHTS_KEY). Version 1 files from before
# 2026-11-26 have none; those written since carry it and an "accuracy_check" entry (added to the
# metadata after the checksum), which is how a version-1 file that must have one is told apart.
FORMAT_VERSION = 2
# Where exported files keep the SHA-256 of their weights (ONNX metadata_props, TorchScript extra
# file, OpenVINO rt_info), checked when they are loaded: a damaged file that still parses would
# otherwise run with wrong weights.
WEIGHTS_KEY = "iaseg.weights_sha256"


@dataclass(frozen=True)
class ModelMetadata:
    model_name: str
    description: DatasetDescription
    input_size: tuple[int, int] | None = None          # (H, W) of the (context) input
    spatial_size: tuple[int, int] | None = None        # BiERF-PSPNet's full-resolution input
    model_options: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"                            # of the stored graph: fp32 | int8
    decision_rule: dict[str, Any] | None = None        # rule.to_dict() baked into the graph (outputs = logits + b)
    accuracy_check: dict[str, Any] | None = None       # int8: the accuracy guard run at export (checked_int8)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The network's inputs, also the input names of exported graphs: ('image',) or
        ('context', 'spatial') for BiERF-PSPNet."""
        return input_names(self.model_name)

    @property
    def num_inputs(self) -> int:
        return len(self.input_names)

    def with_(self, **changes: Any) -> "ModelMetadata":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "iaseg",
            "format_version": FORMAT_VERSION,
            "model_name": self.model_name,
            "model_options": _jsonable(self.model_options),
            "description": self.description.to_dict(),
            "input_names": list(self.input_names),
            "input_size": list(self.input_size) if self.input_size else None,
            "spatial_size": list(self.spatial_size) if self.spatial_size else None,
            "precision": self.precision,
            "decision_rule": self.decision_rule,
            "accuracy_check": self.accuracy_check,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<metadata>") -> "ModelMetadata":
        if not isinstance(d, dict) or d.get("format") != "iaseg" or "model_name" not in d:
            raise ValueError(f"{source}: no iaseg metadata (export the file with `iaseg export`)")
        return cls(
            model_name=str(d["model_name"]),
            description=DatasetDescription.from_dict(d["description"], source=source),
            input_size=tuple(d["input_size"]) if d.get("input_size") else None,
            spatial_size=tuple(d["spatial_size"]) if d.get("spatial_size") else None,
            model_options=dict(d.get("model_options") or {}),
            precision=str(d.get("precision", "fp32")),
            decision_rule=d.get("decision_rule") if isinstance(d.get("decision_rule"), dict) else None,
            accuracy_check=d.get("accuracy_check") if isinstance(d.get("accuracy_check"), dict) else None,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "<metadata>") -> "ModelMetadata":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: iaseg metadata is not valid JSON ({e})") from None
        return cls.from_dict(d, source)


def weights_digest(arrays: Iterable[tuple[str, Any]]) -> str:
    """SHA-256 of a model's weights: (name, numpy array) pairs in graph order, each array's
    dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, a in arrays:
        h.update(f"{name}|{a.dtype.str}|{tuple(a.shape)}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def expects_checksum(metadata_json: str | None) -> bool:
    """Whether the iaseg metadata (JSON text) of a file says it was written by a version that
    records the weights' checksum: format_version >= 2, or a version-1 file with the
    "accuracy_check" entry, which came after the checksum."""
    try:
        d = json.loads(metadata_json) if metadata_json else {}
    except ValueError:
        return False
    if not isinstance(d, dict):
        return False
    version = d.get("format_version")
    return (isinstance(version, int) and version >= 2) or "accuracy_check" in d


def check_weights(source: str, recorded: str | None, actual: str, required: bool = False) -> None:
    """ValueError naming `source` when its weights do not have the SHA-256 recorded at export,
    or when `required` (its metadata says its version records one: `expects_checksum`) and
    none is recorded. Files exported before iaseg recorded one are not checked."""
    if required and not recorded:
        raise ValueError(f"{source}: its checksum entry {WEIGHTS_KEY} is missing, though its metadata says it was "
                         "written by an iaseg that records one (the file was altered: export it again)")
    if recorded and recorded != actual:
        raise ValueError(f"{source}: its weights do not match the checksum recorded at export (the file is "
                         "damaged: export it again)")


def check_output_classes(source: str, meta: ModelMetadata, channels: Any) -> None:
    """ValueError naming `source` when the graph's output channels (an int when the graph states
    them) disagree with the class count of its metadata."""
    n = meta.description.num_classes
    if isinstance(channels, int) and channels > 0 and channels != n:
        raise ValueError(f"{source}: its iaseg metadata lists {n} classes but the model outputs {channels} "
                         "channels (the metadata does not belong to this model: export it again)")


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
