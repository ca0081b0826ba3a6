"""What every forward pass of the engine shares: the network inputs of a batch, and autocast."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager

import torch

from iaseg.models import INPUT_KEYS, input_names


def model_inputs(batch: dict[str, Any], model_name: str, device: torch.device,
                 channels_last: bool = False) -> tuple[torch.Tensor, ...]:
    """The network inputs of a collated batch, on `device`: (image,) or, for BiERF-PSPNet,
    (image, spatial) (the dataset item keys of `iaseg.models.INPUT_KEYS`)."""
    keys = INPUT_KEYS[: len(input_names(model_name))]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return tuple(batch[k].to(device, non_blocking=True).contiguous(memory_format=fmt) for k in keys)


def autocast_context(device: torch.device, amp: str) -> ContextManager[Any]:
    """torch.autocast for amp 'bf16' / 'fp16'; a no-op for 'off'."""
    if amp == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
