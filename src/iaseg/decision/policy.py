"""The calibration policy `iaseg calibrate` applies around the search: the matched operating point
(--max-miou-drop: at most so many points of mean IoU below the plain model, each class of a
recall objective's group kept within --max-class-drop of its recall) and the class-drop verdict
(a rule that lowers the recall of a class of a recall or precision target by more than
--max-class-drop points is refused unless allowed). One function, `fit_rule`, does all of it;
`calibrate_rule` adds the risk-controlled single offset (--max-miss-rate) and is what the
command calls; the command only parses and prints."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from iaseg.metrics.confusion import class_metrics

from .cache import CalibrationData, confusion_from_cache
from .search import CalibrationResult, targeted_classes
from .targets import Quantity, Target, parse_objective, parse_target


@dataclass
class RuleFit:
    """What `fit_rule` found: the search's result, the targets it added (the matched point's
    floors), the lines to print, and the class-drop verdict."""
    result: CalibrationResult
    targets: list[Target]
    notes: list[str] = field(default_factory=list)
    drops: list[tuple[int, float, float]] = field(default_factory=list)
    drop_line: str | None = None
    refused: bool = False       # a class drop beyond the limit and not allowed: write no rule
    family: str = "class"
    shown: list[int] = field(default_factory=list)  # the classes whose recall before -> after is reported
    guarantee: dict[str, Any] | None = None         # risk control's statement, recorded in the rule
    no_offset: str | None = None                    # risk control found no offset: why (no rule)


@dataclass(frozen=True)
class CalibrationPolicy:
    """How `calibrate_rule` chooses a rule (the options of `iaseg calibrate`): targets and the
    objective's matched point (max_miou_drop), the class-drop guard, the rule family, or risk
    control of one group's miss rate (max_miss_rate, delta, risk_group; family single)."""
    targets: Sequence[Target] = ()
    max_miou_drop: float | None = None
    max_class_drop: float = 2.0
    allow_class_drop: bool = False
    family: str | None = None       # None: single with risk control, else class
    shrinkage: float = 0.5
    max_miss_rate: float | None = None
    delta: float | None = None
    risk_group: str | None = None


def floor6(v: float) -> float:
    """v rounded down to 6 decimals: a target written from it is met by v itself."""
    return math.floor(1e6 * v) / 1e6


def matched_targets(data: CalibrationData, description: Any, objective: Quantity, max_miou_drop: float,
                    max_class_drop: float) -> tuple[list[Target], list[str]]:
    """The targets of the matched operating point: mean IoU at most `max_miou_drop` points below
    the plain model's on `data`, and (for a recall objective) each class of its group within
    `max_class_drop` points of its plain recall, so the group's mean cannot rise by sinking one
    class. Returns (targets, console lines)."""
    plain = confusion_from_cache(data)
    base = float(parse_objective("miou", description).value(plain))
    floor = floor6(base - max_miou_drop / 100)
    targets = [parse_target(f"mean.iou>={max(floor, 0.0)}", description)]
    lines = [f"calibrate: mean IoU without a rule {100 * base:.1f}: target mean.iou>={floor:g} (--max-miou-drop "
             f"{max_miou_drop:g})"]
    if objective.metric == "recall":
        recall = class_metrics(plain)["recall"]
        floors = []
        for k in objective.classes:
            if math.isfinite(float(recall[k])) and float(recall[k]) > max_class_drop / 100:
                low = floor6(float(recall[k]) - max_class_drop / 100)
                floors.append(parse_target(f"{description.classes[k]}.recall>={low}", description))
        targets += floors
        lines.append("calibrate: keeping each class of the objective within --max-class-drop "
                     f"{max_class_drop:g} points of its recall: " + ", ".join(str(t) for t in floors))
    return targets, lines


def class_drop_verdict(result: CalibrationResult, description: Any, max_class_drop: float,
                       allow: bool) -> tuple[list[tuple[int, float, float]], str | None, bool]:
    """(drops, line, refused): the guarded classes whose recall the rule lowers by more than
    `max_class_drop` points, one line naming the largest drop and what to do, and whether the
    rule must not be written (a drop and not `allow`)."""
    drops = result.recall_drops(max_class_drop)
    if not drops:
        return drops, None, False
    k, b, a = drops[0]
    name = description.classes[k]
    more = f" (and {len(drops) - 1} more class(es))" if len(drops) > 1 else ""
    floor = math.floor(1000 * (b - max_class_drop / 100)) / 1000
    verdict = "written anyway (--allow-class-drop)" if allow else \
        f"no rule written (--target '{name}.recall>={floor:g}' keeps it, --allow-class-drop writes it)"
    line = (f"the rule lowers {name} recall by {100 * (b - a):.1f} points ({100 * b:.1f} -> {100 * a:.1f})"
            f"{more}, more than --max-class-drop {max_class_drop:g}; {verdict}")
    return drops, line, not allow


def fit_rule(data: CalibrationData, description: Any, targets: Sequence[Target], objective: Quantity, *,
             max_miou_drop: float | None = None, max_class_drop: float = 2.0, allow_class_drop: bool = False,
             family: str = "class", shrinkage: float = 0.5,
             log: Callable[[str], None] | None = None) -> RuleFit:
    """Calibrate a rule of `family` (see `iaseg.decision.families`) on `data` with the policy of
    `iaseg calibrate`: the matched point's targets added when `max_miou_drop` is given, then the
    class-drop verdict. Deterministic."""
    from .families import fit_family

    targets = list(targets)
    notes: list[str] = []
    if max_miou_drop is not None:
        extra, notes = matched_targets(data, description, objective, max_miou_drop, max_class_drop)
        targets += extra
    if not targets:
        raise ValueError("give at least one target or a mean IoU budget (max_miou_drop)")
    result = fit_family(family, data, description, targets, objective, improve=max_miou_drop is not None,
                        shrinkage=shrinkage, log=log)
    drops, line, refused = class_drop_verdict(result, description, max_class_drop, allow_class_drop)
    return RuleFit(result, targets, notes, drops, line, refused)


def fit_risk_control(data: CalibrationData, description: Any, group: str, alpha: float, delta: float | None,
                     objective: Quantity) -> tuple[RuleFit, Any]:
    """The single-offset rule on `group` chosen by risk control (`iaseg.decision.risk`): expected
    per-image miss rate of the group <= alpha (CRC), or so with probability >= 1 - delta (LTT).
    Returns (fit, RiskControl); fit.result.met is False when no offset of the grid qualifies."""
    import torch

    from .families import result_for_offsets
    from .risk import control_miss_rate

    if group not in description.groups:
        raise ValueError(f"--risk-group {group!r}: no such group (groups: {', '.join(description.groups)})")
    members = description.group_indices()[description.group_names.index(group)]
    rc = control_miss_rate(data, members, alpha, delta)
    b = torch.zeros(data.num_classes, dtype=torch.float32)
    if rc.offset is not None:
        b[members] = rc.offset
    result = result_for_offsets(data, [], objective, b, 1, int(bool(rc.offset)))
    result.met = rc.offset is not None
    return RuleFit(result, [], [f"calibrate: {rc.statement(group)}"]), rc


def calibrate_rule(data: CalibrationData, description: Any, objective: Quantity, policy: CalibrationPolicy,
                   log: Callable[[str], None] | None = None) -> RuleFit:
    """The rule `iaseg calibrate` writes for `policy` on `data`: risk control's single offset on
    the risk group (default: the most important) when max_miss_rate is given (`fit.no_offset`
    says why there is none), else `fit_rule`. `fit.shown` lists the classes whose recall the
    command reports (the risk group's, or the targeted classes)."""
    if policy.max_miss_rate is not None:
        group = policy.risk_group or description.group_names[-1]
        fit, control = fit_risk_control(data, description, group, policy.max_miss_rate, policy.delta, objective)
        fit.family = policy.family or "single"
        fit.guarantee = control.to_dict(group)
        fit.shown = list(description.group_indices()[description.group_names.index(group)])
        if control.offset is None:
            fit.no_offset = control.statement(group)
        return fit
    fit = fit_rule(data, description, policy.targets, objective, max_miou_drop=policy.max_miou_drop,
                   max_class_drop=policy.max_class_drop, allow_class_drop=policy.allow_class_drop,
                   family=policy.family or "class", shrinkage=policy.shrinkage, log=log)
    fit.family = policy.family or "class"
    fit.shown = list(targeted_classes(fit.targets))
    return fit
