"""Offset-sweep frontiers (iaseg.metrics.frontier) against a direct argmax of logits + offsets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iaseg.metrics.frontier import (OffsetSweep, band_recall, curve_span, frontier_curves, load_frontier,
                                    recall_at_iou, recall_envelope, save_frontier)

C, VOID = 5, 5


def _direct(z: torch.Tensor, y: torch.Tensor, members: list[int], delta: float) -> torch.Tensor:
    """The confusion matrix of argmax(z + delta on members), as DecisionRule.decide computes it."""
    b = torch.zeros(C)
    b[members] = delta
    pred = (z + b).argmax(1)
    keep = y != VOID
    return torch.bincount(y[keep] * C + pred[keep], minlength=C * C).view(C, C)


@pytest.mark.parametrize("quantized", [False, True])
def test_every_delta_equals_a_direct_argmax(quantized: bool) -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, C, generator=g) * 2
    if quantized:  # many exact ties between classes and at grid values: argmax's lower-id rule
        z = (z * 4).round() / 4
    y = torch.randint(0, C + 1, (4000,), generator=g)
    deltas = [-1.0, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0]
    sweep = OffsetSweep(C, VOID, {"S": [1, 3], "one": [2]}, deltas)
    for part in torch.split(torch.arange(4000), 1500):  # accumulation over batches
        sweep.update(z[part], y[part])
    for name, members in (("S", [1, 3]), ("one", [2])):
        cms = sweep.confusions(name)
        for k, d in enumerate(deltas):
            assert torch.equal(cms[k], _direct(z, y, members, d)), (name, d)


def test_images_and_pixels_give_the_same_counts_and_void_is_left_out() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, C, 6, 7, generator=g)
    target = torch.randint(0, C + 1, (2, 6, 7), generator=g)
    a = OffsetSweep(C, VOID, {"S": [4]}, [0.0, 1.0])
    a.update(logits, target)
    b = OffsetSweep(C, VOID, {"S": [4]}, [0.0, 1.0])
    b.update(logits.permute(0, 2, 3, 1).reshape(-1, C), target.reshape(-1))
    assert torch.equal(a.confusions("S"), b.confusions("S"))
    assert int(a.confusions("S")[0].sum()) == int((target != VOID).sum())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="every class"):
        OffsetSweep(C, VOID, {"all": range(C)})
    with pytest.raises(ValueError, match="not in 0..4"):
        OffsetSweep(C, VOID, {"x": [7]})
    with pytest.raises(ValueError, match="distinct"):
        OffsetSweep(C, VOID, {"x": [1]}, [0.0, 0.0])
    s = OffsetSweep(C, VOID, {"x": [1]})
    with pytest.raises(ValueError, match="outside"):
        s.update(torch.zeros(3, C), torch.tensor([0, 9, 1]))


def test_file_round_trip_and_curves(tmp_path) -> None:
    classes = ["a", "b", "c", "d", "e"]
    groups = {"G1": ["a", "b"], "G2": ["c"], "G3": ["d", "e"]}
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(3000, C, generator=g), torch.randint(0, C, (3000,), generator=g)
    sweep = OffsetSweep(C, VOID, {"G3": [3, 4]}, [0.0, 0.5, 1.0, 3.0])
    sweep.update(z, y)
    path = save_frontier(tmp_path / "frontier.json", sweep.to_dict(classes))
    data = load_frontier(path)
    assert np.array_equal(data["sets"]["G3"]["confusions"], sweep.confusions("G3").numpy())
    curves = frontier_curves(data, "G3", groups)
    # recall of G3 rises with its offset; at delta 0 the values are those of plain argmax
    assert np.all(np.diff(curves["group_recall"]) >= 0) and curves["group_recall"][-1] > curves["group_recall"][0]
    cm = _direct(z, y, [3, 4], 0.0).double()
    recall = (cm.diagonal() / cm.sum(1)).numpy()
    assert curves["group_recall"][0] == pytest.approx(recall[[3, 4]].mean(), abs=1e-12)
    (tmp_path / "bad.json").write_text('{"format": "x"}')
    with pytest.raises(ValueError, match="not an iaseg frontier"):
        load_frontier(tmp_path / "bad.json")


def test_recall_at_iou() -> None:
    miou = [0.60, 0.61, 0.60, 0.58, 0.50]
    recall = [0.50, 0.55, 0.60, 0.70, 0.80]
    # points with mIoU >= 0.59: recall 0.50, 0.55, 0.60; crossing between 0.60 and 0.58 at 0.59 -> 0.65
    assert recall_at_iou(miou, recall, 0.59) == pytest.approx(0.65)
    assert recall_at_iou(miou, recall, 0.605) == pytest.approx(0.575)  # crossings on both sides of the peak
    assert math.isnan(recall_at_iou(miou, recall, 0.7))
    assert recall_at_iou(miou, recall, 0.4) == pytest.approx(0.80)


def test_recall_envelope_equals_recall_at_iou_at_every_target() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.sort(rng.uniform(0.5, 0.65, 30)), np.sort(rng.uniform(0.4, 0.65, 40))[::-1]])
    y = np.sort(rng.uniform(0.3, 0.9, 70))
    x[[5, 50]], y[17] = np.nan, np.nan  # undefined points are skipped by both
    targets = np.linspace(0.35, 0.7, 301)
    env = recall_envelope(x, y, targets)
    expected = [recall_at_iou(x, y, t) for t in targets]
    np.testing.assert_array_equal(env, expected)  # nan where the curve stays below, as recall_at_iou
    assert np.isnan(env[-1]) and np.all(np.diff(env[np.isfinite(env)]) <= 0)  # non-increasing in the target
    assert curve_span(x) == (np.nanmin(x), np.nanmax(x))


def test_band_recall_of_constructed_frontiers_has_the_known_area() -> None:
    # recall falls linearly as the offset buys mean IoU back: r = 1.5 - iou on [0.55, 0.66]
    iou = np.linspace(0.66, 0.55, 12)
    a = 1.5 - iou
    b = 1.9 - 1.5 * iou                        # b - a = 0.4 - 0.5 iou
    assert band_recall(iou, a, 0.60, 0.64) == pytest.approx(1.5 - 0.62, abs=1e-12)
    # the area between the two frontiers over [0.60, 0.64], per point of mean IoU: 0.4 - 0.5 * 0.62
    assert band_recall(iou, b, 0.60, 0.64) - band_recall(iou, a, 0.60, 0.64) == pytest.approx(0.09, abs=1e-12)
    # a rising branch (negative offsets: less recall and less mean IoU) does not count: the envelope
    # takes the highest recall at a mean IoU of at least the target
    x = np.concatenate([[0.50, 0.58, 0.62], iou[iou < 0.66]])
    y = np.concatenate([[0.20, 0.30, 0.40], 1.5 - iou[iou < 0.66]])
    assert band_recall(x, y, 0.60, 0.64) == pytest.approx(0.88, abs=1e-12)
    assert math.isnan(band_recall(iou, a, 0.60, 0.67))  # the curve never reaches 0.67
    with pytest.raises(ValueError, match="high > low"):
        band_recall(iou, a, 0.64, 0.64)


def test_large_batches_are_swept_in_chunks_with_the_same_counts(monkeypatch):
    """A batch above CHUNK_PIXELS goes through in slices of images; the matrices are the same."""
    import iaseg.metrics.frontier as fr

    gen = torch.Generator().manual_seed(3)
    z, y = torch.randn(5, 4, 6, 7, generator=gen), torch.randint(0, 5, (5, 6, 7), generator=gen)
    whole = fr.OffsetSweep(4, 4, {"s": [1, 3]}, [-0.5, 0.0, 0.5, 1.0])
    whole.update(z, y)
    monkeypatch.setattr(fr, "CHUNK_PIXELS", 2 * 6 * 7)  # two images a call
    calls = []
    chunked = fr.OffsetSweep(4, 4, {"s": [1, 3]}, [-0.5, 0.0, 0.5, 1.0])
    real = fr.sweep_counts
    monkeypatch.setattr(fr, "sweep_counts", lambda s, *a: calls.append(s.shape[0]) or real(s, *a))
    chunked.update(z, y)
    assert sum(calls) == int((y != 4).sum()) and len(calls) == 3
    assert torch.equal(whole.confusions("s"), chunked.confusions("s"))
