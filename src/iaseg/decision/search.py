"""The search for offsets that meet the targets with the objective as high as possible: greedy
moves that close the targets' shortfall, then polishing (see the package docstring)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from iaseg.metrics.confusion import class_metrics

from .cache import CalibrationData, confusion_from_cache, sweep_confusions
from .targets import Quantity, Target

# Candidate moves of one offset: +-2^-7 .. +-2^3 in 31 geometric steps per side. Logit offsets
# beyond +-8 (odds x 3000) are never useful; the greedy re-centres the grid after every move.
_STEPS = torch.cat([-torch.logspace(3, -7, 31, base=2.0), torch.logspace(-7, 3, 31, base=2.0)])
# The greedy gives up when its last _STALL_MOVES moves together closed less than _STALL_FRACTION
# of the shortfall they started from, or less than _STALL_GAIN (metric units: 0.1 percentage
# point): the targets are out of reach. (A move normally closes half the shortfall or more.)
_STALL_MOVES, _STALL_GAIN, _STALL_FRACTION = 10, 1e-3, 0.1
# Polishing moves must raise the objective by at least _POLISH_MIN_GAIN (0.005 percentage point).
# When no single move can, up to _TRADE_CANDIDATES target-breaking moves are each followed by up
# to _REPAIR_MOVES greedy moves that restore the targets; such a trade must gain _TRADE_MIN_GAIN.
_POLISH_MIN_GAIN, _TRADE_MIN_GAIN = 5e-5, 2e-4
_TRADE_CANDIDATES, _REPAIR_MOVES = 2, 3

@dataclass
class CalibrationResult:
    """What `calibrate` found. `offsets` meet every target on the calibration data iff `met`."""
    offsets: torch.Tensor
    targets: tuple[Target, ...]
    objective: Quantity
    before: torch.Tensor          # confusion matrix of plain argmax (C x C)
    after: torch.Tensor           # confusion matrix of the rule
    met: bool
    status: list[dict[str, Any]]  # per target: target, before, after, best, met, note
    objective_before: float
    objective_after: float
    moves: int = 0
    passes: int = 0

    def unmet_lines(self) -> list[str]:
        lines = []
        for t, s in zip(self.targets, self.status):
            if not s["met"]:
                reached = f"{t.quantity.label} is {_num(s['after'])} with the closest rule found"
                if s["best"] == s["best"] and s["best"] != s["after"]:
                    reached += f" (best seen {_num(s['best'])}, with the other targets further off)"
                note = f"; {s['note']}" if s.get("note") else ""
                lines.append(f"target {t} not reachable on the calibration data: {reached}{note}")
        return lines

    def class_recalls(self, classes: Sequence[int]) -> list[tuple[int, float, float]]:
        """(class id, recall before, recall after) for `classes`; NaN where a class has no
        labelled pixels."""
        before = class_metrics(self.before.to(torch.float64))["recall"]
        after = class_metrics(self.after.to(torch.float64))["recall"]
        return [(k, float(before[k]), float(after[k])) for k in classes]

    def recall_drops(self, max_drop: float) -> list[tuple[int, float, float]]:
        """The classes of recall and precision targets (`guarded_classes`) whose recall the rule lowers by more
        than `max_drop` percentage points, largest drop first."""
        rows = [r for r in self.class_recalls(guarded_classes(self.targets)) if 100 * (r[1] - r[2]) > max_drop + 1e-9]
        return sorted(rows, key=lambda r: r[2] - r[1])

    def summary(self) -> dict[str, Any]:
        return {"met": self.met, "objective": self.objective.label,
                "objective_before": _f(self.objective_before), "objective_after": _f(self.objective_after),
                "targets": [{k: (_f(v) if isinstance(v, float) else v) for k, v in s.items()} for s in self.status],
                "moves": self.moves, "passes": self.passes}


def targeted_classes(targets: Sequence[Target]) -> tuple[int, ...]:
    """Every class named by a target, groups expanded, in class order."""
    return tuple(sorted({k for t in targets for k in t.quantity.classes}))


def guarded_classes(targets: Sequence[Target]) -> tuple[int, ...]:
    """The classes of groups (or the classes) named in a recall or precision target (>=): raising
    a group's mean recall must not be paid for by one of its classes, and a precision target must
    not silently buy its precision by giving up the class's recall (the recall guard of `iaseg
    calibrate`)."""
    return targeted_classes([t for t in targets if t.quantity.metric in ("recall", "precision") and t.op == ">="])


class _State:
    """Confusion matrix + target values, shortfall and objective of one offset vector."""

    def __init__(self, cm: torch.Tensor, targets: Sequence[Target], objective: Quantity) -> None:
        self.cm = cm
        self.values = [float(t.quantity.value(cm)) for t in targets]
        self.shortfall = float(sum(float(t.shortfall(torch.tensor(v, dtype=torch.float64)))
                                   for t, v in zip(targets, self.values)))
        self.feasible = all(t.met(v) for t, v in zip(targets, self.values))
        self.objective = float(objective.value(cm))


def _batch_scores(cms: torch.Tensor, targets: Sequence[Target], objective: Quantity
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(shortfall, feasible, objective) for a batch of confusion matrices."""
    short = torch.zeros(cms.shape[0], dtype=torch.float64)
    feasible = torch.ones(cms.shape[0], dtype=torch.bool)
    for t in targets:
        v = t.quantity.value(cms)
        short += t.shortfall(v)
        ok = v >= t.value if t.op == ">=" else v <= t.value
        feasible &= ok & ~v.isnan()
    obj = objective.value(cms).nan_to_num(nan=-math.inf)
    return short, feasible, obj


def calibrate(data: CalibrationData, targets: Sequence[Target], objective: Quantity,
              max_moves: int = 200, polish_passes: int = 40,
              log: Callable[[str], None] | None = None, improve: bool = False) -> CalibrationResult:
    """Offsets meeting every target on `data` with the objective as high as possible (greedy
    then polish; see the module docstring). Exactly zero offsets when argmax already meets every
    target, unless `improve`: then the objective is raised from there while the targets stay met
    (e.g. the most G3 recall for a bounded loss of mean IoU). Deterministic."""
    if not targets:
        raise ValueError("calibrate needs at least one target")
    c = data.num_classes
    for t in targets:
        if any(k >= c for k in t.quantity.classes):
            raise ValueError(f"target {t} names class ids beyond the {c} classes of the data")
    search = _Search(data, targets, objective, log)
    b = torch.zeros(c, dtype=torch.float32)
    before = search.state(b)
    search.note_best(before)
    state = before
    involved = sorted({k for t in targets for k in t.quantity.classes})
    if not before.feasible:
        pools = [involved] + ([list(range(c))] if len(involved) < c else [])
        b, state = search.greedy(b, state, pools, max_moves)
        if state.feasible:
            b, state = search.polish(b, state, involved, polish_passes)
    elif improve:
        b, state = search.polish(b, state, involved, polish_passes)
    status = []
    present = state.cm.sum(1)
    for t, v0, v1, vb in zip(targets, before.values, state.values, search.best):
        note = None
        absent = [k for k in t.quantity.classes if present[k] == 0]
        if not t.met(v1) and absent:
            names = ", ".join(_class_label(data, k) for k in absent)
            note = f"no labelled pixels of {names} in the calibration data"
        status.append({"target": str(t), "before": v0, "after": v1, "best": vb, "met": t.met(v1), "note": note})
    return CalibrationResult(b, tuple(targets), objective, before.cm, state.cm, state.feasible, status,
                             before.objective, state.objective, search.moves, search.passes)


class _Search:
    """The moves of `calibrate`, with pass counting and logging."""

    def __init__(self, data: CalibrationData, targets: Sequence[Target], objective: Quantity,
                 log: Callable[[str], None] | None) -> None:
        self.data, self.targets, self.objective = data, list(targets), objective
        self.say = log or (lambda s: None)
        self.best: list[float] = [math.nan] * len(targets)
        self.moves = self.passes = 0

    def state(self, b: torch.Tensor) -> _State:
        self.passes += 1
        return _State(confusion_from_cache(self.data, b), self.targets, self.objective)

    def sweeps(self, b: torch.Tensor, pool: Sequence[int]) -> dict[int, torch.Tensor]:
        self.passes += 1
        return sweep_confusions(self.data, b, pool, {k: b[k] + _STEPS for k in pool})

    def note_best(self, state: _State) -> None:
        for i, (t, v) in enumerate(zip(self.targets, state.values)):
            old = self.best[i]
            if v == v and (old != old or (v > old if t.op == ">=" else v < old)):
                self.best[i] = v

    def accept(self, kind: str, b: torch.Tensor, k: int, state: _State) -> None:
        self.moves += 1
        self.note_best(state)
        if kind == "repair":  # part of a trade: logged once the trade is kept
            return
        values = ", ".join(f"{t.quantity.label} {v:.4f}" for t, v in zip(self.targets, state.values))
        self.say(f"{kind} {self.moves}: {_class_label(self.data, k)} offset {float(b[k]):+.4f}; {values}; "
                 f"{self.objective.label} {state.objective:.4f}")

    def greedy(self, b: torch.Tensor, state: _State, pools: Sequence[Sequence[int]], max_moves: int,
               kind: str = "move") -> tuple[torch.Tensor, _State]:
        """Shrink the targets' shortfall one offset at a time until every target is met, no
        move helps, progress stalls, or `max_moves` moves are made."""
        banned: set[tuple[int, int]] = set()
        history = [state.shortfall]
        made = 0
        while not state.feasible and made < max_moves:
            if len(history) > _STALL_MOVES:
                start = history[-_STALL_MOVES - 1]
                if start - history[-1] < max(_STALL_GAIN, _STALL_FRACTION * start):
                    self.say(f"stopping: the last {_STALL_MOVES} moves closed only {start - history[-1]:.2g} "
                             f"of a shortfall of {start:.2g}")
                    break
            move = None
            for pool in pools:
                move = _greedy_move(self.sweeps(b, pool), _STEPS, state, self.targets, self.objective, banned)
                if move is not None:
                    break
            if move is None:
                break
            trial = _moved(b, move)
            new = self.state(trial)
            if new.shortfall < state.shortfall:
                b, state, banned = trial, new, set()
                made += 1
                history.append(state.shortfall)
                self.accept(kind, b, move[0], state)
            else:  # a tie the sweep scored differently from argmax: try the next best move
                banned.add(move)
        return b, state

    def polish(self, b: torch.Tensor, state: _State, involved: Sequence[int], passes: int
               ) -> tuple[torch.Tensor, _State]:
        """Raise the objective while every target stays met: the best single-offset move that
        keeps them met; when there is none, a move that breaks them followed by a few greedy
        repair moves on the targets' classes (targets tend to end up met with no slack, where
        every single move breaks one)."""
        c = self.data.num_classes
        banned: set[tuple[int, int]] = set()
        for _ in range(passes):
            sweeps = self.sweeps(b, range(c))
            move = _polish_move(sweeps, _STEPS, state, self.targets, self.objective, banned)
            if move is not None:
                trial = _moved(b, move)
                new = self.state(trial)
                if new.feasible and new.objective >= state.objective + _POLISH_MIN_GAIN:
                    b, state, banned = trial, new, set()
                    self.accept("polish", b, move[0], state)
                else:
                    banned.add(move)
                continue
            for move in _trade_moves(sweeps, _STEPS, state, self.targets, self.objective, banned):
                banned.add(move)
                trial = _moved(b, move)
                moves_before = self.moves
                repaired, new = self.greedy(trial, self.state(trial), [involved], _REPAIR_MOVES, kind="repair")
                if new.feasible and new.objective >= state.objective + _TRADE_MIN_GAIN:
                    b, state, banned = repaired, new, set()
                    self.accept("trade", b, move[0], state)
                    break
                self.moves = moves_before
            else:
                break
        return b, state


def _moved(b: torch.Tensor, move: tuple[int, int]) -> torch.Tensor:
    k, g = move
    trial = b.clone()
    trial[k] = b[k] + _STEPS[g]
    return trial


def _trade_moves(sweeps: dict[int, torch.Tensor], steps: torch.Tensor, state: _State,
                 targets: Sequence[Target], objective: Quantity, banned: set[tuple[int, int]],
                 limit: int = _TRADE_CANDIDATES) -> list[tuple[int, int]]:
    """Moves that raise the objective but break a target, best objective gain per unit of
    shortfall first, at most one per class, at most `limit`."""
    per_class = []
    for k, cms in sweeps.items():
        short, _, obj = _batch_scores(cms, targets, objective)
        best_key, best = None, None
        for g in range(len(steps)):
            gain = float(obj[g]) - state.objective
            if (k, g) in banned or gain < _TRADE_MIN_GAIN:
                continue
            key = (gain / max(float(short[g]), 1e-6), gain, -float(steps[g].abs()))
            if best_key is None or key > best_key:
                best_key, best = key, (k, g)
        if best is not None:
            per_class.append((best_key, -best[0], best))
    per_class.sort(reverse=True)
    return [m for _, _, m in per_class[:limit]]


def _greedy_move(sweeps: dict[int, torch.Tensor], steps: torch.Tensor, state: _State,
                 targets: Sequence[Target], objective: Quantity,
                 banned: set[tuple[int, int]]) -> tuple[int, int] | None:
    """Candidate steps per class: the smallest closing the whole shortfall, the smallest closing
    half of it, else the one closing the most. Chosen: the candidate that costs the least
    objective per unit of shortfall closed (ties: larger gain, smaller step, lower class id)."""
    size = steps.abs()
    best_key, best = None, None
    for k, cms in sweeps.items():
        short, _, obj = _batch_scores(cms, targets, objective)
        gain = state.shortfall - short
        for g in [g for g in range(len(steps)) if (k, g) in banned]:
            gain[g] = -math.inf
        if not bool((gain > 1e-12).any()):
            continue
        candidates = {int(gain.argmax())}
        for need in (state.shortfall, state.shortfall / 2):
            enough = gain >= need - 1e-12
            if bool(enough.any()):
                candidates.add(int(torch.where(enough, size, math.inf).argmin()))
        for g in sorted(candidates):
            if float(gain[g]) <= 1e-12:
                continue
            loss = max(state.objective - float(obj[g]), 0.0)
            key = (float(gain[g]) / max(loss, 1e-6), float(gain[g]), -float(size[g]), -k)
            if best_key is None or key > best_key:
                best_key, best = key, (k, g)
    return best


def _polish_move(sweeps: dict[int, torch.Tensor], steps: torch.Tensor, state: _State,
                 targets: Sequence[Target], objective: Quantity,
                 banned: set[tuple[int, int]]) -> tuple[int, int] | None:
    """The single-offset move with the highest objective that keeps every target met."""
    best_key, best = None, None
    size = steps.abs()
    for k, cms in sweeps.items():
        _, feasible, obj = _batch_scores(cms, targets, objective)
        for g in range(len(steps)):
            if not feasible[g] or (k, g) in banned or float(obj[g]) < state.objective + _POLISH_MIN_GAIN:
                continue
            key = (float(obj[g]), -float(size[g]), -k)
            if best_key is None or key > best_key:
                best_key, best = key, (k, g)
    return best


def _class_label(data: CalibrationData, k: int) -> str:
    names = data.info.get("classes")
    return str(names[k]) if names and k < len(names) else f"class {k}"


def _num(v: Any) -> str:
    return "undefined" if v is None or v != v else f"{float(v):.4f}"


def _f(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v
