"""What a network needs besides its weights, decided once: `ModelMetadata` (the network, its
classes, its inputs and their sizes, precision, a baked decision rule), and the keys under which
exported files carry it (the wire constants).

Below `iaseg.checkpoint` (which builds one from a checkpoint) and `iaseg.inference` (which stores
one inside exported files: ONNX `metadata_props`, TorchScript `_extra_files`, OpenVINO rt_info,
so that an exported file alone can be run, coloured and evaluated). Everything that feeds a
network takes its inputs and sizes from here (`input_names`, `sizes`, `complete`, `at_size`,
`example_inputs`, `image_inputs`) rather than asking the model registry by name again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from iaseg.data.description import DatasetDescription
from iaseg.models import input_names, input_sizes, resized_inputs, zero_inputs

# 2: every file records its weights' SHA-256 (WEIGHTS_KEY). Version 1 files from before
# 2026-11-26 have none; those written since carry it and an "accuracy_check" entry (added to the
# metadata after the checksum), which is how a version-1 file that must have one is told apart.
FORMAT_VERSION = 2
# Where exported files keep the SHA-256 of their weights (ONNX metadata_props, TorchScript extra
# file, OpenVINO rt_info), checked when they are loaded: a damaged file that still parses would
# otherwise run with wrong weights.
WEIGHTS_KEY = "iaseg.weights_sha256"
# Where an exported file with a baked-in decision rule keeps rule.to_dict() as JSON (ONNX
# metadata_props; iaseg.decision.ONNX_METADATA_KEY is this key).
DECISION_RULE_KEY = "iaseg.decision_rule"


@dataclass(frozen=True)
class ModelMetadata:
    """A network as it is run: its name (the registry's, or an import path), options, classes and
    sizes as stated by its checkpoint or file (`spatial_size` may be None: `sizes` and
    `complete` fill a two-input network's in), plus what an exported graph carries."""

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

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        """The H x W of each input the network runs at: (input_size,), or for a two-input
        network (input_size, spatial_size), the spatial size defaulting to the paper's ratio
        (`iaseg.models.input_sizes`). ValueError when there is no input size."""
        if self.input_size is None:
            raise ValueError(f"{self.model_name} has no input size: give one (--size HxW)")
        return input_sizes(self.model_name, self.input_size, self.spatial_size)

    def complete(self) -> "ModelMetadata":
        """This metadata with a two-input network's spatial size filled in (the default ratio to
        the input size) when it states none, so that exported files and runners state it."""
        if self.num_inputs == 2 and self.spatial_size is None and self.input_size is not None:
            return self.with_(spatial_size=self.sizes[1])
        return self

    def at_size(self, input_size: tuple[int, int], spatial_size: tuple[int, int] | None = None
                ) -> "ModelMetadata":
        """The network run at another (context) `input_size`: a two-input network's spatial
        size is `spatial_size`, else the default for the new size (the old one belongs to the
        old size)."""
        size = (int(input_size[0]), int(input_size[1]))
        return self.with_(input_size=size, spatial_size=tuple(spatial_size) if spatial_size else None).complete()

    def example_inputs(self, batch: int = 1, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """Zero inputs of the network's shapes (batch x 3 x H x W at each of `sizes`)."""
        return zero_inputs(self.sizes, batch, device)

    def image_inputs(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The network inputs for N x 3 x H x W images in [0, 1]: resized (bilinear) to each of
        `sizes`."""
        return resized_inputs(images, self.sizes)

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


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
