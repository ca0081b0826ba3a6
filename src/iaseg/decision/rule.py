"""The decision rule: per-class offsets b on the logits, decide(logits) = argmax(logits + b); its
JSON file format, and baking it into an exported model."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from iaseg.io import write_json
from iaseg.metadata import DECISION_RULE_KEY

FORMAT = "iaseg-decision-rule"
VERSION = 1
ONNX_METADATA_KEY = DECISION_RULE_KEY  # where an exporter stores rule.to_dict() as JSON (iaseg.metadata)
_FIELDS = ("format", "version", "classes", "offsets", "targets", "info")
# Offsets are added to log-probabilities, whose useful differences are tens of nats: 1e4 already
# rules a class in or out everywhere, and bounding them keeps logits + b far from float32 overflow.
MAX_OFFSET = 1e4


class DecisionRuleError(ValueError):
    """A decision rule, target or calibration cache is malformed or does not fit the model; the
    message is one line naming the file or option."""


class DecisionRule:
    """Per-class offsets b on the log-probabilities: decide(logits) = argmax(logits + b)."""

    def __init__(self, offsets: torch.Tensor | Sequence[float], class_names: Sequence[str],
                 targets: Sequence[str] = (), info: dict[str, Any] | None = None) -> None:
        offsets = torch.as_tensor(offsets, dtype=torch.float32).detach().cpu().clone()
        if offsets.ndim != 1 or offsets.numel() != len(class_names):
            raise ValueError(f"{offsets.numel()} offsets for {len(class_names)} classes")
        if not torch.isfinite(offsets).all() or bool((offsets.abs() > MAX_OFFSET).any()):
            raise ValueError(f"decision rule offsets must be finite and within +-{MAX_OFFSET:g}")
        self.offsets = offsets
        self.class_names = tuple(str(c) for c in class_names)
        self.targets = tuple(str(t) for t in targets)
        self.info = dict(info or {})

    @property
    def is_identity(self) -> bool:
        return not bool(self.offsets.any())

    def decide(self, logits: torch.Tensor) -> torch.Tensor:
        """N x C x H x W logits (or log-probabilities) -> N x H x W class ids."""
        if logits.shape[1] != self.offsets.numel():
            raise ValueError(f"logits have {logits.shape[1]} classes, the rule {self.offsets.numel()}")
        if self.is_identity:  # plain argmax, bit for bit
            return logits.argmax(1)
        dtype = torch.promote_types(logits.dtype, torch.float32)
        b = self.offsets.to(device=logits.device, dtype=dtype).view(1, -1, *([1] * (logits.ndim - 2)))
        return (logits.to(dtype) + b).argmax(1)

    __call__ = decide

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION,
            "classes": list(self.class_names),
            "offsets": [float(v) for v in self.offsets.tolist()],
            "targets": list(self.targets),
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write the rule as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Any, source: str = "<dict>") -> "DecisionRule":
        """A rule from its JSON form; every field is checked, a DecisionRuleError naming `source`
        and the field otherwise."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DecisionRuleError(f"{source}: not an iaseg decision rule (no \"format\": \"{FORMAT}\")")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
            raise DecisionRuleError(f"{source}: decision rule version {version!r} is not supported "
                                    f"(this iaseg reads version {VERSION})")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise DecisionRuleError(f"{source}: unknown field(s) {unknown}; a decision rule has {list(_FIELDS)}")
        classes, offsets = d.get("classes"), d.get("offsets")
        if (not isinstance(classes, list) or not classes
                or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
            raise DecisionRuleError(f"{source}: 'classes' must be a list of distinct class names")
        if not isinstance(offsets, list) or len(offsets) != len(classes):
            raise DecisionRuleError(f"{source}: 'offsets' must be a list of {len(classes)} numbers, one per class")
        for name, v in zip(classes, offsets):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise DecisionRuleError(f"{source}: offset of {name!r} is {v!r}, not a number")
            if not (math.isfinite(v) and abs(v) <= MAX_OFFSET):
                raise DecisionRuleError(f"{source}: offset of {name!r} is {v!r}: offsets must be finite and within "
                                        f"+-{MAX_OFFSET:g} (they are added to log-probabilities)")
        targets = d.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise DecisionRuleError(f"{source}: 'targets' must be a list of strings, got {targets!r}")
        info = d.get("info", {})
        if not isinstance(info, dict):
            raise DecisionRuleError(f"{source}: 'info' must be a mapping, got {info!r}")
        return cls([float(v) for v in offsets], classes, targets, info)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{c}={v:+.3g}" for c, v in zip(self.class_names, self.offsets.tolist()) if v)
        return f"DecisionRule({pairs or 'identity'})"


def load_rule(path: str | Path, description: Any = None) -> DecisionRule:
    """Read a rule JSON; when `description` (a DatasetDescription or a list of class names) is
    given, the rule's classes must be the model's, in the same order."""
    path = Path(path)
    if not path.is_file():
        raise DecisionRuleError(f"decision rule {path} not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DecisionRuleError(f"decision rule {path} is not valid JSON ({e})") from None
    except OSError as e:
        raise DecisionRuleError(f"decision rule {path} cannot be read ({e.strerror or e})") from None
    rule = DecisionRule.from_dict(data, str(path))
    if description is not None:
        expected = tuple(getattr(description, "classes", description))
        if rule.class_names != tuple(expected):
            raise DecisionRuleError(f"decision rule {path} was calibrated for classes {list(rule.class_names)}, "
                                    f"the model has {list(expected)}")
    return rule



class WithDecisionRule(nn.Module):
    """model(*inputs) + b: the exported model's argmax applies the rule. Its outputs are no
    longer plain logits, so do not pass --decision-rule again when running it."""

    def __init__(self, model: nn.Module, offsets: torch.Tensor | Sequence[float]) -> None:
        super().__init__()
        self.model = model
        b = torch.as_tensor(offsets, dtype=torch.float32).detach().clone()
        self.register_buffer("offsets", b.view(1, -1, 1, 1))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits = self.model(*inputs)
        return logits + self.offsets.to(logits.dtype)


def bake_decision_rule(model: nn.Module, rule: DecisionRule | str | Path,
                       description: Any = None) -> WithDecisionRule:
    """For `iaseg export --decision-rule RULE.json`: wrap `model` so its output is logits + b
    (a path is read with `load_rule(path, description)`). Store rule.to_dict() as JSON under the
    ONNX metadata key ONNX_METADATA_KEY so the file says which rule it carries."""
    if not isinstance(rule, DecisionRule):
        rule = load_rule(rule, description)
    return WithDecisionRule(model, rule.offsets)
