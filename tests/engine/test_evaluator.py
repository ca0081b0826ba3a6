"""The one logits loop: logits at the label size, and the confusion matrix of a split."""
import numpy as np
import torch
import torch.nn.functional as F

from iaseg.data import build_dataset, build_loader
from iaseg.engine.evaluator import evaluate_loader, iter_logits
from iaseg.models import build_model


class HalfSize(torch.nn.Module):
    """Logits at half the input size (like a network evaluated on full-resolution labels)."""

    def __init__(self, num_classes: int = 11) -> None:
        super().__init__()
        self.net = build_model("erfpspnet", num_classes).eval()

    def forward(self, x):
        return self.net(x)[..., ::2, ::2]


def test_evaluate_loader_matches_a_numpy_confusion_matrix_of_upsampled_logits():
    torch.manual_seed(0)
    net = HalfSize()
    ds = build_dataset("synthetic", None, "val", size=(32, 48), length=5, seed=3)
    loader = build_loader(ds, batch_size=2, num_workers=0)
    cm = evaluate_loader(net, loader, ("image",), 11, 11, "cpu", progress=False)
    expected = np.zeros((11, 11), dtype=np.int64)
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            logits = F.interpolate(net(item["image"][None]), size=(32, 48), mode="bilinear", align_corners=False)
            pred, label = logits.argmax(1)[0].numpy().ravel(), item["label"].numpy().ravel()
            keep = label != 11
            np.add.at(expected, (label[keep], pred[keep]), 1)
    assert np.array_equal(cm.matrix.numpy(), expected)
    batches = list(iter_logits(net, loader, ("image",), "cpu", progress=False))
    assert [tuple(lg.shape) for _, lg, _ in batches] == [(2, 11, 32, 48), (2, 11, 32, 48), (1, 11, 32, 48)]


def test_input_size_resizes_the_images_and_decide_replaces_argmax():
    torch.manual_seed(0)
    net = build_model("erfpspnet", 11).eval()
    ds = build_dataset("synthetic", None, "val", size=(32, 48), length=2, seed=3)
    loader = build_loader(ds, batch_size=2, num_workers=0)
    (batch, logits, target), = iter_logits(net, loader, ("image",), "cpu", input_size=(16, 24), progress=False)
    with torch.no_grad():
        small = net(F.interpolate(batch["image"], size=(16, 24), mode="bilinear", align_corners=False))
    torch.testing.assert_close(logits, F.interpolate(small, size=(32, 48), mode="bilinear", align_corners=False))
    everything_sky = evaluate_loader(net, loader, ("image",), 11, 11, "cpu", progress=False,
                                     decide=lambda z: torch.zeros(z.shape[0], *z.shape[2:], dtype=torch.long))
    m = everything_sky.matrix
    assert int(m[:, 0].sum()) == int(m.sum()) == int((target != 11).sum())
