"""Accuracy helpers: agreement of two runners, mean IoU (through the metrics library)."""
import numpy as np
import pytest
import torch

from iaseg.inference import agreement, mean_iou


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


def test_mean_iou_matches_a_float64_numpy_reference_with_nan_for_an_absent_class():
    """Two batches of random logits and labels (class 3 of 4 never labelled nor predicted, void
    255 left out): the confusion matrix (rows = ground truth), per-class IoU and its NaN-aware
    mean agree with numpy in float64."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(2):
        logits = torch.rand(2, 4, 5, 6, generator=g)
        logits[:, 3] = -1.0                              # class 3 never predicted
        label = torch.randint(0, 3, (2, 5, 6), generator=g)
        label[:, 0, :2] = 255
        batches.append(((logits,), label))
    r = mean_iou(lambda x: x, batches, 4, 255)
    conf = np.zeros((4, 4), np.int64)
    for (logits,), label in batches:
        keep = label.numpy() != 255
        np.add.at(conf, (label.numpy()[keep], logits.argmax(1).numpy()[keep]), 1)
    assert r["confusion"].tolist() == conf.tolist()
    tp = np.diag(conf).astype(np.float64)
    with np.errstate(invalid="ignore"):
        iou = tp / (conf.sum(0) + conf.sum(1) - tp)
    assert np.isnan(r["iou"][3]) and np.isnan(iou[3])
    assert r["iou"][:3] == pytest.approx(100 * iou[:3], rel=1e-12)
    assert r["miou"] == pytest.approx(100 * iou[:3].mean(), rel=1e-12)


def test_mean_iou_of_a_runner():
    label = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.tensor([[[[5.0, 0.0], [0.0, 0.0]], [[0.0, 5.0], [5.0, 0.0]], [[0.0] * 2] * 2]])
    r = mean_iou(lambda x: logits, [((torch.zeros(1),), label)], 3, 255)
    assert r["miou"] == pytest.approx(100.0)  # class 2 absent from both: left out
    assert r["confusion"].sum() == 3


def test_guarded_accuracy_takes_a_precomputed_reference_and_format_guard_prints_it():
    """The reference's confusion matrix computed once (as the benchmark does for several int8
    paths) gives the same result as the reference runner; format_guard's line, hand-written."""
    from iaseg.data import load_description
    from iaseg.inference import format_guard, guarded_accuracy, mean_iou

    desc = load_description("camvid")
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 11, (2, 8, 8), generator=g)
    perfect = torch.nn.functional.one_hot(labels, 11).permute(0, 3, 1, 2).float()
    noisy = perfect + 0.9 * torch.rand(perfect.shape, generator=g)
    samples = [((torch.zeros(2, 3, 8, 8),), labels)]
    reference, candidate = (lambda x: perfect), (lambda x: noisy)
    conf = mean_iou(reference, samples, 11, 11)["confusion"]
    by_runner = guarded_accuracy(reference, candidate, samples, desc, allow_drop=True)
    by_matrix = guarded_accuracy(conf, candidate, samples, desc, allow_drop=True)
    assert by_matrix == by_runner and by_matrix["images"] == 2 and by_matrix["reference"]["miou"] == 100
    result = {"reference": {"miou": 66.08, "top_group_recall": 71.25}, "top_group": "G3",
              "candidate": {"miou": 65.74, "top_group_recall": 69.27}, "miou_change": -0.34,
              "top_group_recall_change": -1.98}
    assert format_guard(result, "onnxruntime int8") == (
        "mean IoU fp32 66.08, onnxruntime int8 65.74 (change -0.34 points); "
        "G3 recall fp32 71.25, onnxruntime int8 69.27 (change -1.98 points)")


def test_non_finite_logits_never_agree_nan_against_nan_included():
    x = torch.rand(1, 3, 4, 5)
    logits = torch.randn(1, 3, 4, 5)
    nan = torch.full_like(logits, float("nan"))
    both_nan = agreement(lambda _: nan, lambda _: nan, x)
    assert both_nan["argmax_agreement"] == 0.0 and both_nan["nonfinite"] == 20
    assert both_nan["max_abs_diff"] == float("inf")
    partly = logits.clone()
    partly[0, 1, 0, :2] = float("inf")          # two pixels with an inf logit, the other 18 equal
    r = agreement(lambda _: logits, lambda _: partly, x)
    assert r["argmax_agreement"] == pytest.approx(18 / 20) and r["nonfinite"] == 2
    same = agreement(lambda _: logits, lambda _: logits.clone(), x)
    assert same["argmax_agreement"] == 1.0 and same["nonfinite"] == 0 and same["max_abs_diff"] == 0.0
