"""Rule families: how many free offsets a rule has. Fewer offsets fit the calibration data less
closely and, out of sample, may hold better (issue 31: val-calibrated per-class rules lay 2 points
of G3 recall below the single-G3-offset curve on an unseen sequence).

    single   one offset added to every class of one group (the objective's group, else the most
             important one): a monotone family, the one risk control (`iaseg.decision.risk`) covers
    group    one offset per importance group (the first group's fixed at 0: a common constant
             changes nothing), coordinate search
    class    one offset per class: the greedy + polish search of `iaseg.decision.search`
    shrunk   per-class offsets pulled toward the per-group ones:
             b = (1 - s) * b_class + s * b_group, s = `shrinkage` in [0, 1] (0: class, 1: group)

Each returns a `CalibrationResult` re-scored exactly on the cache (`confusion_from_cache`).
Group offsets are scored for a whole grid in one pass (`iaseg.metrics.frontier.sweep_counts`)."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from iaseg.metrics.frontier import confusions_from_counts, sweep_counts

from .cache import CalibrationData, confusion_from_cache
from .search import CalibrationResult, _batch_scores, _State, calibrate
from .targets import Quantity, Target

FAMILIES = ("single", "group", "class", "shrunk")
# Candidate values of one group offset, relative to its current value: 0.05 logit steps over
# [-3, 6] (0 included exactly: the plain model is a candidate).
_GRID = torch.tensor(sorted({round(-3.0 + 0.05 * i, 2) for i in range(181)}), dtype=torch.float32)
_GROUP_ROUNDS = 4


def family_group(description: Any, targets: Sequence[Target], objective: Quantity) -> tuple[int, ...]:
    """The classes the single offset moves: the objective's group or class set when it is one
    (e.g. G3.recall), else that of the first target naming fewer than all classes, else the
    description's most important (last) group."""
    c = len(description.classes)
    for q in [objective] + [t.quantity for t in targets]:
        if q.metric != "accuracy" and 0 < len(q.classes) < c:
            return tuple(q.classes)
    return tuple(description.group_indices()[-1])


def group_sweep(data: CalibrationData, offsets: torch.Tensor, members: Sequence[int],
                values: torch.Tensor) -> torch.Tensor:
    """G x C x C confusion matrices of `offsets` with values[g] added to the classes `members`,
    for every value, in one pass over the cache."""
    c = data.num_classes
    mask = torch.zeros(c, dtype=torch.bool, device=data.logits.device)
    mask[list(members)] = True
    b = torch.as_tensor(offsets, dtype=torch.float32, device=data.logits.device)
    vals = values.to(device=data.logits.device, dtype=torch.float32)
    h_in = h_out = None
    for z, y in data.chunks():
        hi, ho = sweep_counts(z + b, y, mask, vals)
        h_in = hi if h_in is None else h_in + hi
        h_out = ho if h_out is None else h_out + ho
    return confusions_from_counts(h_in, h_out).cpu()


def _pick(cms: torch.Tensor, targets: Sequence[Target], objective: Quantity, values: torch.Tensor,
          prefer_zero: bool) -> int:
    """Index of the best candidate: feasible with the highest objective (ties: the smallest
    move), else the smallest shortfall. `prefer_zero`: a feasible plain value (0) wins outright."""
    short, feasible, obj = _batch_scores(cms, targets, objective)
    size = values.abs().double()
    zero = int(torch.argmin(size))
    if prefer_zero and bool(feasible[zero]):
        return zero
    if bool(feasible.any()):
        key = torch.where(feasible, obj, torch.full_like(obj, -math.inf))
        best = key.max()
        cands = torch.nonzero(key >= best - 1e-12).flatten()
        return int(cands[torch.argmin(size[cands])])
    best = short.min()
    cands = torch.nonzero(short <= best + 1e-12).flatten()
    return int(cands[torch.argmin(size[cands])])


def result_for_offsets(data: CalibrationData, targets: Sequence[Target], objective: Quantity, b: torch.Tensor,
            passes: int, moves: int) -> CalibrationResult:
    before = _State(confusion_from_cache(data), targets, objective)
    after = _State(confusion_from_cache(data, b), targets, objective)
    status = [{"target": str(t), "before": v0, "after": v1, "best": v1, "met": t.met(v1), "note": None}
              for t, v0, v1 in zip(targets, before.values, after.values)]
    return CalibrationResult(b.clone(), tuple(targets), objective, before.cm, after.cm, after.feasible, status,
                             before.objective, after.objective, moves, passes + 2)


def fit_single(data: CalibrationData, targets: Sequence[Target], objective: Quantity, members: Sequence[int],
               improve: bool = False) -> CalibrationResult:
    """One offset on the classes `members`: every grid value scored in one pass."""
    b = torch.zeros(data.num_classes, dtype=torch.float32)
    cms = group_sweep(data, b, members, _GRID)
    g = _pick(cms, targets, objective, _GRID, prefer_zero=not improve)
    b[list(members)] += _GRID[g]
    return result_for_offsets(data, targets, objective, b, 1, int(_GRID[g] != 0))


def fit_groups(data: CalibrationData, targets: Sequence[Target], objective: Quantity,
               groups: Sequence[Sequence[int]], improve: bool = False) -> CalibrationResult:
    """One offset per group (the first fixed at 0), coordinate search: each round sweeps every
    other group's offset with the rest fixed and keeps the best value."""
    b = torch.zeros(data.num_classes, dtype=torch.float32)
    passes = moves = 0
    for _ in range(_GROUP_ROUNDS):
        moved = False
        for members in groups[1:]:
            cms = group_sweep(data, b, members, _GRID)
            passes += 1
            g = _pick(cms, targets, objective, _GRID, prefer_zero=not improve)
            if float(_GRID[g]) != 0.0:
                b[list(members)] += _GRID[g]
                moves += 1
                moved = True
        if not moved:
            break
    return result_for_offsets(data, targets, objective, b, passes, moves)


def fit_family(family: str, data: CalibrationData, description: Any, targets: Sequence[Target],
               objective: Quantity, improve: bool = False, shrinkage: float = 0.5,
               log: Callable[[str], None] | None = None) -> CalibrationResult:
    """The rule of `family` (FAMILIES) meeting `targets` with `objective` as high as possible."""
    if family not in FAMILIES:
        raise ValueError(f"unknown rule family {family!r}; families are {', '.join(FAMILIES)}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage {shrinkage:g} outside [0, 1] (0: per-class offsets, 1: per-group)")
    if family == "single":
        return fit_single(data, targets, objective, family_group(description, targets, objective), improve)
    if family == "group":
        return fit_groups(data, targets, objective, description.group_indices(), improve)
    per_class = calibrate(data, targets, objective, log=log, improve=improve)
    if family == "class":
        return per_class
    per_group = fit_groups(data, targets, objective, description.group_indices(), improve)
    b = (1.0 - shrinkage) * per_class.offsets.float() + shrinkage * per_group.offsets.float()
    return result_for_offsets(data, targets, objective, b, per_class.passes + per_group.passes,
                              per_class.moves + per_group.moves)

