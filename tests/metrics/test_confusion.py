"""ConfusionMatrix and class_metrics against numpy/float64 references."""
import math

import numpy as np
import pytest
import torch

from iaseg.metrics import ConfusionMatrix, class_metrics


def reference_matrix(pred, target, c, ignore):
    """Float64/numpy reference: count (gt, pred) pairs one pixel at a time via np.add.at."""
    p, t = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = t != ignore
    m = np.zeros((c, c), np.int64)
    np.add.at(m, (t[keep], p[keep]), 1)
    return m


def test_orientation_rows_are_ground_truth():
    # GT 0 is predicted 1 twice: class 0 has high precision / low recall, class 1 the opposite;
    # a transposed matrix would swap them.
    target = torch.tensor([[0, 0, 0, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.update(pred, target)
    assert cm.matrix.tolist() == [[1, 2], [0, 1]] and cm.matrix.dtype == torch.int64
    assert cm.precision().tolist() == pytest.approx([1.0, 1 / 3])
    assert cm.recall().tolist() == pytest.approx([1 / 3, 1.0])
    assert cm.iou().tolist() == pytest.approx([1 / 3, 1 / 3])
    assert cm.precision().dtype == torch.float64


def test_random_batches_match_numpy_reference_and_metric_formulas():
    g = torch.Generator().manual_seed(0)
    c, ignore = 5, 255
    cm = ConfusionMatrix(c, ignore)
    ref = np.zeros((c, c), np.int64)
    for _ in range(3):
        target = torch.randint(0, c, (2, 7, 9), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.2] = ignore
        pred = torch.randint(0, c, (2, 7, 9), generator=g).to(torch.uint8)  # any integer dtype
        cm.update(pred, target)
        ref += reference_matrix(pred, target, c, ignore)
    np.testing.assert_array_equal(cm.matrix.numpy(), ref)
    tp, gt, pr = np.diag(ref).astype(float), ref.sum(1), ref.sum(0)
    np.testing.assert_allclose(cm.precision().numpy(), tp / pr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cm.recall().numpy(), tp / gt, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cm.iou().numpy(), tp / (gt + pr - tp), rtol=0, atol=1e-15)


def test_ignored_pixels_do_not_count_whatever_the_prediction():
    cm = ConfusionMatrix(3, ignore_index=11)
    target = torch.tensor([[11, 11, 2, 0]])
    cm.update(torch.tensor([[0, 2, 2, 0]]), target)
    assert cm.matrix.sum().item() == 2
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    no_ignore = ConfusionMatrix(3)  # without ignore_index every target must be a class
    with pytest.raises(ValueError, match="target value 11"):
        no_ignore.update(torch.tensor([[0, 2, 2, 0]]), target)


def test_bad_inputs_raise():
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match="prediction value 3"):
        cm.update(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="prediction value -1"):
        cm.update(torch.tensor([0, -1]), torch.tensor([255, 255]))  # even on ignored pixels
    with pytest.raises(ValueError, match="target value 7"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 7]))
    with pytest.raises(TypeError, match="integer class ids"):
        cm.update(torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.tensor([0, 1]), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="is a class id"):
        ConfusionMatrix(3, ignore_index=2)
    assert cm.matrix.sum() == 0  # failed updates add nothing


def test_absent_classes_give_nan_not_zero():
    cm = ConfusionMatrix(4, ignore_index=255)
    # class 2: in GT, never predicted; class 3: predicted, never in GT; class 1: absent from both
    cm.update(torch.tensor([0, 0, 3]), torch.tensor([0, 2, 0]))
    p, r, iou = cm.precision(), cm.recall(), cm.iou()
    assert math.isnan(p[1]) and math.isnan(r[1]) and math.isnan(iou[1])
    assert math.isnan(p[2]) and r[2] == 0 and iou[2] == 0
    assert p[3] == 0 and math.isnan(r[3]) and iou[3] == 0


def test_reset_merge_iadd_device_and_all_reduce_without_process_group():
    a, b = ConfusionMatrix(3, 255, device="cpu"), ConfusionMatrix(3, 255)
    assert a.matrix.device.type == "cpu" and a.matrix.sum() == 0
    a.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    b.update(torch.tensor([2, 2]), torch.tensor([1, 2]))
    total = a.matrix + b.matrix
    a += b
    assert torch.equal(a.matrix, total)
    assert a.all_reduce() is a and torch.equal(a.matrix, total)  # no process group: unchanged
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(ConfusionMatrix(4, 255))
    a.reset()
    assert a.matrix.sum() == 0 and "pixels=0" in repr(a)


def test_class_metrics_accepts_arrays_and_lists():
    m = [[3, 1], [0, 0]]
    out = class_metrics(np.array(m))
    assert out["precision"].tolist() == [1.0, 0.0] and math.isnan(out["recall"][1])
    assert torch.equal(class_metrics(m)["iou"].nan_to_num(-1), out["iou"].nan_to_num(-1))
    with pytest.raises(ValueError, match="square"):
        class_metrics([[1, 2, 3]])
