"""rule_for_model: one rule at most, and one console line saying which."""
from types import SimpleNamespace

import pytest
import torch

from iaseg.decision import DecisionRule, DecisionRuleError
from iaseg.decision.apply import describe_rule, rule_for_model

from tests.helpers.decision import NAMES, toy_description


def test_rule_for_model_applies_a_file_or_the_baked_rule_never_both(tmp_path):
    desc = toy_description()
    rule = DecisionRule([0, 0, 0, 0.5, -0.25], NAMES, info={"calibration": {"dataset": "toy", "split": "val"}})
    path = rule.save(tmp_path / "r.json")
    plain = SimpleNamespace(description=desc, decision_rule=None)
    baked = SimpleNamespace(description=desc, decision_rule=rule.to_dict())

    applied = rule_for_model(str(path), plain, "m.pt")
    z = torch.tensor([[1.0, 0.0, 0.0, 0.8, 0.0]]).view(1, 5, 1, 1)
    assert applied.decide(z).item() == 3 and not applied.baked
    assert applied.line == f"applying decision rule {path}: car=+0.5, person=-0.25; calibrated on toy val"

    applied = rule_for_model(None, baked, "m.onnx")
    assert applied.decide is None and applied.baked and "baked" in applied.line and "car=+0.5" in applied.line
    assert torch.equal(applied.rule.offsets, rule.offsets)

    with pytest.raises(DecisionRuleError, match=r"m.onnx already applies a decision rule .*added twice"):
        rule_for_model(str(path), baked, "m.onnx")
    none = rule_for_model(None, plain, "m.pt")
    assert none.rule is None and none.decide is None and none.line is None


def test_describe_rule_states_family_and_promise():
    rule = DecisionRule([0, 0, 0, 0, 0], NAMES, info={"family": "single", "promise": {"summary": "G3 recall +3"}})
    assert describe_rule(rule, "x.json") == "decision rule x.json: no offsets; family single; promise: G3 recall +3"
