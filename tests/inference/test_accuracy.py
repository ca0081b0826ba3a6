"""Accuracy helpers: agreement of two runners, confusion matrix and mean IoU."""
import pytest
import torch

from iaseg.inference import agreement, confusion_matrix, iou_from_confusion, mean_iou


def test_agreement_counts_pixels_and_ties():
    a = torch.tensor([[[[2.0, 0.0]], [[1.0, 0.05]]]])  # 1 x 2 classes x 1 x 2; pixel 2 is a near tie
    b = a.clone()
    b[0, 0, 0, 1] = 0.1  # flips pixel 2, diff 0.1
    r = agreement(lambda x: a, lambda x: b, (torch.zeros(1, 3, 1, 2),))
    assert r["argmax_agreement"] == 0.5 and r["pixels"] == 2 and r["images"] == 1
    assert r["max_abs_diff"] == pytest.approx(0.1) and r["mean_abs_diff"] == pytest.approx(0.1 / 4)
    assert r["near_ties"] == 0.5
    same = agreement(lambda x: a, lambda x: a, [(torch.zeros(1),), (torch.zeros(1),)])
    assert same["argmax_agreement"] == 1.0 and same["images"] == 2 and same["max_abs_diff"] == 0
    with pytest.raises(ValueError, match="shapes differ"):
        agreement(lambda x: a, lambda x: a[:, :1], (torch.zeros(1),))


def test_confusion_matrix_orientation_and_iou():
    label = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    conf = confusion_matrix(pred, label, 3, 255)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # rows = ground truth
    iou = iou_from_confusion(conf)
    assert iou.tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert torch.isnan(iou_from_confusion(torch.zeros(2, 2, dtype=torch.int64))).all()


def test_mean_iou_of_a_runner():
    label = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.tensor([[[[5.0, 0.0], [0.0, 0.0]], [[0.0, 5.0], [5.0, 0.0]], [[0.0] * 2] * 2]])
    r = mean_iou(lambda x: logits, [((torch.zeros(1),), label)], 3, 255)
    assert r["miou"] == pytest.approx(100.0)  # class 2 absent from both: left out
    assert r["confusion"].sum() == 3
