"""Applying a rule in a command: the one place that decides which rule a model runs with, refuses
a second rule on a model that carries one already, and says in one console line what is applied.

Every command that labels pixels (`iaseg predict` on images and video, `iaseg evaluate`, the
check `iaseg calibrate` prints) goes through `rule_for_model`, so a rule is never applied twice
(an exported model with a baked rule outputs logits + b already) and never silently."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .rule import DecisionRule, DecisionRuleError, load_rule


@dataclass(frozen=True)
class AppliedRule:
    """The rule a model runs with: `decide` is what the command passes to its loop (None: plain
    argmax of the outputs, also when the rule is baked into the model's graph); `line` the one
    console line saying so (None when no rule applies)."""
    rule: DecisionRule | None
    decide: Callable[[torch.Tensor], torch.Tensor] | None
    baked: bool
    line: str | None


def offsets_text(rule: DecisionRule) -> str:
    """'Pedestrian=+0.5, Bicyclist=+0.7' (the non-zero offsets), or 'no offsets'."""
    pairs = [f"{c}={v:+.3g}" for c, v in zip(rule.class_names, rule.offsets.tolist()) if v]
    return ", ".join(pairs) or "no offsets"


def describe_rule(rule: DecisionRule, source: str) -> str:
    """One line: where the rule comes from, its offsets, the family and data it was calibrated on,
    and its promise (expected effect on new data) when it states one."""
    info = rule.info or {}
    parts = [f"decision rule {source}: {offsets_text(rule)}"]
    fam = info.get("family")
    if fam:
        parts.append(f"family {fam}")
    cal = info.get("calibration") or {}
    if cal.get("dataset"):
        parts.append(f"calibrated on {cal.get('dataset')} {cal.get('split', '')}".rstrip())
    promise = info.get("promise")
    if isinstance(promise, dict) and promise.get("summary"):
        parts.append(f"promise: {promise['summary']}")
    return "; ".join(parts)


def rule_for_model(rule_path: str | Path | None, meta: Any, model: str) -> AppliedRule:
    """The rule to apply to `model` (whose ModelMetadata is `meta`): the file `rule_path`, or the
    rule baked into an exported model. Both at once is refused (DecisionRuleError naming the
    model): the baked offsets would be added a second time."""
    baked = getattr(meta, "decision_rule", None)
    if rule_path and baked is not None:
        raise DecisionRuleError(f"{model} already applies a decision rule (exported with --decision-rule): drop "
                                "--decision-rule, or it would be added twice")
    if rule_path:
        rule = load_rule(rule_path, meta.description)
        return AppliedRule(rule, rule.decide, False, "applying " + describe_rule(rule, str(rule_path)))
    if baked is not None:
        rule = DecisionRule.from_dict(baked, f"{model} (its baked decision rule)")
        return AppliedRule(rule, None, True, "the model applies its baked " + describe_rule(rule, f"in {model}"))
    return AppliedRule(None, None, False, None)
