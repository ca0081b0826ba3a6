"""CPU eager fast path on top of BN folding: conv + ReLU as one oneDNN kernel, a cheaper 2x2
max-pool, in-place residual adds, and the final upsampling in float32.

Measured on an AMX/AVX-512-BF16 Xeon, 1 thread, ERF-PSPNet 360x720 (see benchmarks/README.md):
the ReLU pass, the 3-channel max-pool and the bf16 bilinear upsampling each cost 5-20 % of a
folded bf16 forward; these modules remove most of that. Everything here is inference only and
not exportable: ONNX/TorchScript export the folded (unfused) model.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from iaseg.models.bierfpspnet import BiERFPSPNet
from iaseg.models.blocks import ConvBNReLU, NonBottleneck1D, check_input
from iaseg.models.erfpspnet import ERFPSPNet

from .fold import FoldedDownsampler


def mkldnn_fusion_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution (`mkldnn::_convolution_pointwise`,
    the op torch.compile itself emits on CPU)."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


@functools.lru_cache(maxsize=1)
def mkldnn_bf16_available() -> bool:
    """Whether oneDNN's fused convolution takes bfloat16 on this CPU. It needs AVX-512 BW/VL/DQ or
    AVX-NE-CONVERT and raises on a CPU with AVX2 only ("bf16 path needs the cpu support ..."), where
    bf16 convolutions take PyTorch's generic path instead. Probed once with a tiny call."""
    if not mkldnn_fusion_available():
        return False
    try:
        x, w = torch.ones(1, 1, 4, 4, dtype=torch.bfloat16), torch.ones(1, 1, 3, 3, dtype=torch.bfloat16)
        torch.ops.mkldnn._convolution_pointwise(x, w, None, [0, 0], [1, 1], [1, 1], 1, "none", [], "")
    except RuntimeError:
        return False
    return True


class FusedConvReLU(nn.Module):
    """conv (+ ReLU): one oneDNN kernel with the ReLU as a post-op on CPU for float32/bfloat16
    without autograd (bfloat16 only where oneDNN takes it: mkldnn_bf16_available); plain conv then
    in-place ReLU elsewhere (GPU, float16, training)."""

    def __init__(self, conv: nn.Conv2d, relu: bool = True) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("FusedConvReLU needs a zero-padded conv with explicit padding")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self.use_mkldnn = mkldnn_fusion_available()
        self.mkldnn_dtypes = (torch.float32, torch.bfloat16) if mkldnn_bf16_available() else (torch.float32,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.use_mkldnn and x.device.type == "cpu" and x.dtype == self.weight.dtype
                and x.dtype in self.mkldnn_dtypes
                and not (torch.is_grad_enabled() and self.weight.requires_grad)):
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                "relu" if self.relu else "none", [], "")
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return F.relu(y, inplace=True) if self.relu else y


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2 / stride 2 max-pool as the maximum of four strided views. On CPU this is several times
    faster than aten::max_pool2d for few channels (the 3-channel input: 0.5 vs 3.6 ms at 360x720)
    and never slower here; odd sizes fall back to F.max_pool2d (which drops the last row/col)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        return F.max_pool2d(x, 2, 2)
    top = torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2])
    bottom = torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2])
    return torch.maximum(top, bottom, out=top) if not torch.is_grad_enabled() else torch.maximum(top, bottom)


class FusedDownsampler(nn.Module):
    """A FoldedDownsampler with the ReLU fused into the conv and applied in place to the pool part
    (ReLU acts per channel, so relu(cat[a, b]) = cat[relu(a), relu(b)])."""

    def __init__(self, block: FoldedDownsampler) -> None:
        super().__init__()
        pool = block.pool
        if (pool.kernel_size, pool.stride) not in ((2, 2), ((2, 2), (2, 2))) or pool.padding not in (0, (0, 0)):
            raise ValueError("FusedDownsampler expects a 2x2 / stride 2 max-pool")
        self.conv = FusedConvReLU(block.conv)
        self.register_buffer("pool_scale", block.pool_scale)
        self.register_buffer("pool_shift", block.pool_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.addcmul(self.pool_shift, max_pool_2x2(x), self.pool_scale)
        return torch.cat([self.conv(x), F.relu(pooled, inplace=True)], 1)


class FusedNonBottleneck1D(nn.Module):
    """A folded NonBottleneck1D: four fused conv + ReLU, residual added in place (eval: dropout
    is the identity)."""

    def __init__(self, block: NonBottleneck1D) -> None:
        super().__init__()
        if isinstance(block.bn1, nn.BatchNorm2d) or isinstance(block.bn2, nn.BatchNorm2d):
            raise ValueError("fuse after fold_batchnorm: NonBottleneck1D still has BatchNorm layers")
        self.convs = nn.ModuleList(FusedConvReLU(c) for c in (block.conv3x1_1, block.conv1x3_1,
                                                               block.conv3x1_2, block.conv1x3_2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.convs:
            y = conv(y)
        return y.add_(x) if not torch.is_grad_enabled() else y + x


class Float32Head(nn.Module):
    """Runs a network in its own dtype but converts the 1/8-resolution logits to float32 before
    the final bilinear upsampling: bf16 upsampling on CPU is twice as slow as float32 and the
    caller wants float32 logits anyway. Networks other than iaseg's two run unchanged."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        m = self.model
        if isinstance(m, ERFPSPNet):
            (x,) = inputs
            check_input(x)
            y = m.classifier(m.psp(m.encoder(x)))
        elif isinstance(m, BiERFPSPNet):
            x, spatial = inputs
            check_input(x, "context image")
            check_input(spatial, "spatial image")
            if x.shape[0] != spatial.shape[0]:
                raise ValueError(f"context and spatial batches differ: {x.shape[0]} vs {spatial.shape[0]}")
            s = m.spatial_path(spatial)
            c = F.interpolate(m.psp(m.encoder(x)), size=s.shape[-2:], mode="bilinear", align_corners=False)
            y = m.fusion(c, s)
        else:
            return m(*inputs).float()
        return F.interpolate(y.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def fuse_conv_relu(model: nn.Module) -> nn.Module:
    """Replace (in place) the conv + ReLU pairs of a *folded* model (see fold_batchnorm) by fused
    modules and return it. CPU eager inference only."""
    for name, child in list(model.named_children()):
        if isinstance(child, FoldedDownsampler):
            setattr(model, name, FusedDownsampler(child))
        elif isinstance(child, NonBottleneck1D):
            setattr(model, name, FusedNonBottleneck1D(child))
        elif isinstance(child, ConvBNReLU) and isinstance(child[1], nn.Identity):
            setattr(model, name, FusedConvReLU(child[0], relu=len(child) > 2))
        else:
            fuse_conv_relu(child)
    return model
