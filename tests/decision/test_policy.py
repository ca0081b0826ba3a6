"""The calibration policy: the precision-target recall guard, the matched point's targets."""
import pytest

from iaseg.decision import confusion_from_cache, parse_objective, parse_target
from iaseg.decision.policy import fit_rule, matched_targets

from tests.helpers.decision import miou_of, recall_of, toy_data, toy_description


def test_a_precision_target_that_sinks_its_class_recall_is_refused_naming_class_and_drop():
    data, desc = toy_data(), toy_description()
    plain = confusion_from_cache(data).numpy()
    before = recall_of(plain, [4])
    fit = fit_rule(data, desc, [parse_target("person.precision>=0.9", desc)], parse_objective("miou", desc))
    assert fit.result.met
    after = recall_of(fit.result.after.numpy(), [4])
    assert before - after > 0.02  # the rule buys precision with recall
    assert fit.refused and fit.drops[0][0] == 4
    assert f"person recall by {100 * (before - after):.1f} points" in fit.drop_line
    assert "--allow-class-drop" in fit.drop_line and "\n" not in fit.drop_line
    allowed = fit_rule(data, desc, [parse_target("person.precision>=0.9", desc)], parse_objective("miou", desc),
                       allow_class_drop=True)
    assert not allowed.refused and "written anyway" in allowed.drop_line
    # a generous limit lets it through with no line
    loose = fit_rule(data, desc, [parse_target("person.precision>=0.9", desc)], parse_objective("miou", desc),
                     max_class_drop=100 * (before - after) + 1)
    assert not loose.refused and loose.drop_line is None


def test_matched_targets_floor_the_mean_iou_and_each_class_of_the_objective():
    data, desc = toy_data(), toy_description()
    plain = confusion_from_cache(data).numpy()
    targets, lines = matched_targets(data, desc, parse_objective("G3.recall", desc), 0.5, 2.0)
    assert targets[0].quantity.label == "mean.iou"
    assert targets[0].value == pytest.approx(miou_of(plain) - 0.005, abs=2e-6) and targets[0].value <= miou_of(plain) - 0.005
    assert [t.quantity.classes for t in targets[1:]] == [(3,), (4,)]
    for t, k in zip(targets[1:], (3, 4)):
        assert t.value == pytest.approx(recall_of(plain, [k]) - 0.02, abs=2e-6)
    assert len(lines) == 2 and "--max-miou-drop 0.5" in lines[0]
    fit = fit_rule(data, desc, [], parse_objective("G3.recall", desc), max_miou_drop=0.5)
    assert fit.result.met and miou_of(fit.result.after.numpy()) >= miou_of(plain) - 0.005
    assert recall_of(fit.result.after.numpy(), [3, 4]) > recall_of(plain, [3, 4])
    with pytest.raises(ValueError, match="at least one target"):
        fit_rule(data, desc, [], parse_objective("miou", desc))


def test_calibrate_rule_is_fit_rule_with_the_command_defaults_or_risk_control():
    """The one function `iaseg calibrate` calls: without max_miss_rate the class family's fit_rule
    (same offsets), reporting the targeted classes; with it the single offset of risk control on
    the most important group, its guarantee, or why there is none."""
    import torch

    from iaseg.decision.policy import CalibrationPolicy, calibrate_rule
    from iaseg.decision.risk import control_miss_rate

    from tests.decision.test_risk import _data

    data, desc = toy_data(), toy_description()
    targets = [parse_target("G3.recall>=0.5", desc)]
    fit = calibrate_rule(data, desc, parse_objective("miou", desc), CalibrationPolicy(targets))
    direct = fit_rule(data, desc, targets, parse_objective("miou", desc))
    assert torch.equal(fit.result.offsets, direct.result.offsets) and fit.family == "class"
    assert fit.shown == [3, 4] and fit.guarantee is None and fit.no_offset is None
    images = _data(images=60, n=12000)
    risk = calibrate_rule(images, desc, parse_objective("miou", desc), CalibrationPolicy(max_miss_rate=0.3))
    rc = control_miss_rate(images, [3, 4], 0.3)
    assert risk.family == "single" and risk.shown == [3, 4] and risk.no_offset is None
    assert risk.result.offsets.tolist() == pytest.approx([0, 0, 0, rc.offset, rc.offset])
    assert risk.guarantee == rc.to_dict("G3")
    none = calibrate_rule(images, desc, parse_objective("miou", desc), CalibrationPolicy(max_miss_rate=0.001))
    assert none.no_offset == control_miss_rate(images, [3, 4], 0.001).statement("G3")
