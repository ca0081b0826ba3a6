"""The target language and the quantities it names."""
import math

import pytest
import torch

from iaseg.data.description import load_description
from iaseg.decision import DecisionRuleError, Quantity, parse_objective, parse_target
from iaseg.metrics import class_metrics

from tests.helpers.decision import toy_description


def test_parse_target_groups_and_classes_case_insensitive():
    desc = toy_description()
    t = parse_target("G3.recall>=0.65", desc)
    assert str(t) == "G3.recall>=0.65" and t.quantity.classes == (3, 4) and t.op == ">="
    t = parse_target("  PERSON.Recall >= 0.8 ", desc)
    assert t.quantity.label == "person.recall" and t.quantity.classes == (4,) and t.value == 0.8
    t = parse_target("car.precision<=0.9", desc)
    assert t.op == "<=" and t.quantity.metric == "precision"
    assert parse_target("g1.iou=>0.5", desc).op == ">="
    t = parse_target("Mean.IoU>=0.6", desc)  # NAME 'mean': every class, as the reports' mean
    assert t.quantity.label == "mean.iou" and t.quantity.classes == tuple(range(len(desc.classes)))
    city = load_description("cityscapes")
    assert parse_target("traffic_light.recall>=0.5", city).quantity.label == "traffic light.recall"
    t = parse_target("G2.iou>=0", city)
    assert [city.classes[k] for k in t.quantity.classes] == list(city.groups["G2"])


@pytest.mark.parametrize("text,message", [
    ("G4.recall>=0.5", r"unknown group or class 'G4'; groups are \['G1', 'G2', 'G3'\], classes are"),
    ("G3.f1>=0.5", "unknown metric 'f1'"),
    ("G3.recall>0.5", "operator '>' not supported; use >= or <="),
    ("G3.recall>=65", r"outside \[0, 1\]"),
    ("G3.recall>=-0.1", r"outside \[0, 1\]"),
    ("G3.recall>=high", "is not a number"),
    ("G3 recall at least 0.5", "expected NAME.METRIC>=VALUE"),
])
def test_parse_target_errors_are_clear(text, message):
    with pytest.raises(DecisionRuleError, match=message) as e:
        parse_target(text, toy_description())
    assert "\n" not in str(e.value) and repr(text) in str(e.value)


def test_parse_objective():
    desc = toy_description()
    assert parse_objective("miou", desc) == Quantity("mean.iou", "iou", (0, 1, 2, 3, 4))
    assert parse_objective("mean_recall", desc).metric == "recall"
    assert parse_objective("accuracy", desc).classes == ()
    assert parse_objective("G3.iou", desc) == Quantity("G3.iou", "iou", (3, 4))
    for bad, msg in [("mIoU2", "use one of"), ("G3.f1", "unknown metric"), ("G9.iou", "unknown group")]:
        with pytest.raises(DecisionRuleError, match=msg):
            parse_objective(bad, desc)


def test_class_metrics_and_quantities_match_float64_reference():
    cm = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2 absent and never predicted
    m = class_metrics(cm)
    assert torch.allclose(m["recall"][:2], torch.tensor([5 / 6, 3 / 5], dtype=torch.float64))
    assert torch.allclose(m["precision"][:2], torch.tensor([5 / 7, 3 / 4], dtype=torch.float64))
    assert torch.allclose(m["iou"][:2], torch.tensor([5 / 8, 3 / 6], dtype=torch.float64))
    assert all(math.isnan(float(m[k][2])) for k in m)
    miou = Quantity("mean.iou", "iou", (0, 1, 2))
    assert float(miou.value(cm)) == pytest.approx((5 / 8 + 3 / 6) / 2, abs=1e-15)  # NaN left out
    assert float(Quantity("accuracy", "accuracy", ()).value(cm)) == pytest.approx(8 / 11, abs=1e-15)
    batch = torch.stack([cm, cm * 2])
    assert miou.value(batch).shape == (2,)
