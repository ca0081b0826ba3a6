"""What every forward pass of the engine shares: the network inputs of a batch, and autocast."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager, Sequence

import torch

from iaseg.models import INPUT_KEYS


def model_inputs(batch: dict[str, Any], input_names: Sequence[str], device: torch.device,
                 channels_last: bool = False) -> tuple[torch.Tensor, ...]:
    """The network inputs of a collated batch, on `device`, for a network with inputs
    `input_names` (`ModelMetadata.input_names`): (image,) or, for BiERF-PSPNet, (image, spatial)
    (the dataset item keys of `iaseg.models.INPUT_KEYS`, one per input in order)."""
    if isinstance(input_names, str) or not 1 <= len(input_names) <= len(INPUT_KEYS):  # a model name is no input list
        raise ValueError(f"input_names must be a network's 1 to {len(INPUT_KEYS)} input names, got {input_names!r}")
    keys = INPUT_KEYS[: len(input_names)]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return tuple(batch[k].to(device, non_blocking=True).contiguous(memory_format=fmt) for k in keys)


def autocast_context(device: torch.device, amp: str) -> ContextManager[Any]:
    """torch.autocast for amp 'bf16' / 'fp16'; a no-op for 'off'."""
    if amp == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
