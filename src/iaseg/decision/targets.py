"""The target language: 'G3.recall>=0.65', 'Pedestrian.precision>=0.9', and the objective
(--maximize): quantities computed from confusion matrices."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch

from iaseg.metrics.confusion import METRICS, class_metrics

from .rule import DecisionRuleError

OBJECTIVES = {  # --maximize shorthands -> (metric, over all classes)
    "miou": "iou", "mean_iou": "iou", "mean_recall": "recall", "mean_precision": "precision",
    "accuracy": "accuracy",
}


@dataclass(frozen=True)
class Quantity:
    """A number computed from a confusion matrix: a metric averaged over some classes (mean of
    the per-class values, undefined classes left out, as the reports do), or pixel accuracy."""
    label: str                  # 'G3.recall', 'Pedestrian.precision', 'mean.iou', 'accuracy'
    metric: str                 # recall | precision | iou | accuracy
    classes: tuple[int, ...]    # class ids averaged over (empty for accuracy)

    def value(self, cm: torch.Tensor) -> torch.Tensor:
        """Value for a confusion matrix or a batch of them (..., C, C); NaN when undefined."""
        cm = cm.to(torch.float64)
        if self.metric == "accuracy":
            total = cm.sum((-2, -1))
            return torch.diagonal(cm, dim1=-2, dim2=-1).sum(-1) / total.where(total > 0, math.nan)
        return class_metrics(cm)[self.metric][..., list(self.classes)].nanmean(-1)


@dataclass(frozen=True)
class Target:
    """'G3.recall>=0.65': a Quantity, an operator ('>=' or '<=') and a value in [0, 1]."""
    quantity: Quantity
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.quantity.label}{self.op}{self.value:g}"

    def met(self, value: float) -> bool:
        if value != value:
            return False
        return value >= self.value if self.op == ">=" else value <= self.value

    def shortfall(self, value: torch.Tensor) -> torch.Tensor:
        """How far a value (or batch of values) is from meeting the target; 1 when undefined."""
        gap = self.value - value if self.op == ">=" else value - self.value
        return gap.clamp(min=0).nan_to_num(nan=1.0)


_TARGET_RE = re.compile(r"^\s*(?P<name>.+)\.(?P<metric>\w+)\s*(?P<op>>=|<=|=>|=<|>|<|==|=)\s*(?P<value>\S+)\s*$")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _resolve_name(name: str, description: Any, what: str) -> tuple[str, tuple[int, ...]]:
    """Group or class name (case-insensitive; spaces, '_' and '-' alike) -> (name, class ids)."""
    classes = list(description.classes)
    index = {c: i for i, c in enumerate(classes)}
    groups = {g: tuple(index[c] for c in members) for g, members in description.groups.items()}
    hits = [(g, ids) for g, ids in groups.items() if _norm(g) == _norm(name)]
    hits += [(c, (i,)) for i, c in enumerate(classes) if _norm(c) == _norm(name)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise DecisionRuleError(f"{what}: {name!r} names both a group and a class; rename one in the description")
    raise DecisionRuleError(f"{what}: unknown group or class {name!r}; groups are {list(groups)}, "
                            f"classes are {classes}")


def parse_target(text: str, description: Any) -> Target:
    """'G3.recall>=0.65', 'Pedestrian.recall >= 0.8', 'car.precision<=0.95', 'mean.iou>=0.6'
    (NAME 'mean': the mean over all classes) -> Target.

    `description` is a DatasetDescription (or anything with .classes and .groups)."""
    what = f"target {text!r}"
    m = _TARGET_RE.match(text)
    if not m:
        raise DecisionRuleError(f"{what}: expected NAME.METRIC>=VALUE, e.g. 'G3.recall>=0.65'")
    op = {"=>": ">=", "=<": "<="}.get(m["op"], m["op"])
    if op not in (">=", "<="):
        raise DecisionRuleError(f"{what}: operator {m['op']!r} not supported; use >= or <=")
    metric = m["metric"].lower()
    if metric not in METRICS:
        raise DecisionRuleError(f"{what}: unknown metric {m['metric']!r}; use one of {list(METRICS)}")
    try:
        value = float(m["value"])
    except ValueError:
        raise DecisionRuleError(f"{what}: value {m['value']!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise DecisionRuleError(f"{what}: value {value:g} outside [0, 1] (write 65% as 0.65)")
    if _norm(m["name"]) == "mean" and not any(_norm(n) == "mean" for n in (*description.classes, *description.groups)):
        name, ids = "mean", tuple(range(len(description.classes)))  # the mean over all classes, as reports
    else:
        name, ids = _resolve_name(m["name"], description, what)
    return Target(Quantity(f"{name}.{metric}", metric, ids), op, value)


def parse_objective(text: str, description: Any) -> Quantity:
    """'miou' | 'mean_iou' | 'mean_recall' | 'mean_precision' | 'accuracy' | 'NAME.METRIC'."""
    key = text.strip().lower()
    if key in OBJECTIVES:
        metric = OBJECTIVES[key]
        if metric == "accuracy":
            return Quantity("accuracy", "accuracy", ())
        return Quantity(f"mean.{metric}", metric, tuple(range(len(description.classes))))
    what = f"--maximize {text!r}"
    if "." not in key:
        raise DecisionRuleError(f"{what}: use one of {list(OBJECTIVES)} or NAME.METRIC (e.g. G3.iou)")
    name, metric = text.strip().rsplit(".", 1)
    if metric.lower() not in METRICS:
        raise DecisionRuleError(f"{what}: unknown metric {metric!r}; use one of {list(METRICS)}")
    name, ids = _resolve_name(name, description, what)
    return Quantity(f"{name}.{metric.lower()}", metric.lower(), ids)
