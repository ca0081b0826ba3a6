"""BatchNorm folding for inference: conv -> BN (eval) becomes one conv with adjusted weights.

In eval mode BN is the per-channel affine map y = a * x + b with a = gamma / sqrt(var + eps) and
b = beta - a * mean, so conv(x; W, c) followed by it equals conv(x; a * W, a * c + b). Folding
removes one full read/write pass over every activation that has a BN, which matters on CPUs
where these layers are memory-bound.

Handled pairs (all of iaseg's networks; anything else is left untouched):
    ConvBNReLU            conv -> bn            (PSP branches and fuse, spatial path, fusion)
    NonBottleneck1D       conv1x3_1 -> bn1, conv1x3_2 -> bn2
    Downsampler           BN after concat[conv, maxpool]: the conv slice folds into the conv,
                          the max-pool slice cannot (max-pool does not commute with a negative
                          scale), so it stays a per-channel affine after the pool
    AttentionFusion       attn_conv1 -> attn_bn, out_conv -> out_bn
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.models.bierfpspnet import AttentionFusion
from iaseg.models.blocks import ConvBNReLU, Downsampler, NonBottleneck1D


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm, computed in float64."""
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - scale * mean


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, channels: slice | None = None) -> nn.Conv2d:
    """A new conv equal to bn(conv(x)) in eval mode; `channels` selects the BN channels that
    belong to this conv (when BN follows a concat)."""
    scale, shift = bn_affine(bn)
    if channels is not None:
        scale, shift = scale[channels], shift[channels]
    if scale.numel() != conv.out_channels:
        raise ValueError(f"BN has {scale.numel()} channels for a conv with {conv.out_channels} outputs")
    fused = copy.deepcopy(conv)
    w = conv.weight.double() * scale.view(-1, 1, 1, 1)
    b = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight.copy_(w.to(conv.weight.dtype))
    if fused.bias is None:
        fused.bias = nn.Parameter(torch.empty(conv.out_channels, dtype=conv.weight.dtype,
                                              device=conv.weight.device))
    fused.bias.copy_((b * scale + shift).to(conv.weight.dtype))
    return fused


class FoldedDownsampler(nn.Module):
    """Downsampler with its BN folded: relu(concat[conv'(x), a * maxpool(x) + b])."""

    def __init__(self, block: Downsampler) -> None:
        super().__init__()
        n_conv = block.conv.out_channels
        self.conv = fold_conv_bn(block.conv, block.bn, slice(0, n_conv))
        self.pool = block.pool
        scale, shift = bn_affine(block.bn)
        dtype = block.conv.weight.dtype
        self.register_buffer("pool_scale", scale[n_conv:].to(dtype).view(1, -1, 1, 1))
        self.register_buffer("pool_shift", shift[n_conv:].to(dtype).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.addcmul(self.pool_shift, self.pool(x), self.pool_scale)
        return F.relu(torch.cat([self.conv(x), pooled], 1))


def _check_eval_bn(bn: nn.Module, where: str) -> None:
    if not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None:
        raise ValueError(f"{where}: expected a BatchNorm2d with running statistics, got {type(bn).__name__}")


@torch.no_grad()
def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return an eval-mode copy of `model` (or `model` itself with inplace=True) in which every
    conv -> BN pair of iaseg's blocks is one conv. Outputs equal the eval-mode outputs of the
    original up to float rounding. The result is for inference only (BN statistics are gone)."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    _fold_children(model)
    return model


def _fold_children(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, Downsampler):
            _check_eval_bn(child.bn, name)
            setattr(module, name, FoldedDownsampler(child))
            continue
        if isinstance(child, ConvBNReLU) and isinstance(child[1], nn.BatchNorm2d):
            child[0] = fold_conv_bn(child[0], child[1])
            child[1] = nn.Identity()
        elif isinstance(child, NonBottleneck1D):
            for conv, bn in (("conv1x3_1", "bn1"), ("conv1x3_2", "bn2")):
                if isinstance(getattr(child, bn), nn.BatchNorm2d):
                    setattr(child, conv, fold_conv_bn(getattr(child, conv), getattr(child, bn)))
                    setattr(child, bn, nn.Identity())
        elif isinstance(child, AttentionFusion):
            for conv, bn in (("attn_conv1", "attn_bn"), ("out_conv", "out_bn")):
                if isinstance(getattr(child, bn), nn.BatchNorm2d):
                    setattr(child, conv, fold_conv_bn(getattr(child, conv), getattr(child, bn)))
                    setattr(child, bn, nn.Identity())
        _fold_children(child)


def count_batchnorms(model: nn.Module) -> int:
    """BatchNorm layers left in `model` (0 after folding one of iaseg's networks)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

