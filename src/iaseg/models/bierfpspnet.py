"""BiERF-PSPNet (Xiang, Wang, Yang, ITSC 2019): ERF-PSPNet context path + a 3-conv spatial path
on the full-resolution image, fused by a channel-attention module."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BatchNorm2d, ConvBNReLU, Encoder, PyramidPooling, check_input, init_weights, upsample_logits


class SpatialPath(nn.Module):
    """3 x [conv3x3 stride 2 (with bias) -> BN -> ReLU]: 3 -> 64 -> 128 -> 256 at 1/8 size."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ConvBNReLU(3, 64, 3, stride=2, bias=True),
            ConvBNReLU(64, 128, 3, stride=2, bias=True),
            ConvBNReLU(128, 256, 3, stride=2, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AttentionFusion(nn.Module):
    """The paper's attention module (a BiSeNet-style feature fusion module, authors' variant).

    u = ReLU(BN(conv3x3 C->num_classes))(ReLU(BN(conv3x3 512->256))(concat[context, spatial]))
    a = sigmoid(conv1x1(ReLU(BN(conv1x1(global_avg_pool(u))))))
    out = [ReLU](BN(conv1x1(u * a + u)))   -- the final ReLU is the authors'; optional here.
    """

    def __init__(self, num_classes: int, final_relu: bool = True) -> None:
        super().__init__()
        c = num_classes
        self.fuse = ConvBNReLU(512, 256, 3, bias=True)
        self.project = ConvBNReLU(256, c, 3, bias=True)
        self.attn_conv1 = nn.Conv2d(c, c, 1, bias=True)
        self.attn_bn = BatchNorm2d(c)
        self.attn_conv2 = nn.Conv2d(c, c, 1, bias=True)
        self.out_conv = nn.Conv2d(c, c, 1, bias=True)
        self.out_bn = BatchNorm2d(c)
        self.final_relu = final_relu

    def forward(self, context: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        u = self.project(self.fuse(torch.cat([context, spatial], 1)))
        a = u.mean(dim=(2, 3), keepdim=True)
        a = torch.sigmoid(self.attn_conv2(F.relu(self.attn_bn(self.attn_conv1(a)))))
        v = self.out_bn(self.out_conv(u * a + u))
        return F.relu(v) if self.final_relu else v


class BiERFPSPNet(nn.Module):
    """BiERF-PSPNet.

    forward(context, spatial): `context` N x 3 x H x W (paper: 360 x 720) goes through the
    ERF-PSPNet encoder and PSP context decoder (SAME average pools 2/4/8, no classifier);
    `spatial` N x 3 x H1 x W1 (paper: 1024 x 2048, the same image at full resolution) goes
    through the spatial path. Context features are resized to H1/8 x W1/8, fused, and the
    logits are resized to the context resolution H x W.

    Args:
        num_classes: C.
        final_relu: keep the authors' ReLU on the logits (default True).
        init: 'kaiming' or 'tf_normal'.
    """

    # the forward arguments, also the input names of exported graphs
    input_names: tuple[str, ...] = ("context", "spatial")
    # encoder layers whose conv kernels the authors' code leaves out of the L2 decay (d1, d2, d8)
    authors_undecayed_layers: tuple[int, ...] = (0, 1, 7)

    def __init__(self, num_classes: int, final_relu: bool = True, init: str = "kaiming") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.encoder = Encoder()
        self.psp = PyramidPooling(128, 32, pools=(0, 2, 4, 8), mode="window", out_channels=256)
        self.spatial_path = SpatialPath()
        self.fusion = AttentionFusion(num_classes, final_relu=final_relu)
        init_weights(self, init)

    def forward(self, context: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        check_input(context, "context image")
        check_input(spatial, "spatial image")
        if context.shape[0] != spatial.shape[0]:
            raise ValueError(f"context and spatial batches differ: {context.shape[0]} vs {spatial.shape[0]}")
        s = self.spatial_path(spatial)
        c = self.psp(self.encoder(context))
        c = F.interpolate(c, size=s.shape[-2:], mode="bilinear", align_corners=False)
        y = self.fusion(c, s)
        return upsample_logits(y, context.shape[-2:])
