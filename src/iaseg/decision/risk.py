"""Risk control for the monotone single-offset family: one offset lam added to the logits of
every class of a group (e.g. G3). The per-image loss is the group's miss rate on that image,

    L_i(lam) = 1 - (pixels of the group labelled as their own class) / (pixels of the group)

over the images with at least one pixel of the group. Adding lam to every logit of the group
never turns a pixel of the group labelled as its own class into a miss (its class stays the
best of the group and the group only gains), so L_i is non-increasing in lam, and:

- conformal risk control (Angelopoulos et al., ICLR 2024), `crc_offset`: the smallest lam of a
  grid with (n R_n(lam) + 1) / (n + 1) <= alpha gives E[L_new(lam)] <= alpha for a new image
  exchangeable with the n calibration images (the expectation is over calibration and new image);
- Learn-then-Test (Angelopoulos et al., AoAS 2025), `ltt_offset`: Hoeffding-Bentkus p-values of
  H_j: R(lam_j) > alpha, tested in a fixed sequence from the largest lam down, reject while
  p <= delta; the smallest rejected lam has R(lam) <= alpha with probability >= 1 - delta over
  the calibration draw, for i.i.d. images.

Neither holds when the new images are not exchangeable with the calibration images: frames of
one video are dependent, a new street is not a random draw of the calibration streets (see
docs/decision_rules.md). The losses are computed exactly as `DecisionRule.decide` labels pixels
(float32 sums, ties to the lower class id)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .cache import CalibrationData
from .rule import DecisionRuleError

DEFAULT_GRID = tuple(round(0.02 * i, 2) for i in range(0, 401))  # 0 .. 8 logits


def miss_losses(data: CalibrationData, members: Sequence[int], grid: Sequence[float] = DEFAULT_GRID
                ) -> tuple[np.ndarray, np.ndarray]:
    """(losses, images): losses[i, j] the miss rate of the group `members` on calibration image
    images[i] (those with pixels of the group) with offset grid[j] on the group's logits."""
    if data.images is None or data.names is None:
        raise DecisionRuleError("the calibration cache records no images (made by an older iaseg): recompute it")
    c, n = data.num_classes, len(data.names)
    inside = torch.zeros(c, dtype=torch.bool)
    inside[list(members)] = True
    lam = torch.tensor(list(grid), dtype=torch.float32)
    if lam.numel() == 0 or bool((lam[1:] <= lam[:-1]).any()):
        raise ValueError("the offset grid must be increasing")
    gt = torch.zeros(n, dtype=torch.float64)
    hits = torch.zeros(n, lam.numel(), dtype=torch.float64)
    step = max(1, data.CHUNK_ELEMENTS // max(1, c))
    for s in range(0, data.num_pixels, step):
        y = data.labels[s:s + step].long().cpu()
        keep = inside[y]
        if not bool(keep.any()):
            continue
        z = data.logits[s:s + step][keep.to(data.logits.device)].float().cpu()
        y, img = y[keep], data.images[s:s + step][keep.to(data.images.device)].long().cpu()
        neg = torch.tensor(-math.inf)
        m_in, a_in = torch.where(inside, z, neg).max(1)
        m_out, a_out = torch.where(inside, neg, z).max(1)
        own = a_in == y  # the only way a pixel of the group is labelled right: its class wins the group
        gt += torch.bincount(img, minlength=n).double()
        for j in range(lam.numel()):
            shifted = m_in + lam[j]  # float32, as logits + b in DecisionRule.decide
            wins = (shifted > m_out) | ((shifted == m_out) & (a_in < a_out))
            hits[:, j] += torch.bincount(img[wins & own], minlength=n).double()
    present = gt > 0
    losses = 1.0 - hits[present] / gt[present, None]
    return losses.numpy(), torch.nonzero(present).flatten().numpy()


def crc_offset(losses: np.ndarray, grid: Sequence[float], alpha: float) -> float | None:
    """Conformal risk control: the smallest grid offset from which on every larger one has
    (n * mean loss + 1) / (n + 1) <= alpha (losses in [0, 1]); None when even the largest has not."""
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.shape[0]
    bound = (n * losses.mean(0) + 1.0) / (n + 1)
    return _smallest_valid(bound <= alpha, grid)


def _smallest_valid(valid: np.ndarray, grid: Sequence[float]) -> float | None:
    """The smallest grid value such that it and every larger value are valid."""
    if not bool(valid[-1]):
        return None
    bad = np.nonzero(~valid)[0]
    return float(grid[int(bad[-1]) + 1 if bad.size else 0])


def _log_binom_cdf(k: int, n: int, p: float) -> float:
    """log P(Binomial(n, p) <= k), summed in log space."""
    if k >= n:
        return 0.0
    if k < 0:
        return -math.inf
    ks = np.arange(0, k + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma)
    logpmf = (math.lgamma(n + 1) - lg(ks + 1) - lg(n - ks + 1) + ks * math.log(p) + (n - ks) * math.log1p(-p))
    top = logpmf.max()
    return float(top + math.log(np.exp(logpmf - top).sum()))


def hb_p_value(risk: float, n: int, alpha: float) -> float:
    """Hoeffding-Bentkus p-value of H: true risk > alpha, given the mean `risk` of n losses in
    [0, 1] (LTT, section 3.2): min(exp(-n h(min(risk, alpha), alpha)), e P(Bin(n, alpha) <= ceil(n risk)))."""
    r = min(risk, alpha)

    def h(a: float, b: float) -> float:
        left = a * math.log(a / b) if a > 0 else 0.0
        right = (1 - a) * math.log((1 - a) / (1 - b)) if a < 1 else 0.0
        return left + right

    hoeffding = math.exp(-n * h(r, alpha))
    bentkus = math.e * math.exp(_log_binom_cdf(math.ceil(n * risk - 1e-12), n, alpha))
    return min(hoeffding, bentkus, 1.0)


def ltt_offset(losses: np.ndarray, grid: Sequence[float], alpha: float, delta: float) -> float | None:
    """Learn-then-Test with fixed-sequence testing from the largest offset down: the smallest
    offset whose hypothesis, and every larger one's, is rejected at level delta; None if none."""
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.shape[0]
    risks = losses.mean(0)
    chosen = None
    for j in range(len(grid) - 1, -1, -1):
        if hb_p_value(float(risks[j]), n, alpha) > delta:
            break
        chosen = float(grid[j])
    return chosen


@dataclass(frozen=True)
class RiskControl:
    """The offset chosen and what it guarantees, under which assumption."""
    offset: float | None
    method: str              # 'crc' | 'ltt'
    alpha: float
    delta: float | None
    images: int
    sequences: int
    empirical_risk: float | None   # mean calibration loss at the offset

    def statement(self, group: str) -> str:
        if self.offset is None:
            return (f"no offset up to the grid's end gives an expected per-image {group} miss rate <= {self.alpha:g} "
                    f"on these {self.images} images")
        conf = f" with probability >= {1 - self.delta:g}" if self.delta is not None else ""
        seq = (f"; the {self.images} images come from {self.sequences} sequence(s): frames of a video are not "
               "exchangeable and a new street is not a draw of these, so on video the guarantee is not proven")
        return (f"expected per-image {group} miss rate <= {self.alpha:g}{conf} for new images exchangeable with the "
                f"{self.images} calibration images ({'conformal risk control' if self.method == 'crc' else 'Learn-then-Test'}, "
                f"offset {self.offset:+.2f} on {group}; calibration miss rate {self.empirical_risk:.3f}){seq}")

    def to_dict(self, group: str) -> dict[str, Any]:
        return {"method": self.method, "group": group, "alpha": self.alpha, "delta": self.delta,
                "offset": self.offset, "images": self.images, "sequences": self.sequences,
                "empirical_risk": self.empirical_risk, "statement": self.statement(group),
                "assumption": "new images exchangeable with the calibration images (i.i.d. for Learn-then-Test)"}


def control_miss_rate(data: CalibrationData, members: Sequence[int], alpha: float, delta: float | None = None,
                      grid: Sequence[float] = DEFAULT_GRID) -> RiskControl:
    """The smallest group offset with expected per-image miss rate <= alpha (CRC), or <= alpha
    with probability >= 1 - delta (LTT) when `delta` is given."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha:g} outside (0, 1)")
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f"delta {delta:g} outside (0, 1)")
    losses, present = miss_losses(data, members, grid)
    if losses.shape[0] == 0:
        raise DecisionRuleError("no calibration image has pixels of the group: no risk to control")
    offset = crc_offset(losses, grid, alpha) if delta is None else ltt_offset(losses, grid, alpha, delta)
    from .promise import sequence_count

    risk = None if offset is None else float(losses[:, list(grid).index(offset)].mean())
    return RiskControl(offset, "crc" if delta is None else "ltt", alpha, delta, int(losses.shape[0]),
                       sequence_count([data.names[i] for i in present]), risk)
