"""Checkpoints: plain dicts of tensors and containers, written atomically, loadable with
`torch.load(weights_only=True)`.

Keys every checkpoint has (what inference needs):
    model          state_dict (float32, or float16 for shipped weights)
    model_name     'erfpspnet' | 'bierfpspnet'
    model_options  dict of build_model options (bins, init, final_relu, ...)
    description    dataset description dict (classes, palette, ignore_index, groups, ...)
    input_size     [H, W] the model was trained at (context size for BiERF-PSPNet)
    spatial_size   [H1, W1] for BiERF-PSPNet, else None
Training checkpoints add: optimizer, scheduler, scaler, epoch, rng, config, classes, groups,
best_metric, metrics.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from iaseg.data.description import DatasetDescription
from iaseg.data.errors import DescriptionError
from iaseg.io import atomic_write_bytes
from iaseg.metadata import ModelMetadata
from iaseg.models import build_model


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or not an iaseg checkpoint; the message names it."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Serialise `state` in memory, then write it atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, pickle with objects, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_name" not in ckpt:
        raise CheckpointError(f"{path} is not an iaseg checkpoint (no 'model'/'model_name' keys)")
    return ckpt


def checkpoint_description(ckpt: dict[str, Any], source: str = "checkpoint") -> DatasetDescription:
    """The checkpoint's dataset description; a CheckpointError naming `source` when it is
    missing or malformed."""
    if not isinstance(ckpt.get("description"), dict):
        raise CheckpointError(f"checkpoint {source} has no dataset description")
    try:
        return DatasetDescription.from_dict(ckpt["description"], source=f"checkpoint {source}")
    except DescriptionError as e:
        raise CheckpointError(str(e)) from None


def checkpoint_classes(state: dict[str, Any], model: nn.Module, num_classes: int) -> int | None:
    """The class count a state_dict was trained for, read from the first tensor whose leading
    size is the class count in `model` (its output layer) and differs in `state`; None if
    no such tensor."""
    for key, own in model.state_dict().items():
        theirs = state.get(key)
        if (isinstance(theirs, torch.Tensor) and own.ndim and theirs.ndim == own.ndim
                and own.shape[0] == num_classes and theirs.shape[0] != num_classes
                and own.shape[1:] == theirs.shape[1:]):
            return int(theirs.shape[0])
    return None


def load_model_state(model: nn.Module, state: Any, num_classes: int, source: str) -> None:
    """model.load_state_dict(state), with a one-line CheckpointError naming `source` instead
    of PyTorch's many-line report: the expected and found class counts when the weights are for
    another number of classes (resuming or evaluating with another dataset description), else
    the first keys that do not fit."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {source}: 'model' is not a state_dict of tensors")
    found = checkpoint_classes(state, model, num_classes)
    if found is not None:
        raise CheckpointError(f"checkpoint {source} holds weights for {found} classes, expected {num_classes} "
                              "(use the dataset description the checkpoint was trained with)")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{label} {keys[:3]}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", shapes))
                 if keys]
        raise CheckpointError(f"checkpoint {source}: its weights do not fit the {type(model).__name__} network "
                              f"({'; '.join(parts)})")
    model.load_state_dict(state)


def nonfinite_entries(state: dict[str, Any]) -> list[str]:
    """Names of the float tensors of a (nested) state dict that hold NaN or inf."""
    bad: list[str] = []

    def walk(node: Any, name: str) -> None:
        if isinstance(node, torch.Tensor):
            if node.is_floating_point() and not bool(torch.isfinite(node).all()):
                bad.append(name)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{name}.{k}" if name else str(k))

    walk(state, "")
    return bad


def checkpoint_size(ckpt: dict[str, Any], key: str, source: str) -> tuple[int, int] | None:
    """ckpt[key] ('input_size', 'spatial_size') as (H, W) of positive ints, None when absent;
    a CheckpointError naming `source` when it is anything else."""
    value = ckpt.get(key)
    if value is None:
        return None
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return int(value[0]), int(value[1])
    raise CheckpointError(f"checkpoint {source}: {key} {value!r} is not [height, width] of positive integers")


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, device: str | torch.device = "cpu",
                          source: str | Path | None = None) -> tuple[nn.Module, ModelMetadata]:
    """Rebuild the network of a checkpoint (a path or a dict from `load_checkpoint`) in eval
    mode, float32, and return it with its ModelMetadata (name, options, description, input
    size: the checkpoint's, else the description's native size; spatial size). `source` names
    a dict's file in errors (a path names itself)."""
    if not isinstance(ckpt, dict):
        source = ckpt if source is None else source
        ckpt = load_checkpoint(ckpt, map_location="cpu")
    where = str(source) if source is not None else "(in memory)"
    desc = checkpoint_description(ckpt, where)
    options = dict(ckpt.get("model_options") or {})
    try:
        model = build_model(ckpt["model_name"], desc.num_classes, **options)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {where}: cannot build its network {ckpt['model_name']!r} "
                              f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})"
                              ) from None
    state = ckpt["model"]
    if isinstance(state, dict):
        state = {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
                 for k, v in state.items()}
    bad = nonfinite_entries(state) if isinstance(state, dict) else []
    if bad:  # a diverged model: its outputs would be NaN, never a model to score or export
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(f"checkpoint {where} holds non-finite weights ({bad[0]}{more}): not a usable model")
    input_size = checkpoint_size(ckpt, "input_size", where)
    spatial_size = checkpoint_size(ckpt, "spatial_size", where)
    load_model_state(model, state, desc.num_classes, where)
    model.to(device).eval()
    meta = ModelMetadata(
        model_name=ckpt["model_name"], description=desc,
        input_size=input_size or desc.native_size, spatial_size=spatial_size, model_options=options)
    return model, meta


def dataset_settings(ckpt: dict[str, Any], dataset: str | None = None, root: str | Path | None = None,
                     description: str | None = None, fallback: str | None = None) -> dict[str, Any]:
    """{'name', 'root', 'options'} of the dataset to run a checkpoint on: the given `dataset`,
    `root` and `description`, each defaulting to what the checkpoint was trained on (its root
    and options only for that same dataset), the name finally to `fallback`. ValueError when no
    dataset or no root is known (published weights record no root: the training machine's path
    means nothing elsewhere)."""
    data = (ckpt.get("config") or {}).get("data") or {}
    name = dataset or data.get("dataset") or fallback
    if not name:
        raise ValueError("the checkpoint records no dataset: give --dataset and --root")
    same = name == data.get("dataset")
    root = root if root is not None else (data.get("root") if same else None)
    options = dict(data.get("options") or {}) if same else {}
    description = description or (data.get("description") if same else None)
    if description:
        options["description"] = description
    if root is None and name != "synthetic":
        raise ValueError(f"no {name} folder: give --root DIR (published weights do not record the training "
                         "machine's path)")
    return {"name": name, "root": root, "options": options}


def inference_checkpoint(model: nn.Module, model_name: str, model_options: dict[str, Any],
                         description: DatasetDescription, input_size: tuple[int, int],
                         spatial_size: tuple[int, int] | None = None,
                         half: bool = False, **extra: Any) -> dict[str, Any]:
    """A minimal checkpoint for inference (what `iaseg evaluate/predict/export` need)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    return {
        "model": state,
        "model_name": model_name,
        "model_options": dict(model_options),
        "description": description.to_dict(),
        "classes": list(description.classes),
        "groups": {k: list(v) for k, v in description.groups.items()},
        "input_size": list(input_size),
        "spatial_size": list(spatial_size) if spatial_size else None,
        **extra,
    }


def release_checkpoint(ckpt: dict[str, Any] | str | Path, half: bool = True) -> dict[str, Any]:
    """A weights file to publish, from a training (or inference) checkpoint: the network weights
    (fp16 with `half`: half the size, logits change by ~1e-3) plus what `iaseg evaluate/predict/
    export` need (model, classes, palette, groups, input size) and the training config for
    provenance, without optimizer state. The config's data.root is cleared: it is a path on the
    training machine, so users pass --root."""
    source = None
    if not isinstance(ckpt, dict):
        source, ckpt = ckpt, load_checkpoint(ckpt, map_location="cpu")
    model, meta = model_from_checkpoint(ckpt, source=source)
    extra: dict[str, Any] = {}
    config = ckpt.get("config")
    if isinstance(config, dict):
        config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
        if isinstance(config.get("data"), dict):
            config["data"]["root"] = None
        extra["config"] = config
    for key in ("epoch", "best_metric", "class_weights", "trained"):
        if key in ckpt:
            extra[key] = ckpt[key]
    return inference_checkpoint(model, meta.model_name, meta.model_options, meta.description,
                                meta.input_size, meta.spatial_size, half=half, **extra)

