"""Export-ready graphs: BN folded and pyramid pooling windows fixed for one input size."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.models.blocks import PyramidPooling, tf_pool_window

from .fold import fold_batchnorm


class StaticPyramidPooling(nn.Module):
    """PyramidPooling with its pooling windows fixed for one feature size.

    The PSP windows depend on the feature-map size; computed from `x.shape` they become shape
    arithmetic in an exported graph, which ONNX pooling cannot take. Exports are made at a fixed
    H x W (dynamic batch only), so the windows are constants there.
    """

    def __init__(self, psp: PyramidPooling, feature_size: tuple[int, int]) -> None:
        super().__init__()
        self.branches = psp.branches
        self.fuse = psp.fuse
        self.size = tuple(int(s) for s in feature_size)
        h, w = self.size
        self.windows: list[tuple[tuple[int, int], tuple[int, int], bool] | None] = []
        for p in psp.pools:
            if p == 0:
                self.windows.append(None)
            elif psp.mode == "window":
                self.windows.append(((p, p), (p, p), True))
            elif h < p or w < p:
                raise ValueError(f"feature map {h}x{w} is smaller than {p} bins: export needs a larger input")
            else:
                (kh, sh), (kw, sw) = tf_pool_window(h, p), tf_pool_window(w, p)
                self.windows.append(((kh, kw), (sh, sw), False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()) and tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"this model was specialised for {self.size[0] * 8}x{self.size[1] * 8} inputs, "
                             f"got features of size {tuple(x.shape[-2:])}")
        feats = [x]
        for win, branch in zip(self.windows, self.branches):
            y = x if win is None else F.avg_pool2d(x, win[0], win[1], ceil_mode=win[2],
                                                    count_include_pad=not win[2])
            y = branch(y)
            if win is not None:
                y = F.interpolate(y, size=self.size, mode="bilinear", align_corners=False)
            feats.append(y)
        return self.fuse(torch.cat(feats, 1))


def specialise_pooling(model: nn.Module, input_size: tuple[int, int]) -> nn.Module:
    """Replace (in place) each PyramidPooling of `model` by a StaticPyramidPooling for a context
    input of `input_size` (features at 1/8 of it). Returns `model`."""
    h, w = input_size
    for name, child in list(model.named_children()):
        if isinstance(child, PyramidPooling):
            setattr(model, name, StaticPyramidPooling(child, (h // 8, w // 8)))
        else:
            specialise_pooling(child, input_size)
    return model


def export_ready(model: nn.Module, input_size: tuple[int, int], fold_bn: bool = True) -> nn.Module:
    """An eval-mode float32 CPU copy of `model` for tracing at context size `input_size`: BN
    folded (optional) and pyramid pooling specialised."""
    model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    return specialise_pooling(model.float().cpu(), input_size)
