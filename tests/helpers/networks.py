"""Tiny networks that are not iaseg's, for the 'any network' tests (`model.name:
"tests.helpers.networks:tiny_net"`)."""
import torch
import torch.nn.functional as F
from torch import nn


class TinyNet(nn.Module):
    """conv -> BN -> ReLU at 1/2 resolution, 1x1 classifier, bilinear back to the input size."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.head(self.body(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def tiny_net(num_classes: int, width: int = 8) -> nn.Module:
    return TinyNet(num_classes, width)


def half_resolution(num_classes: int) -> nn.Module:
    """Forgets to upsample: N x C x H/2 x W/2."""
    return nn.Conv2d(3, num_classes, 3, stride=2, padding=1)


def wrong_classes(num_classes: int) -> nn.Module:
    return nn.Conv2d(3, num_classes + 1, 1)


class DictOutput(nn.Module):
    """Returns {'out': logits} as torchvision's segmentation models do."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.conv(x)}


class AuxInTraining(TinyNet):
    """Returns (logits, auxiliary logits) in training mode only, as deep-supervision networks do."""

    def forward(self, x: torch.Tensor):
        y = super().forward(x)
        return (y, y) if self.training else y


def not_a_module(num_classes: int) -> str:
    return "network"


def broken(num_classes: int) -> nn.Module:
    return nn.Conv2d(1, num_classes, 1)  # takes 1 channel, gets 3


NOT_CALLABLE = 3
