"""Has the model seen the calibration data? A rule calibrated on frames of a sequence the model
trained on is fitted to scores that are better than the model's scores on a new street (CamVid
val is a clip of the training sequence 0016E5; a val-calibrated rule promised -0.5 mean IoU and
cost 2.2-3.2 points on the unseen 0006R0). A checkpoint records its training data in its config
(`data.dataset`, `data.train_split`, `data.options` such as `exclude_sequences`), so listing that
split tells which images and CamVid sequences (the frame-name prefix, `0016E5_`) it trained on."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from iaseg.data.sequences import frame_key


def training_record(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """{'dataset', 'split', 'options'} of the data a checkpoint was trained on (from its config),
    or None when it records none (an exported file, a hand-made checkpoint)."""
    data = (ckpt.get("config") or {}).get("data") or {}
    if not data.get("dataset"):
        return None
    options = {k: v for k, v in dict(data.get("options") or {}).items() if k != "description"}
    return {"dataset": data["dataset"], "split": data.get("train_split") or "train", "options": options}


def validation_record(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """{'dataset', 'split', 'options'} of the data a checkpoint was validated on during training
    (val_options merged over options, as the trainer does): a leave-one-sequence-out model's
    left-out sequence, which cross-fitting calibrates on."""
    data = (ckpt.get("config") or {}).get("data") or {}
    if not data.get("dataset") or not data.get("val_split"):
        return None
    options = {**dict(data.get("options") or {}), **dict(data.get("val_options") or {})}
    options.pop("description", None)
    return {"dataset": data["dataset"], "split": data["val_split"], "options": options}


def split_names(dataset: str, root: Any, split: str, options: dict[str, Any]) -> list[str] | None:
    """The image file names of a split (listing only, no image read), or None for datasets that
    are not files on disk (synthetic) or a split that cannot be listed here."""
    from iaseg.data import build_dataset

    if dataset == "synthetic" or root is None:
        return None
    try:
        ds = build_dataset(dataset, root, split, **options)
    except (ValueError, OSError):
        return None
    pairs = getattr(ds, "pairs", None)
    if pairs is None:
        return None
    return [Path(str(getattr(p, "image", p))).name for p in pairs]


def sequences_of(names: Sequence[str]) -> set[str]:
    """The CamVid sequences among `names` (frames without the pattern have none)."""
    return {k[0] for k in (frame_key(n) for n in names) if k is not None}


def seen_data(calibration: Sequence[str], training: Sequence[str]) -> dict[str, Any]:
    """What the calibration images share with the training images: {'sequences': sorted shared
    sequence names, 'images': number of shared file names}."""
    shared = sorted(sequences_of(calibration) & sequences_of(training))
    images = len({Path(n).name for n in calibration} & {Path(n).name for n in training})
    return {"sequences": shared, "images": images}


def seen_data_text(seen: dict[str, Any], total: int) -> str | None:
    """'shares sequence 0016E5 (and 0 of its 101 images) with the training data', or None."""
    if not seen["sequences"] and not seen["images"]:
        return None
    parts = []
    if seen["sequences"]:
        s = "s" if len(seen["sequences"]) > 1 else ""
        parts.append(f"sequence{s} {', '.join(seen['sequences'])}")
    parts.append(f"{seen['images']} of its {total} images")
    return "shares " + " and ".join(parts) + " with the model's training data"


def same_split(calibration: dict[str, Any], training: dict[str, Any] | None) -> bool:
    """True when the calibration data is the training split itself (same dataset, split and
    sequence options): the check for datasets whose images cannot be listed."""
    if training is None or calibration.get("dataset") != training["dataset"]:
        return False
    keys = ("sequences", "exclude_sequences")
    picked = lambda o: {k: (o or {}).get(k) or None for k in keys}  # noqa: E731
    return calibration.get("split") == training["split"] and picked(calibration.get("options")) == \
        picked(training["options"])


def seen_by_model(ckpt: dict[str, Any], dataset: str, root: Any, split: str,
                  options: dict[str, Any]) -> tuple[bool, str | None]:
    """(checked, text): whether the checkpoint records its training data at all, and what the
    calibration data (`dataset` `split` under `root` with `options`) shares with it, as
    'DATASET SPLIT shares ...' or 'DATASET SPLIT is the model's training split' (None: unseen).
    Images are compared where both splits can be listed, the split and sequence options
    otherwise."""
    training = training_record(ckpt)
    if training is None:
        return False, None
    names = split_names(dataset, root, split, options)
    trained = split_names(training["dataset"], root, training["split"], training["options"]) \
        if training["dataset"] == dataset else []
    text = None
    if names is not None and trained is not None:
        text = seen_data_text(seen_data(names, trained), len(names))
    elif same_split({"dataset": dataset, "split": split, "options": options}, training):
        text = "is the model's training split"
    return True, None if text is None else f"{dataset} {split} {text}"
