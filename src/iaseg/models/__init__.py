"""The two networks of the paper, any other network by import path, and helpers to build and
describe them.

    >>> from iaseg.models import build_model
    >>> model = build_model("erfpspnet", num_classes=11)
    >>> model = build_model("mypackage.nets:tiny_unet", num_classes=11, width=16)  # any nn.Module

An imported network takes one N x 3 x H x W image in [0, 1] and returns N x C x H x W logits;
`build_model` checks that on a dummy input, so a wrong network fails at once with one line.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Sequence

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


# An imported network is checked on a zero image of this size (a multiple of 32, small enough
# to cost nothing, large enough for the usual 1/32-resolution encoders).
CHECK_SIZE = (64, 64)


def is_import_path(name: str) -> bool:
    """True for 'package.module:factory' (an imported network), False for a registered name."""
    return ":" in name


def import_factory(path: str) -> Callable[..., nn.Module]:
    """The callable named by 'package.module:factory' ('pkg.mod:Class.method' also works);
    ValueError when the module cannot be imported or has no such callable."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ValueError(f"model {path!r}: expected 'package.module:factory'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:  # the user's code itself failing keeps its traceback
        raise ValueError(f"model {path!r}: cannot import module {module_name!r} ({e}; is it installed "
                         "or on PYTHONPATH?)") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"model {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"model {path!r}: {attr!r} is not callable (a function or class that returns the network)")
    return obj


def model_class(name: str) -> type[nn.Module]:
    """The network class registered as `name` ('erfpspnet', 'BiERF-PSPNet', ...)."""
    if is_import_path(name):
        raise ValueError(f"model {name!r} is an imported network, not one of {sorted(MODELS)}")
    key = name.lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[key]


def input_names(name: str) -> tuple[str, ...]:
    """The inputs network `name` takes, in order: ('image',) or ('context', 'spatial'). An
    imported network takes one image; this needs no import, so exported files of it run where
    its code is not installed."""
    if is_import_path(name):
        return ("image",)
    return tuple(model_class(name).input_names)


def takes_spatial(name: str) -> bool:
    """True for networks with a second, full-resolution ('spatial') input (BiERF-PSPNet)."""
    return len(input_names(name)) > 1


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a network by name ('erfpspnet' or 'bierfpspnet') with its options, or by import
    path ('package.module:factory', called as factory(num_classes=..., **options) and checked on
    a dummy input: see check_network)."""
    if is_import_path(name):
        factory = import_factory(name)
        _check_call(name, factory, num_classes=num_classes, **options)
        model = factory(num_classes=num_classes, **options)
        check_network(name, model, num_classes)
        return model
    cls = model_class(name)
    try:
        return cls(num_classes, **options)
    except TypeError as e:  # unknown option: name it instead of a constructor traceback
        raise ValueError(f"bad option for model {name!r}: {e}") from None


def _check_call(name: str, factory: Callable[..., Any], **kwargs: Any) -> None:
    """A wrong option for an imported factory as one line, before calling it (a TypeError raised
    inside the factory is the factory's own bug and keeps its traceback)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: let the call speak
        return
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad option for model {name!r}: {e} (it is called with num_classes and "
                         "model.options)") from None


@torch.no_grad()
def check_network(name: str, model: Any, num_classes: int, size: tuple[int, int] = CHECK_SIZE) -> None:
    """ValueError unless `model` is an nn.Module that maps N x 3 x H x W zeros to N x num_classes
    x H x W logits, in eval mode (N = 1) and in training mode (N = 2: networks with auxiliary
    heads often return more there). The mode and every buffer (BatchNorm statistics) are
    restored."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {name!r}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    h, w = size
    was_training = model.training
    buffers = {key: b.clone() for key, b in model.named_buffers()}
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    try:
        for training, n in ((False, 1), (True, 2)):
            model.train(training)
            where = f"a {n}x3x{h}x{w} input" + (" in training mode" if training else "")
            try:
                y = model(torch.zeros(n, 3, h, w, device=device))
            except Exception as e:  # noqa: BLE001 - any failure on a plain image means it is not usable here
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise ValueError(f"model {name!r} fails on {where} ({type(e).__name__}: {first})") from e
            _check_logits(name, y, (n, num_classes, h, w), where)
    finally:
        model.train(was_training)
        for key, b in model.named_buffers():
            b.copy_(buffers[key])


def _check_logits(name: str, y: Any, expected: tuple[int, int, int, int], where: str) -> None:
    shape = "x".join(str(v) for v in expected)
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"model {name!r} returns {type(y).__name__} for {where}; it must return one tensor of "
                         f"logits {shape} (wrap it to pick the logits)")
    if tuple(y.shape) != expected:
        got = "x".join(str(v) for v in y.shape)
        hint = (f"{expected[1]} classes expected" if y.ndim == 4 and y.shape[1] != expected[1]
                else "upsample the logits to the input size inside forward" if y.ndim == 4
                else "expected N x C x H x W")
        raise ValueError(f"model {name!r} maps {where} to {got}, not {shape} ({hint})")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def input_sizes(name: str, size: tuple[int, int], spatial_size: tuple[int, int] | None = None
                ) -> tuple[tuple[int, int], ...]:
    """The H x W of each input of network `name` run at (context) `size`: (size,), or for a
    network with a spatial input (size, spatial_size), the spatial size defaulting to
    `default_spatial_size(size)`. The one place that default is filled in (`ModelMetadata.sizes`
    asks here)."""
    size = (int(size[0]), int(size[1]))
    if not takes_spatial(name):
        return (size,)
    return size, (tuple(spatial_size) if spatial_size else default_spatial_size(size))


def zero_inputs(sizes: Sequence[tuple[int, int]], batch: int = 1,
                device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """batch x 3 x H x W zeros for each (H, W) of `sizes`."""
    return tuple(torch.zeros(batch, 3, *s, device=device) for s in sizes)


def resized_inputs(images: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
    """N x 3 x H x W images in [0, 1] resized (bilinear, clamped to [0, 1]) to each of `sizes`;
    images already at a size are passed as they are."""
    return tuple(_resized(images, tuple(s)) for s in sizes)


def example_inputs(name: str, input_size: tuple[int, int], batch: int = 1,
                   spatial_size: tuple[int, int] | None = None,
                   device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """Zero inputs of the right shapes for `name` (the spatial image defaults to 1024x2048 if the
    context is 360x720, else to the context size scaled by 2048/720: `input_sizes`)."""
    return zero_inputs(input_sizes(name, input_size, spatial_size), batch, device)


def image_inputs(name: str, images: torch.Tensor, size: tuple[int, int] | None = None,
                 spatial_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
    """The inputs of network `name` for N x 3 x H x W images in [0, 1]: the images resized
    (bilinear) to `size` (default: as they are) and, for a network with a spatial input, the
    same images resized to `spatial_size` (default: `default_spatial_size(size)`)."""
    size = tuple(size) if size is not None else tuple(images.shape[-2:])
    return resized_inputs(images, input_sizes(name, size, spatial_size))


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


__all__ = ["CHECK_SIZE", "INPUT_KEYS", "MODELS", "BiERFPSPNet", "ERFPSPNet", "build_model", "check_network",
           "count_parameters", "default_spatial_size", "describe", "example_inputs", "format_table", "image_inputs",
           "import_factory", "input_names", "input_sizes", "is_import_path", "model_class", "resized_inputs",
           "takes_spatial", "zero_inputs"]
