"""Is the synthetic task hard but learnable? Train a tiny FCN (110k parameters) for a fixed wall
time on 300 synthetic scenes at 176x240 with plain or ENet-weighted cross-entropy and print the
per-class recall/IoU on 40 validation scenes.

    PYTHONPATH=src python benchmarks/synthetic_probe.py ce 120
    PYTHONPATH=src python benchmarks/synthetic_probe.py enet 120

Numbers are in docs/datasets.md ("Synthetic street scenes").
"""
from __future__ import annotations

import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from iaseg.data import build_dataset, collate
from iaseg.metrics import ConfusionMatrix, class_metrics
from iaseg.metrics.report import nan_mean

NAMES = "Sky Bld Pole Road Pave Tree Sign Fence Car Ped Bike".split()


def block(i: int, o: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride, dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class TinyFCN(nn.Module):
    def __init__(self, num_classes: int = 11) -> None:
        super().__init__()
        self.e1 = nn.Sequential(block(3, 16, 2), block(16, 16))
        self.e2 = nn.Sequential(block(16, 32, 2), block(32, 32))
        self.e3 = nn.Sequential(block(32, 64, 2), block(64, 64, dilation=2), block(64, 64, dilation=4))
        self.head = nn.Conv2d(64 + 32 + 16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        up = lambda t: F.interpolate(t, size=a.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        y = self.head(torch.cat([a, up(b), up(c)], 1))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def main(mode: str = "ce", seconds: float = 120.0) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    size = (176, 240)
    train = collate([it for it in build_dataset("synthetic", None, "train", size=size, length=300)])
    val = collate([it for it in build_dataset("synthetic", None, "val", size=size, length=40)])
    labels = train["label"]
    freq = torch.bincount(labels[labels != 11], minlength=11).double() / labels.numel()
    weight = (1 / torch.log(1.02 + freq)).float() if mode == "enet" else None
    model = TinyFCN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    steps, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        idx = torch.randint(0, labels.shape[0], (8,), generator=gen)
        loss = F.cross_entropy(model(train["image"][idx]), labels[idx], weight=weight, ignore_index=11)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    model.eval()
    cm = ConfusionMatrix(11, ignore_index=11)
    with torch.no_grad():
        for i in range(0, val["label"].shape[0], 8):
            cm.update(model(val["image"][i:i + 8]).argmax(1), val["label"][i:i + 8])
    # the library's metrics: NaN (printed 'nan', left out of the mean) for a class absent from
    # both labels and predictions, as every report gives it
    conf = cm.matrix
    metrics = class_metrics(conf)
    recall, iou = metrics["recall"], metrics["iou"]
    g3 = [6, 8, 9, 10]
    print(f"{mode}: {steps} steps x 8 images in {seconds:.0f} s")
    print("recall " + " ".join(f"{n}:{r:.2f}" for n, r in zip(NAMES, recall.tolist())))
    print("IoU    " + " ".join(f"{n}:{r:.2f}" for n, r in zip(NAMES, iou.tolist())) + f"  mIoU {float(nan_mean(iou)):.3f}")
    print(f"G3 pixel recall {float(conf.diag()[g3].sum() / conf.sum(1)[g3].sum()):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ce", float(sys.argv[2]) if len(sys.argv) > 2 else 120.0)
