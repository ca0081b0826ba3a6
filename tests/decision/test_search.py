"""The search: targets met, objective kept high, deterministic, unreachable targets reported."""
import json

import numpy as np
import pytest
import torch

from iaseg.decision import DecisionRule, calibrate, confusion_from_cache, parse_objective, parse_target
from iaseg.metrics import class_metrics

from tests.helpers.decision import NAMES, miou_of, recall_of, toy_data, toy_description


def test_target_already_met_leaves_offsets_exactly_zero():
    data, desc = toy_data(), toy_description()
    before = confusion_from_cache(data)
    result = calibrate(data, [parse_target("person.recall>=0.3", desc), parse_target("G1.iou>=0.2", desc)],
                       parse_objective("miou", desc))
    assert result.met and result.moves == 0
    assert torch.equal(result.offsets, torch.zeros(5))
    assert torch.equal(result.after, before) and result.objective_after == result.objective_before
    assert result.unmet_lines() == []


@pytest.mark.parametrize("texts", [["G3.recall>=0.65"], ["person.recall>=0.8"],
                                   ["car.precision>=0.75"], ["G3.recall>=0.6", "G3.precision>=0.5"]])
def test_reachable_targets_are_met_on_the_calibration_data(texts):
    data, desc = toy_data(), toy_description()
    targets = [parse_target(t, desc) for t in texts]
    assert not all(t.met(float(t.quantity.value(confusion_from_cache(data)))) for t in targets)
    result = calibrate(data, targets, parse_objective("miou", desc))
    assert result.met, result.unmet_lines()
    # check independently: apply the rule as inference does, count with plain loops
    pred = DecisionRule(result.offsets, NAMES).decide(data.logits.float().T[None, :, :, None])[0, :, 0]
    cm = np.zeros((5, 5), dtype=np.int64)
    np.add.at(cm, (data.labels.long().numpy(), pred.numpy()), 1)
    assert np.array_equal(cm, result.after.numpy())
    for t in targets:
        m = class_metrics(torch.from_numpy(cm))[t.quantity.metric][list(t.quantity.classes)]
        assert t.met(float(m.mean()))
    assert result.objective_after == pytest.approx(miou_of(cm), abs=1e-12)


def test_search_beats_a_uniform_boost_of_the_group():
    """The rule keeps more mean IoU than the simplest alternative: one shared offset for G3."""
    data, desc = toy_data(), toy_description()
    target = parse_target("G3.recall>=0.65", desc)
    result = calibrate(data, [target], parse_objective("miou", desc))
    naive = None
    for step in torch.arange(0.0, 4.0, 0.02):
        b = torch.tensor([0.0, 0.0, 0.0, float(step), float(step)])
        cm = confusion_from_cache(data, b)
        if recall_of(cm, [3, 4]) >= 0.65:
            naive = miou_of(cm)
            break
    assert naive is not None and result.met
    assert result.objective_after >= naive


def test_polishing_raises_the_objective_and_keeps_the_targets():
    data, desc = toy_data(), toy_description()
    targets = [parse_target("person.recall>=0.8", desc)]
    greedy_only = calibrate(data, targets, parse_objective("miou", desc), polish_passes=0)
    logs = []
    full = calibrate(data, targets, parse_objective("miou", desc), log=logs.append)
    assert greedy_only.met and full.met
    assert full.objective_after > greedy_only.objective_after + 1e-3
    assert float(targets[0].quantity.value(full.after)) >= 0.8
    assert any(line.startswith("polish") for line in logs) and any(line.startswith("move") for line in logs)


def test_search_is_deterministic_and_can_maximize_other_objectives():
    data, desc = toy_data(seed=5), toy_description()
    targets = [parse_target("G3.recall>=0.6", desc)]
    a = calibrate(data, targets, parse_objective("miou", desc))
    b = calibrate(data, targets, parse_objective("miou", desc))
    assert torch.equal(a.offsets, b.offsets)
    c = calibrate(data, targets, parse_objective("accuracy", desc))
    assert c.met and c.objective.label == "accuracy"


def test_conflicting_targets_are_reported_as_unreachable():
    data, desc = toy_data(), toy_description()
    targets = [parse_target("person.recall>=0.95", desc), parse_target("person.precision>=0.95", desc)]
    result = calibrate(data, targets, parse_objective("miou", desc))
    assert not result.met
    lines = result.unmet_lines()
    assert lines and all("not reachable on the calibration data" in s for s in lines)
    assert any("person.precision>=0.95" in s for s in lines)
    summary = result.summary()
    assert summary["met"] is False and len(summary["targets"]) == 2
    json.dumps(summary)


def test_target_on_a_class_absent_from_the_data_is_reported():
    data, desc = toy_data(absent=(2,)), toy_description()
    result = calibrate(data, [parse_target("pole.recall>=0.5", desc)], parse_objective("miou", desc))
    assert not result.met
    (line,) = result.unmet_lines()
    assert "pole.recall>=0.5" in line and "no labelled pixels of pole" in line and "undefined" in line


def test_calibrate_rejects_empty_targets():
    with pytest.raises(ValueError, match="at least one target"):
        calibrate(toy_data(100), [], parse_objective("miou", toy_description()))


def test_recall_guard_names_the_classes_of_recall_targets_that_fall():
    """Hand-made confusion matrices: the rule moves car pixels to person (car recall 0.9 -> 0.6)."""
    from iaseg.decision import CalibrationResult, guarded_classes, targeted_classes

    desc = toy_description()
    targets = (parse_target("G3.recall>=0.7", desc), parse_target("pole.precision>=0.5", desc),
               parse_target("sky.recall<=0.99", desc))
    assert targeted_classes(targets) == (0, 2, 3, 4)
    assert guarded_classes(targets) == (2, 3, 4)  # ">=" recall and precision targets: pole, G3's car and person
    before = torch.diag(torch.tensor([10.0, 10, 10, 10, 10]))
    before[3, 3], before[3, 0] = 9, 1          # car recall 0.9
    before[4, 4], before[4, 0] = 5, 5          # person recall 0.5
    after = before.clone()
    after[3, 3], after[3, 4] = 6, 3            # car 0.6
    after[4, 4], after[4, 0] = 9, 1            # person 0.9
    result = CalibrationResult(torch.zeros(5), targets, parse_objective("miou", desc), before, after, True, [],
                               0.0, 0.0)
    assert np.allclose(result.class_recalls((3, 4)), [(3, 0.9, 0.6), (4, 0.5, 0.9)])
    assert np.allclose(result.recall_drops(2.0), [(3, 0.9, 0.6)])
    assert result.recall_drops(30.0) == []  # exactly 30 points: allowed
    assert np.allclose(result.recall_drops(29.9), [(3, 0.9, 0.6)])
