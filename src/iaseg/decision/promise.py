"""A rule's promise: what it is expected to do on new data, as intervals, and the check of a
promise against what a rule did on labelled data (`iaseg evaluate --decision-rule`).

The calibration data's per-image confusion matrices, plain and with the rule, are resampled by a
block bootstrap: frames of a video are not independent, so blocks of `block_len` consecutive
frames (never crossing a sequence, `sequence_blocks`) are drawn with replacement, within
sequences drawn with replacement when there are several. Two intervals come out:

    expected       the effect pooled over data like the calibration data (as many sequences
                   drawn as there are): where the average effect lies
    new_sequence   the effect on ONE new sequence (one sequence drawn, then its blocks): the
                   interval a user running the rule on a new street should expect to land in

Each states the mean IoU cost (plain minus rule, in points: positive = the rule costs), the
group's recall with the rule, and its gain. With one calibration sequence the between-sequence
spread is unknown and both intervals only reflect frame-to-frame variation: too narrow for a new
street, which the summary says. Ratios are scored as the reports score them (`Quantity.value`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from iaseg.data.sequences import frame_key
from iaseg.metrics.per_image import sequence_blocks

from .targets import parse_objective

DEFAULT_BLOCK_LEN = 10
DEFAULT_CONFIDENCE = 0.9
KEYS = ("miou_cost", "group_recall", "group_recall_gain")


def _interval(estimate: float, samples: np.ndarray, confidence: float) -> dict[str, float]:
    low, high = np.nanquantile(samples, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def rule_promise(plain: np.ndarray, ruled: np.ndarray, names: Sequence[str], description: Any, group: str,
                 block_len: int = DEFAULT_BLOCK_LEN, n_boot: int = 2000, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = 0, in_sample: bool = False) -> dict[str, Any]:
    """The promise of a rule from per-image confusion matrices of the calibration images without
    (`plain`) and with (`ruled`) it, (n, C, C) each, `names` the images (CamVid names give the
    sequences). Values in points (percent). Deterministic for a `seed`."""
    plain, ruled = np.asarray(plain, dtype=np.float64), np.asarray(ruled, dtype=np.float64)
    if plain.shape != ruled.shape or plain.ndim != 3 or plain.shape[0] != len(names) or not len(names):
        raise ValueError(f"promise: per-image matrices {plain.shape} / {ruled.shape} for {len(names)} images")
    if not 0 < confidence < 1 or int(n_boot) < 1:
        raise ValueError("promise: confidence in (0, 1) and n_boot >= 1")
    miou = parse_objective("miou", description)
    recall = parse_objective(f"{group}.recall", description)
    blocks = sequence_blocks(names, block_len)
    seq_of_block = [(frame_key(names[int(b[0])]) or (None,))[0] for b in blocks]
    sequences = sorted({s for s in seq_of_block}, key=lambda s: (s is None, s or ""))
    by_seq = [np.array([i for i, s in enumerate(seq_of_block) if s == q]) for q in sequences]
    bp = np.stack([plain[b].sum(0) for b in blocks])
    br = np.stack([ruled[b].sum(0) for b in blocks])

    def score(wp: np.ndarray) -> dict[str, np.ndarray]:
        cp = torch.as_tensor(np.tensordot(wp, bp, axes=1))
        cr = torch.as_tensor(np.tensordot(wp, br, axes=1))
        before, after = recall.value(cp).numpy(), recall.value(cr).numpy()
        return {"miou_cost": 100 * (miou.value(cp).numpy() - miou.value(cr).numpy()),
                "group_recall": 100 * after, "group_recall_gain": 100 * (after - before)}

    estimate = {k: float(v[0]) for k, v in score(np.ones((1, len(blocks)))).items()}
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for kind, draws in (("expected", len(sequences)), ("new_sequence", 1)):
        weights = np.zeros((int(n_boot), len(blocks)))
        for r in range(int(n_boot)):
            for q in rng.integers(0, len(sequences), size=draws):
                own = by_seq[q]
                np.add.at(weights[r], own[rng.integers(0, len(own), size=len(own))], 1.0)
        samples = score(weights)
        out[kind] = {k: _interval(estimate[k], samples[k], confidence) for k in KEYS}
    meta = {"group": group, "confidence": confidence, "images": len(names), "blocks": len(blocks),
            "block_len": int(block_len), "sequences": [s for s in sequences if s is not None] or None,
            "n_boot": int(n_boot), "seed": seed, "in_sample": bool(in_sample),
            "method": "block bootstrap of the calibration images (blocks of consecutive frames within sequences "
                      "drawn with replacement; new_sequence: one sequence drawn)"}
    summary = summary_text({**out, **meta})
    return {**meta, **out, "summary": summary}


def _fmt(iv: dict[str, float], sign: bool = False) -> str:
    f = "{:+.1f}" if sign else "{:.1f}"
    return f"{f.format(iv['estimate'])} [{f.format(iv['low'])}, {f.format(iv['high'])}]"


def summary_text(p: dict[str, Any]) -> str:
    """One line: the new-sequence intervals, with how they were obtained and their caveat."""
    new = p["new_sequence"]
    n_seq = len(p["sequences"] or []) or 1
    caveat = ""
    if p.get("in_sample"):
        caveat = "; IN-SAMPLE: calibrated on data the model trained on, optimistic"
    elif n_seq < 2:
        caveat = "; one calibration sequence: the spread between streets is unknown, a new street may fall outside"
    return (f"on a new sequence, mean IoU cost {_fmt(new['miou_cost'])} points, {p['group']} recall "
            f"{_fmt(new['group_recall'])} ({_fmt(new['group_recall_gain'], True)}) "
            f"({round(100 * p['confidence'])}% block bootstrap over {p['images']} images, {n_seq} sequence(s)"
            f"{caveat})")


def check_promise(promise: dict[str, Any], plain_cm: Any, rule_cm: Any, description: Any) -> tuple[dict[str, Any], list[str]]:
    """Realised vs promised on labelled data: the realised mean IoU cost, group recall and gain
    (points) of the rule against the promise's `new_sequence` intervals. The promise is broken
    when the cost or the gain (the rule's effect) falls outside; a recall level outside is shown
    but depends on the street as much as on the rule. Returns ({key: {'realised', 'low',
    'high', 'kept'}, 'broken': bool}, console lines)."""
    group = promise["group"]
    miou = parse_objective("miou", description)
    recall = parse_objective(f"{group}.recall", description)
    cp, cr = torch.as_tensor(np.asarray(plain_cm, dtype=np.float64)), torch.as_tensor(np.asarray(rule_cm, dtype=np.float64))
    realised = {"miou_cost": 100 * float(miou.value(cp) - miou.value(cr)),
                "group_recall": 100 * float(recall.value(cr)),
                "group_recall_gain": 100 * float(recall.value(cr) - recall.value(cp))}
    labels = {"miou_cost": "mean IoU cost", "group_recall": f"{group} recall", "group_recall_gain": f"{group} recall gain"}
    out: dict[str, Any] = {}
    parts = []
    for k in KEYS:
        iv = promise["new_sequence"][k]
        kept = bool(iv["low"] - 1e-9 <= realised[k] <= iv["high"] + 1e-9)
        out[k] = {"realised": realised[k], "low": iv["low"], "high": iv["high"], "kept": kept}
        parts.append(f"{labels[k]} {realised[k]:.1f} (promised [{iv['low']:.1f}, {iv['high']:.1f}]"
                     f"{'' if kept else ', OUTSIDE'})")
    # the rule's effect decides; the recall level also depends on how hard the new street is
    out["broken"] = not (out["miou_cost"]["kept"] and out["group_recall_gain"]["kept"])
    verdict = "PROMISE BROKEN" if out["broken"] else "promise kept"
    return out, [f"{verdict}: realised vs promised on a new sequence: " + ", ".join(parts)]


def promise_group(description: Any, targets: Sequence[Any], objective: Any) -> str:
    """The group a promise speaks of: the one the rule's single offset would move (the
    objective's or first target's group), else the description's most important group."""
    from .families import family_group

    classes = set(family_group(description, targets, objective))
    for name, ids in zip(description.group_names, description.group_indices()):
        if set(ids) == classes:
            return name
    return description.group_names[-1]


def promise_of_fit(data: Any, result: Any, description: Any, targets: Sequence[Any], objective: Any,
                   in_sample: bool = False, **kw: Any) -> dict[str, Any]:
    """`rule_promise` of a calibration result on its (cached) calibration data."""
    from .cache import per_image_confusions

    plain = per_image_confusions(data).numpy()
    ruled = per_image_confusions(data, result.offsets).numpy()
    return rule_promise(plain, ruled, data.names, description, promise_group(description, targets, objective),
                        in_sample=in_sample, **kw)


def sequence_count(names: Sequence[str]) -> int:
    """How many sequences `names` come from (names without the CamVid pattern count as one)."""
    return len({(frame_key(n) or (None,))[0] for n in names})
