"""Frames of video sequences: CamVid names a frame `<sequence>_<frame>.png` (0016E5_07959.png,
Seq05VD_f00030.png). Knowing the sequence lets a split leave one out (a sequence-level check of
generalisation) and lets statistics resample blocks of consecutive frames."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

# sequence, underscore, optional letters, frame number; nothing after the number but an extension
_FRAME = re.compile(r"^(?P<sequence>[^_]+)_[A-Za-z]*(?P<frame>\d+)(\.[A-Za-z0-9]+)?$")


def frame_key(name: str | Path) -> tuple[str, int] | None:
    """(sequence, frame number) of a CamVid-style frame name ('0016E5_07959.png' ->
    ('0016E5', 7959)), or None when the name does not follow that pattern."""
    match = _FRAME.match(Path(name).name)
    return (match["sequence"], int(match["frame"])) if match else None


def _names(value: Any, option: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{option} must be a list of sequence names such as [0006R0], got {value!r}")
    return tuple(value)


def select_sequences(paths: Sequence[Any], sequences: Any = None, exclude_sequences: Any = None,
                     key: Any = lambda p: p) -> tuple[list[Any], list[str]]:
    """Keep the items whose frame belongs to `sequences` (all when None) and not to
    `exclude_sequences`. Returns (kept, problems): a named sequence with no frame is a problem
    (a typo must not silently train on everything or evaluate on nothing)."""
    keep, drop = _names(sequences, "sequences"), _names(exclude_sequences, "exclude_sequences")
    if not keep and not drop:
        return list(paths), []
    seen: set[str] = set()
    kept = []
    for p in paths:
        k = frame_key(key(p))
        seq = k[0] if k else None
        if seq is not None:
            seen.add(seq)
        if (keep and seq not in keep) or (seq is not None and seq in drop):
            continue
        kept.append(p)
    problems = [f"sequence {s!r} named in {opt} has no frame in this split (sequences: {', '.join(sorted(seen)) or 'none'})"
                for opt, names in (("sequences", keep), ("exclude_sequences", drop)) for s in names if s not in seen]
    return kept, problems
