"""Building blocks shared by ERF-PSPNet and BiERF-PSPNet.

Layer order follows the authors' TensorFlow code (see docs/architecture.md), not ERFNet's
PyTorch code: in the non-bottleneck-1D block the ReLU comes *before* the residual add.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout
from .paths import using_previous_path

# TF's tf.layers.batch_normalization(momentum=0.9) defaults: eps 1e-3, running-average weight 0.1.
BN_EPS = 1e-3
BN_MOMENTUM = 0.1


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that stays defined when a training batch has one value per channel.

    The pyramid-pooling and attention branches pool to tiny maps (down to 1x1). With batch size
    1 such a map has a single value per channel: its batch variance is 0 and its batch mean is the
    value itself, so plain BatchNorm either raises (PyTorch) or outputs the constant beta with a
    zero gradient (TensorFlow). Here that case normalises with the running statistics (exactly
    what eval mode does) and leaves them untouched, because a one-sample variance is not an
    estimate of anything. Every other case is ordinary BatchNorm; the state_dict is identical.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


class ConvBNReLU(nn.Sequential):
    """conv -> BN -> ReLU (the TF code's conv(..., activation=None) + batch() + relu)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, stride: int = 1,
                 bias: bool = False, relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias),
            BatchNorm2d(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Downsampler(nn.Module):
    """ENet/ERFNet downsampler: concat(conv3x3 stride 2, maxpool 2x2) -> BN -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout <= cin:
            raise ValueError(f"Downsampler needs cout > cin, got {cin} -> {cout}")
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, p = self.conv(x), self.pool(x)
        if p.dtype != c.dtype and not using_previous_path():
            # under autocast the conv gives bf16 and the pool keeps fp32: without this cast the
            # concat promotes to fp32 and the whole residual trunk after it runs in fp32, costing
            # a cast before every conv and after every conv gradient (about 5 % of a bf16 training
            # step; numerically within the bf16 path's own error, docs/speed.md)
            p = p.to(c.dtype)
        return F.relu(self.bn(torch.cat([c, p], 1)))


class NonBottleneck1D(nn.Module):
    """Factorised residual block, TF order: every conv pair ends in ReLU, no ReLU after the add.

    y = ReLU(conv3x1) -> ReLU(BN(conv1x3)) -> ReLU(conv3x1 dil d) -> ReLU(BN(conv1x3 dil d))
    out = x + Dropout(y)   (element-wise dropout, as tf.layers.dropout)
    """

    def __init__(self, channels: int, dropout: float, dilation: int = 1) -> None:
        super().__init__()
        c, d = channels, dilation
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = BatchNorm2d(c)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d), bias=True)
        self.bn2 = BatchNorm2d(c)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv3x1_1(x))
        y = F.relu(self.bn1(self.conv1x3_1(y)))
        y = F.relu(self.conv3x1_2(y))
        y = F.relu(self.bn2(self.conv1x3_2(y)))
        return x + self.dropout(y)


class Encoder(nn.Module):
    """The ERFNet-style encoder of both networks: 3 -> 128 channels at 1/8 resolution."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [Downsampler(3, 16), Downsampler(16, 64)]
        layers += [NonBottleneck1D(64, 0.03, 1) for _ in range(5)]
        layers.append(Downsampler(64, 128))
        layers += [NonBottleneck1D(128, 0.3, d) for d in (2, 4, 8, 16, 2, 4, 8, 16)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def tf_pool_window(size: int, bins: int) -> tuple[int, int]:
    """(kernel, stride) of the authors' pyramid pooling along one axis.

    stride = floor(size / bins), kernel = size - (bins - 1) * stride, VALID padding: exactly
    `bins` outputs, windows wider than AdaptiveAvgPool2d's where size is not a multiple of bins.
    """
    stride = size // bins
    return size - (bins - 1) * stride, stride


def tf_bin_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Average-pool to bins x bins with the TF window formula.

    A feature map smaller than `bins` along an axis has no such windows; it falls back to
    adaptive pooling (which repeats cells), so tiny inputs still run.
    """
    h, w = x.shape[-2:]
    if h < bins or w < bins:
        return F.adaptive_avg_pool2d(x, bins)
    (kh, sh), (kw, sw) = tf_pool_window(h, bins), tf_pool_window(w, bins)
    return F.avg_pool2d(x, (kh, kw), (sh, sw))


def same_avg_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """tf.layers.average_pooling2d(size, size, 'SAME'): partial windows averaged over valid cells."""
    return F.avg_pool2d(x, size, size, ceil_mode=True, count_include_pad=False)


class PyramidPooling(nn.Module):
    """PSP context module: concat[F, branch_1(F), ..., branch_4(F)] -> 3x3 conv, BN, ReLU.

    `pools` names each branch's pooling: 0 = no pooling (the identity branch of the authors'
    ERF-PSPNet), n > 0 = n x n bins with the TF window formula (`bins` mode) or n x n windows
    with SAME padding (`window` mode, BiERF-PSPNet). Each branch is conv1x1 (no bias) -> BN ->
    ReLU -> bilinear resize back to the feature size.
    """

    def __init__(self, in_channels: int = 128, branch_channels: int = 32,
                 pools: Sequence[int] = (0, 2, 4, 8), mode: str = "bins",
                 out_channels: int = 256) -> None:
        super().__init__()
        if mode not in ("bins", "window"):
            raise ValueError(f"PyramidPooling mode must be 'bins' or 'window', got {mode!r}")
        self.pools = tuple(int(p) for p in pools)
        self.mode = mode
        self.branches = nn.ModuleList(ConvBNReLU(in_channels, branch_channels) for _ in self.pools)
        fused = in_channels + branch_channels * len(self.pools)
        self.fuse = ConvBNReLU(fused, out_channels, kernel_size=3)

    def _pool(self, x: torch.Tensor, p: int) -> torch.Tensor:
        if p == 0:
            return x
        return tf_bin_pool(x, p) if self.mode == "bins" else same_avg_pool(x, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = [x]
        for p, branch in zip(self.pools, self.branches):
            y = branch(self._pool(x, p))
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            feats.append(y)
        return self.fuse(torch.cat(feats, 1))


def init_weights(model: nn.Module, scheme: str) -> None:
    """'kaiming': keep PyTorch's default init. 'tf_normal': N(0, 0.1^2) kernels, zero biases,
    as the authors' TF code (tf.random_normal_initializer(stddev=0.1))."""
    if scheme == "kaiming":
        return
    if scheme != "tf_normal":
        raise ValueError(f"unknown init {scheme!r}: use 'kaiming' or 'tf_normal'")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.1)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _autocast_on(x: torch.Tensor) -> bool:
    try:
        return torch.is_autocast_enabled(x.device.type)
    except TypeError:  # torch < 2.4: no device-type argument
        return torch.is_autocast_cpu_enabled() if x.device.type == "cpu" else torch.is_autocast_enabled()


def upsample_logits(y: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False) of low-resolution logits to `size`.

    Under autocast the logits go to fp32 NCHW first: the loss takes fp32 anyway, so this is more
    exact than upsampling in bf16/fp16 and, on the CPU, faster (11 channels vectorise badly in
    channels_last; the head of a 8 x 360x480 bf16 training step took 136 instead of 183 ms,
    docs/speed.md). Without autocast it is plain F.interpolate.
    """
    if _autocast_on(y) and not using_previous_path():
        y = y.to(torch.float32, memory_format=torch.contiguous_format)
    return F.interpolate(y, size=tuple(size), mode="bilinear", align_corners=False)


def check_input(x: torch.Tensor, name: str = "input") -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be N x 3 x H x W, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % 8 or w % 8:
        raise ValueError(f"{name} height and width must be divisible by 8, got {h}x{w}")
