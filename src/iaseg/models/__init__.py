"""The two networks of the paper and helpers to build and describe them.

    >>> from iaseg.models import build_model
    >>> model = build_model("erfpspnet", num_classes=11)
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .bierfpspnet import BiERFPSPNet
from .erfpspnet import ERFPSPNet

MODELS: dict[str, type[nn.Module]] = {
    "erfpspnet": ERFPSPNet,
    "bierfpspnet": BiERFPSPNet,
}

# Dataset items (and batches) carry a network's inputs under these keys, in the order of its
# forward arguments: the image at the network's input size, then (BiERF-PSPNet) the same image
# at the spatial size.
INPUT_KEYS = ("image", "spatial")


def model_class(name: str) -> type[nn.Module]:
    """The network class registered as `name` ('erfpspnet', 'BiERF-PSPNet', ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[key]


def input_names(name: str) -> tuple[str, ...]:
    """The inputs network `name` takes, in order: ('image',) or ('context', 'spatial')."""
    return tuple(model_class(name).input_names)


def takes_spatial(name: str) -> bool:
    """True for networks with a second, full-resolution ('spatial') input (BiERF-PSPNet)."""
    return len(input_names(name)) > 1


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a network by name ('erfpspnet' or 'bierfpspnet') with its options."""
    cls = model_class(name)
    try:
        return cls(num_classes, **options)
    except TypeError as e:  # unknown option: name it instead of a constructor traceback
        raise ValueError(f"bad option for model {name!r}: {e}") from None


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def example_inputs(name: str, input_size: tuple[int, int], batch: int = 1,
                   spatial_size: tuple[int, int] | None = None,
                   device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """Zero inputs of the right shapes for `name` (the spatial image defaults to 1024x2048 if the
    context is 360x720, else to the context size scaled by 2048/720)."""
    h, w = input_size
    x = torch.zeros(batch, 3, h, w, device=device)
    if not takes_spatial(name):
        return (x,)
    if spatial_size is None:
        spatial_size = default_spatial_size((h, w))
    return x, torch.zeros(batch, 3, *spatial_size, device=device)


def image_inputs(name: str, images: torch.Tensor, size: tuple[int, int] | None = None,
                 spatial_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
    """The inputs of network `name` for N x 3 x H x W images in [0, 1]: the images resized
    (bilinear) to `size` (default: as they are) and, for a network with a spatial input, the
    same images resized to `spatial_size` (default: `default_spatial_size(size)`)."""
    size = tuple(size) if size is not None else tuple(images.shape[-2:])
    out = [_resized(images, size)]
    if takes_spatial(name):
        out.append(_resized(images, tuple(spatial_size) if spatial_size else default_spatial_size(size)))
    return tuple(out)


def _resized(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp_(0, 1)


def default_spatial_size(context_size: tuple[int, int]) -> tuple[int, int]:
    """The paper pairs a 360x720 context with a 1024x2048 spatial image; keep that ratio."""
    h, w = context_size
    if (h, w) == (360, 720):
        return 1024, 2048
    return 8 * round(h * 1024 / 360 / 8), 8 * round(w * 2048 / 720 / 8)


@torch.no_grad()
def describe(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Parameter count and GFLOPs (torch.utils.flop_counter, 1 multiply-add = 2 FLOPs) of one
    forward pass in eval mode on `inputs`."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    model.train(was_training)
    return {
        "params": count_parameters(model),
        "params_total": count_parameters(model, trainable_only=False)
        + sum(b.numel() for b in model.buffers() if b.dtype.is_floating_point),
        "gflops": counter.get_total_flops() / 1e9,
    }


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A small fixed-width text table."""
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(widths[i]) for i, v in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


__all__ = ["INPUT_KEYS", "MODELS", "BiERFPSPNet", "ERFPSPNet", "build_model", "count_parameters",
           "default_spatial_size", "describe", "example_inputs", "format_table", "image_inputs", "input_names",
           "model_class", "takes_spatial"]
