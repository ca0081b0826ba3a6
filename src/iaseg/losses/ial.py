"""The importance-aware loss (IAL) of Xiang, Wang and Yang (ITSC 2019), for any K >= 2 groups.

With groups G_1..G_K ordered from least to most important and g(u) the group rank of pixel u,
over the N labelled pixels of the batch:

    I_k = sum_{g(u)=k} w_{y_u} l_u                          (weighted CE of group k)
    F_s = c * sum_{g(u)>=s} (m_u + lam) (p_u - m_u)^2 / #{g(u)>=s},   m_u = 1[g(u) >= s+1]
    L   = [ I_1 + (F_1 + alpha) I_2 + (F_1 + alpha)(F_2 + alpha) I_3 + ... ] / N

p_u is the softmax probability of the ground-truth class. For K = 3 this is exactly the authors'
`trainial.py` (spec section 3.2) with preset "authors_code" (alpha = 2, c = 1/2) and paper eq. 4/5
with preset "paper" (alpha = 1, c = 1).
"""
from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import nn

from ._common import as_weight_tensor, check_inputs, clipped_nll, gt_log_prob

# preset -> (alpha, c): the offset added to each dynamic weight and the scale of F_s.
PRESETS: dict[str, tuple[float, float]] = {
    "paper": (1.0, 1.0),          # eq. 4 and 5 as printed
    "authors_code": (2.0, 0.5),   # `f1+2`, `f2+2` and the /(2*MASK) of trainial.py
}


def validate_groups(groups: Sequence[Sequence[int]], num_classes: int | None, owner: str = "ImportanceAwareLoss"
                    ) -> tuple[list[list[int]], int]:
    """Check that `groups` partitions the classes 0..C-1 into K >= 2 non-empty ranks.
    Returns (groups as lists of ints, C); C is inferred from the groups when not given."""
    if isinstance(groups, (str, bytes, dict)) or not hasattr(groups, "__iter__"):
        raise ValueError(f"{owner}: groups must be a list of lists of class indices, least to most "
                         f"important (e.g. DatasetDescription.group_indices()), got {groups!r}")
    out: list[list[int]] = []
    where: dict[int, int] = {}
    for k, members in enumerate(groups, start=1):
        if isinstance(members, (str, bytes)) or not hasattr(members, "__iter__"):
            raise ValueError(f"{owner}: group G{k} must be a list of class indices, got {members!r}")
        ids = []
        for m in members:
            try:
                if isinstance(m, bool):
                    raise TypeError
                c = operator.index(m)
            except TypeError:
                raise ValueError(f"{owner}: group G{k} contains {m!r}, not a class index (use "
                                 "DatasetDescription.group_indices() to turn class names into indices)") from None
            if c < 0 or (num_classes is not None and c >= num_classes):
                bound = f"[0, {num_classes})" if num_classes is not None else "[0, C)"
                raise ValueError(f"{owner}: class index {c} in group G{k} is out of range {bound}")
            if c in where:
                raise ValueError(f"{owner}: class {c} is in two groups (G{where[c]} and G{k})"
                                 if where[c] != k else f"{owner}: class {c} is listed twice in group G{k}")
            where[c] = k
            ids.append(c)
        if not ids:
            raise ValueError(f"{owner}: group G{k} is empty")
        out.append(ids)
    if len(out) < 2:
        raise ValueError(f"{owner}: needs at least two groups (least to most important), got {len(out)}")
    c_total = num_classes if num_classes is not None else max(where) + 1
    missing = [c for c in range(c_total) if c not in where]
    if missing:
        raise ValueError(f"{owner}: classes {missing} are in no group; every class needs a group")
    return out, c_total


class ImportanceAwareLoss(nn.Module):
    """Importance-aware loss; see the module docstring for the formula.

    Args:
        class_weights: w_c per class (list or tensor, length C); None means all ones.
        groups: lists of class indices, least to most important (K >= 2), e.g.
            `DatasetDescription.group_indices()`.
        ignore_index: label of void pixels, excluded everywhere.
        preset: "paper" (alpha=1, c=1) or "authors_code" (alpha=2, c=1/2).
        detach_dynamic_weights: stop gradients through F_s (the authors let them flow).
        lam: lambda of eq. 4 (0.5 in the paper and the code).
        alpha: overrides the preset's offset.

    After each forward, `last_dynamic_weights` holds F_1..F_{K-1} of that batch (detached).
    """

    def __init__(self, class_weights: Sequence[float] | torch.Tensor | None, groups: Sequence[Sequence[int]],
                 ignore_index: int = 255, preset: str = "paper", detach_dynamic_weights: bool = False,
                 lam: float = 0.5, alpha: float | None = None):
        super().__init__()
        owner = type(self).__name__
        w = as_weight_tensor(class_weights, owner)
        groups, num_classes = validate_groups(groups, None if w is None else w.numel(), owner)
        if preset not in PRESETS:
            raise ValueError(f"{owner}: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset_alpha, scale = PRESETS[preset]
        alpha = preset_alpha if alpha is None else float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"{owner}: alpha must be finite, got {alpha}")
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"{owner}: lam must be finite and >= 0, got {lam}")
        self.groups = groups
        self.num_groups = len(groups)
        self.num_classes = num_classes
        self.ignore_index = int(ignore_index)
        self.preset = preset
        self.alpha = alpha
        self.scale = scale
        self.lam = float(lam)
        self.detach_dynamic_weights = bool(detach_dynamic_weights)
        if w is None:
            w = torch.ones(num_classes)
        # Lookup tables indexed by class id, with one extra slot (index C) for void pixels.
        rank = torch.empty(num_classes + 1, dtype=torch.long)
        for k, members in enumerate(groups):
            rank[members] = k
        rank[num_classes] = self.num_groups  # void: in no rank
        self.register_buffer("class_weights", w, persistent=False)
        self.register_buffer("class_rank", rank, persistent=False)
        self.last_dynamic_weights: torch.Tensor | None = None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(type(self).__name__, logits, target, self.num_classes, self.ignore_index)
        logp, valid, safe = gt_log_prob(logits, target, self.ignore_index)
        dtype, k_groups = logp.dtype, self.num_groups
        rank = self.class_rank.to(safe.device)[torch.where(valid, safe, self.num_classes)]
        w = self.class_weights.to(device=safe.device, dtype=dtype)[safe]
        p = logp.exp()
        pf = p.detach() if self.detach_dynamic_weights else p
        # Per pixel: weighted CE, p^2 (rank just below a boundary) and (1-p)^2 (at or above it).
        per_pixel = torch.stack([w * clipped_nll(logp), pf * pf, (1 - pf) ** 2])
        sums, counts = [], []
        for k in range(k_groups):  # K masked reductions; deterministic, no atomics
            in_k = rank == k
            sums.append(torch.where(in_k, per_pixel, 0).sum(dim=1))
            counts.append(in_k.sum())
        sums_k = torch.stack(sums, dim=1)                 # 3 x K
        n_k = torch.stack(counts).to(dtype)               # K
        group_ce, sq_p, sq_1mp = sums_k[0], sums_k[1], sums_k[2]
        # Boundary s (1..K-1): pixels of rank s-1 have m=0, ranks >= s have m=1.
        above = sq_1mp.flip(0).cumsum(0).flip(0)[1:]      # sum over ranks >= s of (1-p)^2
        count = n_k.flip(0).cumsum(0).flip(0)[:-1]        # pixels of rank >= s-1
        num = self.lam * sq_p[:-1] + (1 + self.lam) * above
        dyn = self.scale * num / count.clamp(min=1)       # empty set: num is exactly 0, so F = 0
        self.last_dynamic_weights = dyn.detach()
        factors = torch.cumprod(torch.cat([dyn.new_ones(1), dyn + self.alpha]), dim=0)
        n = n_k.sum().clamp(min=1)                        # all-void batch: loss 0, zero gradients
        return (factors * group_ce).sum() / n

    def extra_repr(self) -> str:
        return (f"groups={self.groups}, ignore_index={self.ignore_index}, preset={self.preset!r}, "
                f"alpha={self.alpha}, scale={self.scale}, lam={self.lam}, "
                f"detach_dynamic_weights={self.detach_dynamic_weights}")
