"""Accuracy-checked int8 IRs beside a checkpoint: how load_runner makes int8 its default.

int8 cannot be the default for a bare checkpoint: it needs calibration images, and whether it
keeps the accuracy can only be known on labelled images. `iaseg export --format openvino --int8`
with labelled validation images runs the accuracy guard (mean IoU and top-group recall against
fp32) and records the result, with the SHA-256 of the checkpoint's weights, in the IR's metadata.
Written beside the checkpoint as STEM.int8*.xml, for example

    iaseg export --checkpoint weights/ce.pt --out weights/ce.int8-360x720.xml --size 360x720 --int8 \\
        --calib-root data/camvid --calib-dataset camvid --val-root data/camvid --val-dataset camvid

such an IR becomes what `load_runner("weights/ce.pt")` runs at that size on a CPU with OpenVINO:
only when its guard passed, it was made from these very weights, it bakes in no decision rule
and its input size is the one asked for. runner.describe() names the file and its figures; any
explicit backend or precision other than 'auto'/'int8' bypasses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from iaseg.metadata import ModelMetadata

from .integrity import weights_digest


def checkpoint_weights_digest(model: nn.Module) -> str:
    """SHA-256 of a network's state (float tensors as float32, by name): what a checked int8 IR
    records of the checkpoint it was made from."""
    state = model.state_dict()
    return weights_digest((k, (v.float() if v.is_floating_point() else v).detach().cpu().numpy())
                          for k, v in sorted(state.items()))


def is_candidate(checkpoint: str | Path, path: str | Path) -> bool:
    """Whether `path` is named as a checked int8 IR of `checkpoint`: STEM.int8*.xml beside it."""
    ckpt, path = Path(checkpoint), Path(path)
    return (path.parent.resolve() == ckpt.parent.resolve() and path.name.startswith(f"{ckpt.stem}.int8")
            and path.suffix == ".xml")


def candidate_paths(checkpoint: str | Path) -> list[Path]:
    """The IR files that may hold a checked int8 model of `checkpoint` (is_candidate)."""
    path = Path(checkpoint)
    return sorted(p for p in path.parent.glob(f"{path.stem}.int8*.xml") if p.is_file() and is_candidate(path, p))


def accuracy_record(guard: dict[str, Any], data: str, checkpoint_digest: str) -> dict[str, Any]:
    """What an int8 IR's metadata keeps of its accuracy guard (accuracy_guard's result)."""
    return {"passed": bool(guard["passed"]), "data": data, "images": int(guard.get("images", 0)),
            "top_group": guard["top_group"], "miou_change": float(guard["miou_change"]),
            "top_group_recall_change": float(guard["top_group_recall_change"]),
            "reference": guard["reference"], "candidate": guard["candidate"],
            "checkpoint_weights": checkpoint_digest}


def describe_record(record: dict[str, Any]) -> str:
    """'mean IoU +0.38, G3 recall -0.17 points vs fp32 on 101 images of camvid val'."""
    return (f"mean IoU {record['miou_change']:+.2f}, {record['top_group']} recall "
            f"{record['top_group_recall_change']:+.2f} points vs fp32 on {record['images']} images of {record['data']}")


def _mismatch(meta: ModelMetadata, model_name: str, digest: str, sizes: tuple) -> str | None:
    """Why an IR's metadata does not qualify, or None."""
    record = meta.accuracy_check
    if meta.precision != "int8":
        return "not int8"
    if not record:
        return "no accuracy check recorded (export it with labelled --val-root)"
    if not record.get("passed"):
        return "its accuracy check failed"
    if record.get("checkpoint_weights") != digest:
        return "made from other weights"
    if meta.model_name != model_name:
        return f"a {meta.model_name}, not {model_name}"
    if meta.decision_rule is not None:
        return "it bakes in a decision rule"
    have = (meta.input_size, meta.spatial_size)[: len(sizes)]
    if tuple(tuple(s) if s else None for s in have) != sizes:
        return "size " + " + ".join("x".join(map(str, s)) for s in have if s)
    return None


def default_int8_ir(source: Any, model: nn.Module, meta: ModelMetadata, precision: str, device: Any,
                    torch_options: bool, calibration: Any) -> tuple[Path | None, str]:
    """find_checked_int8 where load_runner looks for one: a checkpoint file, the CPU, OpenVINO
    installed, precision 'auto' or 'int8', no calibration or PyTorch-only option; else (None, '')."""
    from .openvino import openvino_available

    if (not isinstance(source, (str, Path)) or torch.device(device).type != "cpu" or torch_options
            or precision not in ("auto", "int8") or calibration is not None or not openvino_available()):
        return None, ""
    return find_checked_int8(source, model, meta)


def find_checked_int8(checkpoint: str | Path, model: nn.Module, meta: ModelMetadata) -> tuple[Path | None, str]:
    """(the checked int8 IR beside `checkpoint` that fits `model` at meta's input size(s), or
    None; a note naming the file chosen, or why each candidate was passed over, '' if none)."""
    from .openvino import read_openvino_metadata

    paths = candidate_paths(checkpoint)
    if not paths:
        return None, ""
    digest = checkpoint_weights_digest(model)
    sizes = tuple(tuple(s) for s in (meta.input_size, meta.spatial_size)[: meta.num_inputs])
    skipped = []
    for path in paths:
        try:
            why = _mismatch(read_openvino_metadata(path), meta.model_name, digest, sizes)
        except (OSError, ValueError) as e:
            why = str(e).splitlines()[0]
        if why is None:
            return path, path.name
        skipped.append(f"{path.name}: {why}")
    return None, "; ".join(skipped)
