"""Reports, runs and checkpoints for the comparison tests."""
import numpy as np
import torch

from iaseg.checkpoint import inference_checkpoint, save_checkpoint
from iaseg.data import load_description
from iaseg.metrics import build_report
from iaseg.models import build_model


DESC = load_description("camvid")
GROUPS = {g: list(c) for g, c in DESC.groups.items()}


def camvid_report(seed, g3_boost=0):
    """A report from a random diagonal-heavy matrix; `g3_boost` adds correct G3 pixels."""
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 40, (11, 11)) + np.diag(rng.integers(300, 900, 11))
    for c in GROUPS["G3"]:
        i = DESC.class_index(c)
        m[i, i] += g3_boost
    return build_report(m, DESC.classes, GROUPS, meta={"split": "test"})


class FakeDataset:
    description = DESC

    def __init__(self, n=5, size=(64, 64)):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            label = torch.zeros(size, dtype=torch.int64)
            if i != 0:  # image 0 shows no G3 class: the overlay skips it
                label[10:30, 20:40] = DESC.class_index("Car")
                label[40:50, 5:15] = DESC.class_index("Pedestrian")
            label[0, :] = DESC.ignore_index
            self.items.append({"image": torch.rand(3, *size, generator=g), "label": label, "path": f"/d/img{i}.png"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class SpatialFake(FakeDataset):
    """FakeDataset at the labels' resolution, with BiERF-PSPNet's spatial input when asked."""

    def __init__(self, spatial_size=None):
        super().__init__(n=6)
        if spatial_size is not None:
            for item in self.items:
                item["spatial"] = torch.nn.functional.interpolate(item["image"][None], size=spatial_size)[0]


def save_tiny_checkpoint(path, seed, name="erfpspnet"):
    torch.manual_seed(seed)
    model = build_model(name, DESC.num_classes).eval()
    save_checkpoint(inference_checkpoint(model, name, {}, DESC, (64, 64), spatial_size=(64, 64) if name != "erfpspnet"
                                         else None), path)
    return path


def lines_to_rows(lines):
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
