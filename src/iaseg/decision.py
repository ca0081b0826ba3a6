"""Importance-aware decision rules: recall/precision control at inference, without retraining
(the paper's future work, section V).

A decision rule is a vector b of per-class offsets added to the log-probabilities before the
argmax:

    y(x) = argmax_c  log p(c | x) + b_c  =  argmax_c  z_c(x) + b_c

The two forms are equal because log_softmax(z) = z - logsumexp(z) subtracts the same number from
every class of a pixel, which never changes the argmax; so the rule works directly on the
network's logits. It is the Bayes decision under a cost matrix whose misclassification cost
depends on the true class only (b_c = log cost_c): raising b_c labels more pixels c (recall of c
up, precision of c usually down). b = 0 is plain argmax, exactly, ties included.

`iaseg calibrate` fits b on a labelled split so that targets such as "G3.recall>=0.65" hold
while mean IoU (or another `--maximize` quantity) stays as high as possible:

1. run the network once, keep the logits (float16) and labels of the labelled pixels (optionally
   a random subsample, `--max-pixels`) in a cache file, so later calls with other targets skip
   the network;
2. if plain argmax already meets every target, return b = 0 exactly;
3. greedy: move one offset at a time, each move chosen (among the classes named by the targets,
   then among all classes if those are stuck) as the one that buys the largest reduction of the
   total target shortfall per point of objective lost;
4. polish: coordinate search over all offsets that keeps every target met and raises the
   objective; when no single move can, "trades": a move that raises the objective but breaks a
   target, followed by a few greedy moves that restore it.

Every candidate value of one offset is scored in a single pass over the cache: with the other
offsets fixed, pixel i is labelled c exactly when b_c > t_i = max_{j != c}(z_ij + b_j) - z_ic,
so a histogram of t_i split by (label, runner-up class) gives the confusion matrix for every
candidate b_c at once (`sweep_confusions`). Each accepted move is re-scored exactly with
`confusion_from_cache` (argmax + bincount), so the reported numbers are those of the rule.

The rule is a JSON file (`DecisionRule.save`, `load_rule`); `iaseg evaluate/predict
--decision-rule RULE.json` apply it, and `WithDecisionRule` bakes it into an exported model.
"""
from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

FORMAT = "iaseg-decision-rule"
VERSION = 1
CACHE_FORMAT = "iaseg-calibration-cache"
CACHE_VERSION = 1
METRICS = ("recall", "precision", "iou")
OBJECTIVES = {  # --maximize shorthands -> (metric, over all classes)
    "miou": "iou", "mean_iou": "iou", "mean_recall": "recall", "mean_precision": "precision",
    "accuracy": "accuracy",
}
ONNX_METADATA_KEY = "iaseg.decision_rule"  # where an exporter may store rule.to_dict() as JSON
DEFAULT_MAX_PIXELS = 20_000_000  # > CamVid val (101 x 360 x 480 = 17.5 M): exact there

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


class DecisionRuleError(ValueError):
    """A decision rule, target or calibration cache is malformed or does not fit the model; the
    message is one line naming the file or option."""


# ---------------------------------------------------------------------------------------------
# targets and objectives

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
    """'G3.recall>=0.65', 'Pedestrian.recall >= 0.8', 'car.precision<=0.95' -> Target.

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


def class_metrics(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class recall, precision, IoU of a confusion matrix (..., C, C), rows = ground truth,
    columns = prediction; NaN where the denominator is 0 (class absent / never predicted)."""
    cm = cm.to(torch.float64)
    tp = torch.diagonal(cm, dim1=-2, dim2=-1)
    gt, pred = cm.sum(-1), cm.sum(-2)
    union = gt + pred - tp
    nan = torch.tensor(math.nan, dtype=torch.float64, device=cm.device)
    return {"recall": tp / gt.where(gt > 0, nan), "precision": tp / pred.where(pred > 0, nan),
            "iou": tp / union.where(union > 0, nan)}


# ---------------------------------------------------------------------------------------------
# the rule

class DecisionRule:
    """Per-class offsets b on the log-probabilities: decide(logits) = argmax(logits + b)."""

    def __init__(self, offsets: torch.Tensor | Sequence[float], class_names: Sequence[str],
                 targets: Sequence[str] = (), info: dict[str, Any] | None = None) -> None:
        offsets = torch.as_tensor(offsets, dtype=torch.float32).detach().cpu().clone()
        if offsets.ndim != 1 or offsets.numel() != len(class_names):
            raise ValueError(f"{offsets.numel()} offsets for {len(class_names)} classes")
        if not torch.isfinite(offsets).all():
            raise ValueError("decision rule offsets must be finite")
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
        from iaseg.io import atomic_write_bytes

        text = json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_json_default)
        atomic_write_bytes(path, (text + "\n").encode())
        return Path(path)

    @classmethod
    def from_dict(cls, d: Any, source: str = "<dict>") -> "DecisionRule":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DecisionRuleError(f"{source}: not an iaseg decision rule (no \"format\": \"{FORMAT}\")")
        if d.get("version") != VERSION:
            raise DecisionRuleError(f"{source}: decision rule version {d.get('version')!r} is not supported "
                                    f"(this iaseg reads version {VERSION})")
        classes, offsets = d.get("classes"), d.get("offsets")
        if not isinstance(classes, list) or not isinstance(offsets, list) or len(classes) != len(offsets):
            raise DecisionRuleError(f"{source}: 'classes' and 'offsets' must be lists of the same length")
        try:
            values = [float(v) for v in offsets]
        except (TypeError, ValueError):
            raise DecisionRuleError(f"{source}: 'offsets' must be numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise DecisionRuleError(f"{source}: 'offsets' must be finite numbers")
        return cls(values, [str(c) for c in classes], d.get("targets") or [], d.get("info") or {})

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
    rule = DecisionRule.from_dict(data, str(path))
    if description is not None:
        expected = tuple(getattr(description, "classes", description))
        if rule.class_names != tuple(expected):
            raise DecisionRuleError(f"decision rule {path} was calibrated for classes {list(rule.class_names)}, "
                                    f"the model has {list(expected)}")
    return rule


# ---------------------------------------------------------------------------------------------
# baking a rule into a model (ONNX / TorchScript export)

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


# ---------------------------------------------------------------------------------------------
# calibration data: the logits of the labelled pixels, computed once

@dataclass
class CalibrationData:
    """Logits (N x C, float16) and labels (N, class ids) of the labelled calibration pixels.

    Memory: N x C x 2 bytes + N bytes, e.g. CamVid val at 360x480, 11 classes: ~17 M pixels,
    ~0.4 GB (twice that while it is being assembled). The search works on chunks of
    CHUNK_ELEMENTS logits at a time, so it adds only ~0.5 GB of temporaries on top."""
    logits: torch.Tensor
    labels: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

    CHUNK_ELEMENTS = 1 << 24

    def __post_init__(self) -> None:
        if self.logits.ndim != 2 or self.labels.shape != self.logits.shape[:1]:
            raise ValueError(f"calibration data: logits {tuple(self.logits.shape)} and labels "
                             f"{tuple(self.labels.shape)} do not match (want N x C and N)")

    @property
    def num_pixels(self) -> int:
        return self.logits.shape[0]

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def chunks(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """(float32 logits n x C, int64 labels n) slices small enough to bound memory."""
        step = max(1, self.CHUNK_ELEMENTS // max(1, self.num_classes))
        for s in range(0, self.num_pixels, step):
            yield self.logits[s:s + step].float(), self.labels[s:s + step].long()

    def to(self, device: torch.device | str) -> "CalibrationData":
        return CalibrationData(self.logits.to(device), self.labels.to(device), self.info)

    def save(self, path: str | Path) -> Path:
        """torch.save to a temporary file in the same folder, then rename (atomic, no second
        copy of the logits in memory)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from iaseg.io import atomic_write

        state = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "logits": self.logits.cpu(),
                 "labels": self.labels.cpu(), "info": self.info}
        atomic_write(path, lambda f: torch.save(state, f))  # streamed: the cache can be large
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CalibrationData":
        path = Path(path)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            raise DecisionRuleError(f"calibration cache {path} cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(d, dict) or d.get("format") != CACHE_FORMAT or d.get("version") != CACHE_VERSION:
            raise DecisionRuleError(f"{path} is not an iaseg calibration cache (version {CACHE_VERSION})")
        return cls(d["logits"], d["labels"], d.get("info") or {})


@torch.no_grad()
def collect_logits(net: nn.Module | Callable[..., torch.Tensor], loader: Any, model_name: str,
                   num_classes: int, ignore_index: int, device: torch.device | str, amp: str = "off",
                   input_size: tuple[int, int] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                   seed: int = 0, progress: bool = True) -> CalibrationData:
    """Run the network once over a loader (as `evaluate_loader` does: logits upsampled to the
    label size when they differ; `input_size` resizes the images first) and keep the logits and
    labels of the labelled pixels. When the split has more than `max_pixels` of them, a uniform
    random subset (seeded, so deterministic) is kept: an unbiased sample of the confusion matrix."""
    from iaseg.engine.evaluator import iter_logits

    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    keep_logits: list[torch.Tensor] = []
    keep_labels: list[torch.Tensor] = []
    labelled = kept = images = 0
    keep_prob = None
    label_dtype = torch.uint8 if num_classes <= 255 else torch.int16
    for _, logits, target in iter_logits(net, loader, model_name, device, amp=amp, input_size=input_size,
                                         progress=progress, desc="calibration logits"):
        if logits.shape[1] != num_classes:
            raise ValueError(f"the network gives {logits.shape[1]} classes, the description {num_classes}")
        if keep_prob is None:  # an upper bound of the labelled pixels: every pixel of every image
            total = len(loader.dataset) * target.shape[-2] * target.shape[-1]
            keep_prob = min(1.0, max_pixels / max(total, 1))
        mask = target != ignore_index
        bad = target[mask]
        bad = bad[(bad < 0) | (bad >= num_classes)]
        if bad.numel():
            raise ValueError(f"labels contain class ids {sorted(set(bad.unique().tolist()))} outside "
                             f"0..{num_classes - 1} (ignore index {ignore_index})")
        labelled += int(mask.sum())
        if keep_prob < 1.0:
            mask &= (torch.rand(mask.shape, generator=gen) < keep_prob).to(device)
        keep_logits.append(logits.permute(0, 2, 3, 1)[mask].half().cpu())
        keep_labels.append(target[mask].to(label_dtype).cpu())
        kept += keep_labels[-1].numel()
        images += target.shape[0]
    if kept == 0:
        raise ValueError("the calibration split has no labelled pixels")
    logits_all = torch.cat(keep_logits)
    del keep_logits
    labels_all = torch.cat(keep_labels)
    if kept > max_pixels:  # the keep probability used an upper bound; trim to exactly max_pixels
        idx = torch.randperm(kept, generator=gen)[:max_pixels].sort().values
        logits_all, labels_all = logits_all[idx], labels_all[idx]
    info = {"images": images, "labelled_pixels": labelled, "pixels": labels_all.numel(),
            "subsampled": labels_all.numel() < labelled}
    return CalibrationData(logits_all, labels_all, info)


# ---------------------------------------------------------------------------------------------
# fast re-evaluation on the cache

def confusion_from_cache(data: CalibrationData, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """C x C int64 confusion matrix (rows = ground truth) of argmax(logits + offsets) over the
    cached pixels, exactly as DecisionRule.decide labels them."""
    c = data.num_classes
    device = data.logits.device
    cm = torch.zeros(c * c, dtype=torch.int64, device=device)
    b = None if offsets is None or not bool(torch.as_tensor(offsets).any()) else \
        torch.as_tensor(offsets, dtype=torch.float32, device=device)
    for z, y in data.chunks():
        pred = z.argmax(1) if b is None else (z + b).argmax(1)
        cm += torch.bincount(y * c + pred, minlength=c * c)
    return cm.view(c, c).cpu()


def sweep_confusions(data: CalibrationData, offsets: torch.Tensor, classes: Sequence[int],
                     values: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """For each class k in `classes`: confusion matrices (G x C x C, int64) of the rule with b_k
    replaced by each of values[k] (G increasing numbers), the other offsets as given, in one pass
    over the cache.

    With the others fixed, pixel i is labelled k iff b_k > t_i = m_i - z_ik, where m_i / a_i are
    the best score / class among the others; otherwise it is labelled a_i. So the confusion at
    candidate v is: all pixels at (y_i, a_i), minus those with t_i < v moved to column k. Exact
    ties (b_k == t_i) may resolve differently from argmax; callers re-check accepted moves with
    `confusion_from_cache`."""
    c = data.num_classes
    device = data.logits.device
    b = torch.as_tensor(offsets, dtype=torch.float32, device=device)
    grids = {k: values[k].to(device=device, dtype=torch.float32) for k in classes}
    counts = {k: torch.zeros((grids[k].numel() + 1) * c * c, dtype=torch.int64, device=device) for k in classes}
    for z, y in data.chunks():
        s = z + b
        i1 = s.argmax(1, keepdim=True)
        v1 = s.gather(1, i1)
        s.scatter_(1, i1, -math.inf)
        i2 = s.argmax(1, keepdim=True)
        v2 = s.gather(1, i2)
        i1, v1, i2, v2 = i1[:, 0], v1[:, 0], i2[:, 0], v2[:, 0]
        ya1, ya2 = y * c + i1, y * c + i2  # (label, best other) cell when k is / is not the top class
        for k in classes:
            top = i1 == k
            t = torch.where(top, v2, v1).sub_(z[:, k])
            bucket = torch.bucketize(t, grids[k], right=True)  # flips to k at grid[g] for g >= bucket
            cell = torch.where(top, ya2, ya1).add_(bucket, alpha=c * c)
            counts[k] += torch.bincount(cell, minlength=counts[k].numel())
    out = {}
    for k in classes:
        g = grids[k].numel()
        h = counts[k].view(g + 1, c, c)
        everyone = h.sum(0)
        flipped = h[:g].cumsum(0)
        cm = everyone.unsqueeze(0) - flipped
        cm[:, :, k] += flipped.sum(-1)
        out[k] = cm.cpu()
    return out


# ---------------------------------------------------------------------------------------------
# the search

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

    def summary(self) -> dict[str, Any]:
        return {"met": self.met, "objective": self.objective.label,
                "objective_before": _f(self.objective_before), "objective_after": _f(self.objective_after),
                "targets": [{k: (_f(v) if isinstance(v, float) else v) for k, v in s.items()} for s in self.status],
                "moves": self.moves, "passes": self.passes}


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
              log: Callable[[str], None] | None = None) -> CalibrationResult:
    """Offsets meeting every target on `data` with the objective as high as possible (greedy
    then polish; see the module docstring). Exactly zero offsets when argmax already meets every
    target. Deterministic."""
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
    if not before.feasible:
        involved = sorted({k for t in targets for k in t.quantity.classes})
        pools = [involved] + ([list(range(c))] if len(involved) < c else [])
        b, state = search.greedy(b, state, pools, max_moves)
        if state.feasible:
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


# ---------------------------------------------------------------------------------------------
# reports and the trade-off plot

def before_after_markdown(before: dict[str, Any], after: dict[str, Any], rule: DecisionRule,
                          result: CalibrationResult | None = None) -> str:
    """A markdown page: targets (before/after), offsets, and precision/recall/IoU per class,
    per group and mean, before (plain argmax) and after (the rule). `before`/`after` are report
    dicts as `iaseg.metrics.build_report` returns them."""
    lines = ["# Decision rule: before (argmax) and after (argmax of logits + b)", ""]
    if result is not None:
        lines += ["| target | before | after | met |", "|---|---:|---:|:---:|"]
        for s in result.status:
            lines.append(f"| `{s['target']}` | {_pct(s['before'])} | {_pct(s['after'])} | "
                         f"{'yes' if s['met'] else 'NO'} |")
        lines += ["", f"Objective {result.objective.label}: {_pct(result.objective_before)} -> "
                      f"{_pct(result.objective_after)}", ""]
    lines += ["| class | offset b |", "|---|---:|"]
    lines += [f"| {c} | {v:+.4f} |" for c, v in zip(rule.class_names, rule.offsets.tolist())]
    lines += ["", "| | P before | P after | R before | R after | IoU before | IoU after |",
              "|---|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, x: dict[str, Any], y: dict[str, Any]) -> str:
        cells = [f"{_pct(x.get(m))} | {_pct(y.get(m))}" for m in ("precision", "recall", "iou")]
        return f"| {name} | " + " | ".join(cells) + " |"

    for name in before.get("per_class", {}):
        lines.append(row(name, before["per_class"][name], after["per_class"].get(name, {})))
    for name in before.get("groups", {}):
        lines.append(row(f"**{name}**", before["groups"][name], after["groups"].get(name, {})))
    lines.append(row("**mean**", before.get("mean", {}), after.get("mean", {})))
    lines += ["", "Values in %. Calibrated on the split named in the rule: report the effect on a "
                  "held-out split (`iaseg evaluate --decision-rule`)."]
    return "\n".join(lines) + "\n"


def flip_thresholds(data: CalibrationData, offsets: torch.Tensor, k: int, max_pixels: int = 4_000_000
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """t_i = max_{j != k}(z_ij + b_j) - z_ik (pixel i is labelled k iff b_k > t_i) and the labels,
    for an evenly strided subset of at most `max_pixels` cached pixels (torch.quantile's limit is
    16 M)."""
    stride = max(1, math.ceil(data.num_pixels / max_pixels))
    b = torch.as_tensor(offsets, dtype=torch.float32, device=data.logits.device)
    z = data.logits[::stride].float() + b
    zk = z[:, k] - b[k]
    z[:, k] = -math.inf
    return (z.max(1).values - zk).cpu(), data.labels[::stride].long().cpu()


def tradeoff_curves(data: CalibrationData, offsets: torch.Tensor, classes: Sequence[int],
                    points: int = 121) -> dict[int, dict[str, torch.Tensor]]:
    """For each class k: candidate values of b_k (the others fixed) and the resulting recall and
    precision of k. The values are quantiles of the flip thresholds of the pixels labelled k (so
    recall moves evenly from 0 to 1) and of all pixels, plus the rule's own b_k: the curve
    covers the whole trade-off whatever the scale of the logits."""
    q = torch.linspace(0, 1, points, dtype=torch.float64)
    values = {}
    for k in classes:
        t, y = flip_thresholds(data, offsets, k)
        finite = torch.isfinite(t)
        t, y = t[finite].double(), y[finite]
        parts = [offsets[k].view(1).double()]
        for sample in (t, t[y == k]):
            if sample.numel():
                qs = torch.quantile(sample, q)
                pad = max(float(qs[-1] - qs[0]) * 0.02, 1e-6)  # just past both ends: recall 0 and 1
                parts.append(torch.cat([qs[:1] - pad, qs, qs[-1:] + pad]))
        values[k] = torch.unique(torch.cat(parts)).float()
    sweeps = sweep_confusions(data, offsets, classes, values)
    out = {}
    for k in classes:
        m = class_metrics(sweeps[k])
        out[k] = {"offset": values[k], "recall": m["recall"][:, k], "precision": m["precision"][:, k]}
    return out


def tradeoff_plot(data: CalibrationData, rule: DecisionRule, classes: Sequence[int], path: str | Path,
                  before: torch.Tensor | None = None, targets: Sequence[Target] = ()) -> Path:
    """PNG: per class, recall (x) vs precision (y) as its offset sweeps with the others at the
    rule; the rule's operating point (and plain argmax's, if `before` is given) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.lines
    import matplotlib.pyplot as plt

    from iaseg.io import atomic_write_bytes

    curves = tradeoff_curves(data, rule.offsets, classes)
    chosen = class_metrics(confusion_from_cache(data, rule.offsets))
    plain = class_metrics(before) if before is not None else None
    n = len(classes)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows + 0.4), squeeze=False)
    for ax, k in zip(axes.flat, classes):
        name = rule.class_names[k]
        cur = curves[k]
        ax.plot(cur["recall"].numpy(), cur["precision"].numpy(), "-", color="tab:blue", lw=1.5,
                label="sweep of b")
        ax.plot([float(chosen["recall"][k])], [float(chosen["precision"][k])], "o", color="tab:red",
                ms=7, label="rule")
        if plain is not None:
            ax.plot([float(plain["recall"][k])], [float(plain["precision"][k])], "x", color="black",
                    ms=7, label="argmax")
        for t in targets:
            if t.quantity.classes == (k,) and t.quantity.metric in ("recall", "precision"):
                draw = ax.axvline if t.quantity.metric == "recall" else ax.axhline
                draw(t.value, ls="--", color="gray", lw=1)
        ax.set_title(f"{name} (b = {float(rule.offsets[k]):+.2f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if any(t.quantity.classes in [(k,) for k in classes] for t in targets):
        handles.append(matplotlib.lines.Line2D([], [], ls="--", color="gray", lw=1))
        labels.append("target")
    fig.suptitle("recall vs precision as one class's offset sweeps (the others at the rule)", fontsize=10)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def compare_rules(reports: dict[str, dict[str, Any] | str | Path], groups: Sequence[str] | None = None) -> str:
    """Markdown table, one column per labelled report (report dicts or report.json paths from
    `iaseg evaluate`), e.g. {"CE": ..., "CE + rule": ..., "IAL": ..., "IAL + rule": ...}: mean
    and per-group precision / recall / IoU."""
    loaded = {}
    for label, rep in reports.items():
        if not isinstance(rep, dict):
            p = Path(rep)
            if p.is_dir():
                p = p / "report.json"
            try:
                rep = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise DecisionRuleError(f"report {p} cannot be read ({e})") from None
        loaded[label] = rep
    if not loaded:
        raise ValueError("compare_rules needs at least one report")
    first = next(iter(loaded.values()))
    groups = list(groups) if groups is not None else list(first.get("groups", {}))
    labels = list(loaded)
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for section, keys in [("mean", ["mean"])] + [(g, ["groups", g]) for g in groups]:
        for m in ("precision", "recall", "iou"):
            cells = []
            for rep in loaded.values():
                node: Any = rep
                for key in keys:
                    node = node.get(key, {}) if isinstance(node, dict) else {}
                cells.append(_pct(node.get(m) if isinstance(node, dict) else None))
            lines.append(f"| {section} {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(v: Any) -> str:
    return "undefined" if v is None or v != v else f"{float(v):.4f}"


def _pct(v: Any) -> str:
    return "-" if v is None or v != v else f"{100 * float(v):.1f}"


def _f(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def write_calibration_outputs(rule: DecisionRule, result: CalibrationResult, data: CalibrationData,
                              description: Any, out: str | Path) -> list[Path]:
    """RULE.json, RULE.md (before/after tables) and RULE.png (trade-off curves of the most
    important group's classes)."""
    from iaseg.io import atomic_write_bytes
    from iaseg.metrics import build_report

    out = Path(out)
    groups = {k: list(v) for k, v in description.groups.items()}
    classes = list(description.classes)
    before = build_report(result.before, classes, groups, meta={"decision_rule": None})
    after = build_report(result.after, classes, groups, meta={"decision_rule": rule.to_dict()})
    md = out.with_suffix(".md")
    png = out.with_suffix(".png")
    rule.save(out)
    atomic_write_bytes(md, before_after_markdown(before, after, rule, result).encode())
    top = [classes.index(c) for c in list(description.groups.values())[-1]]
    tradeoff_plot(data, rule, top, png, before=result.before, targets=result.targets)
    return [out, md, png]
