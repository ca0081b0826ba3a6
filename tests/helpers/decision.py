"""Toy calibration data and float64 references for the decision-rule tests."""
import numpy as np
import torch
from torch import nn

from iaseg.data.description import DatasetDescription
from iaseg.decision import CalibrationData
from iaseg.metrics import class_metrics


NAMES = ["sky", "road", "pole", "car", "person"]


def toy_description() -> DatasetDescription:
    return DatasetDescription.from_dict({
        "name": "toy", "classes": NAMES, "palette": [[i, i, i] for i in range(5)], "ignore_index": 255,
        "groups": {"G1": ["sky", "road"], "G2": ["pole"], "G3": ["car", "person"]}})


def toy_data(n: int = 20000, seed: int = 0, strength=(2.0, 2.0, 2.0, 1.0, 0.8), absent=()) -> CalibrationData:
    """Noisy logits; 'car' and 'person' have a weak signal, hence low recall under argmax."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (n,), generator=g)
    for k in absent:
        y[y == k] = 0
    z = torch.randn(n, 5, generator=g) + nn.functional.one_hot(y, 5) * torch.tensor(strength)[y, None]
    return CalibrationData(z.half(), y.to(torch.uint8), {"classes": NAMES})


def reference_confusion(z: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Plain loops, float64: first maximal class of z + b per pixel."""
    c = z.shape[1]
    cm = np.zeros((c, c), dtype=np.int64)
    zz, bb = z.double().numpy(), b.double().numpy()
    for i in range(z.shape[0]):
        scores = [float(zz[i, j]) + float(bb[j]) for j in range(c)]
        best = 0
        for j in range(1, c):
            if scores[j] > scores[best]:
                best = j
        cm[int(y[i]), best] += 1
    return cm


def recall_of(cm, ids) -> float:
    cm = np.asarray(cm, dtype=np.float64)
    return float(np.mean([cm[k, k] / cm[k].sum() for k in ids]))


def miou_of(cm) -> float:
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    return float(np.mean(tp / (cm.sum(0) + cm.sum(1) - tp)))


def report_of(cm: torch.Tensor, desc: DatasetDescription) -> dict:
    """A report dict shaped like iaseg.metrics.build_report's, from class_metrics."""
    m = {k: v.tolist() for k, v in class_metrics(cm).items()}
    per = {c: {k: m[k][i] for k in m} for i, c in enumerate(desc.classes)}
    groups = {g: {k: float(np.nanmean([per[c][k] for c in members])) for k in m}
              for g, members in desc.groups.items()}
    return {"per_class": per, "groups": groups,
            "mean": {k: float(np.nanmean(m[k])) for k in m}}
