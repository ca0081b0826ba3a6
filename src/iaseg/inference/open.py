"""Opening a model to score it: a checkpoint or an exported file, as `evaluate` and `calibrate`
run it (and `predict`'s runner for exported files). The caller resolves the device (`auto` needs
the engine's device rules, a layer above); everything else about which network runs, and in
which precision, is decided here."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from iaseg.inference.metadata import ModelMetadata


class OpenedModel(NamedTuple):
    """What `open_model` returns: the network (an fp32 eval module) or a runner, its metadata,
    the checkpoint dict ({} for an exported file) and one phrase saying what runs."""
    model: Any
    meta: ModelMetadata
    checkpoint: dict[str, Any]
    path: str


def load_model(checkpoint: str, device: torch.device) -> tuple[nn.Module, ModelMetadata, dict[str, Any]]:
    """(fp32 eval model on `device`, its metadata, the checkpoint dict) of a checkpoint file."""
    from iaseg.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model, meta = model_from_checkpoint(ckpt, device=device, source=checkpoint)
    return model, meta, ckpt


def open_model(checkpoint: str, device: torch.device, backend: str = "exact", precision: str = "auto",
               amp: str = "off") -> OpenedModel:
    """The model of `checkpoint` ready to score: a checkpoint runs exactly (fp32 eager, or `amp`
    autocast) unless a backend is named; an exported .onnx/.ts/.xml file on its own runtime in
    its stored precision (fp32, or int8 for a quantised file) unless `amp` or `precision` asks
    for another. A precision that does not fit the path raises ValueError naming the option."""
    from iaseg.checkpoint import load_checkpoint

    from .runners import _source_kind, load_runner

    exported = _source_kind(checkpoint) != "checkpoint"
    if backend == "exact" and not exported:
        if precision != "auto":
            raise ValueError("--precision is for a non-exact --backend (the exact path is fp32, or --amp)")
        model, meta, ckpt = load_model(checkpoint, device)
        return OpenedModel(model, meta, ckpt, f"exact fp32 eager{'' if amp == 'off' else ' + ' + amp + ' autocast'}")
    if exported and precision == "auto":
        # scoring is exact unless asked: the file's stored precision, or --amp's
        from .runners import stored_precision

        precision = stored_precision(checkpoint) if amp == "off" else amp
    elif amp != "off":
        raise ValueError("--amp is for the exact path of a checkpoint or an exported file; a runner's precision "
                         "is --precision")
    runner = load_runner(checkpoint, backend=None if backend in ("exact", "auto") else backend,
                         precision=precision, device=device)
    ckpt = {} if exported else load_checkpoint(checkpoint)
    return OpenedModel(runner, runner.meta, ckpt, runner.describe())
