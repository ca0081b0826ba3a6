"""The two networks of the paper and helpers to build and describe them.

    >>> from iaseg.models import build_model
    >>> model = build_model("erfpspnet", num_classes=11)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .bierfpspnet import BiERFPSPNet
from .erfpspnet import ERFPSPNet

MODELS: dict[str, type[nn.Module]] = {
    "erfpspnet": ERFPSPNet,
    "bierfpspnet": BiERFPSPNet,
}

# The two-input model reads a context image plus the same image at full resolution.
TWO_INPUT_MODELS = frozenset({"bierfpspnet"})


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a network by name ('erfpspnet' or 'bierfpspnet') with its options."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    try:
        return MODELS[key](num_classes, **options)
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
    if name not in TWO_INPUT_MODELS:
        return (x,)
    if spatial_size is None:
        spatial_size = default_spatial_size((h, w))
    return x, torch.zeros(batch, 3, *spatial_size, device=device)


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


__all__ = ["MODELS", "TWO_INPUT_MODELS", "BiERFPSPNet", "ERFPSPNet", "build_model",
           "count_parameters", "describe", "example_inputs", "default_spatial_size", "format_table"]
