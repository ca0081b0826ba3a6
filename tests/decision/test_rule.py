"""The decision rule: exact argmax at b = 0, decide, its JSON file, baking into ONNX."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from iaseg.data.description import load_description
from iaseg.decision import DecisionRule, DecisionRuleError, WithDecisionRule, bake_decision_rule, load_rule

from tests.helpers.decision import NAMES, toy_description


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_zero_offsets_reproduce_argmax_exactly_including_ties(dtype):
    g = torch.Generator().manual_seed(1)
    z = torch.randint(-2, 3, (3, 6, 9, 7), generator=g).to(dtype)  # many exact ties
    z[0, :, 0, 0] = 1.0                                             # all six classes tied
    rule = DecisionRule(torch.zeros(6), [f"c{i}" for i in range(6)])
    out = rule.decide(z)
    assert torch.equal(out, z.argmax(1))
    assert out[0, 0, 0] == 0
    assert rule.is_identity


def test_decide_is_argmax_of_log_probabilities_plus_offsets():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 8, 8, generator=g) * 3
    b = torch.tensor([0.0, 1.5, -0.5, 0.25, 2.0])
    ref = (torch.log_softmax(z.double(), 1) + b.double().view(1, -1, 1, 1)).argmax(1)
    rule = DecisionRule(b, NAMES)
    assert torch.equal(rule.decide(z), ref)
    assert torch.equal(rule(torch.log_softmax(z, 1)), ref)
    assert not torch.equal(ref, z.argmax(1))  # the offsets do change decisions here


def test_decide_small_hand_example():
    z = torch.tensor([1.0, 0.5]).view(1, 2, 1, 1)
    assert int(DecisionRule([0.0, 0.4], ["a", "b"]).decide(z)) == 0
    assert int(DecisionRule([0.0, 0.6], ["a", "b"]).decide(z)) == 1
    with pytest.raises(ValueError, match="3 classes"):
        DecisionRule([0.0, 0.6], ["a", "b"]).decide(torch.zeros(1, 3, 1, 1))
    with pytest.raises(ValueError, match="finite"):
        DecisionRule([0.0, math.inf], ["a", "b"])


def test_json_round_trip(tmp_path):
    rule = DecisionRule(torch.tensor([0.0, 0.1, -1 / 3, 2.5, 1e-7]), NAMES, ["G3.recall>=0.65"],
                        {"result": {"met": True}, "note": "x"})
    path = rule.save(tmp_path / "sub" / "rule.json")
    raw = json.loads(path.read_text())
    assert raw["format"] == "iaseg-decision-rule" and raw["version"] == 1 and raw["classes"] == NAMES
    back = load_rule(path, toy_description())
    assert torch.equal(back.offsets, rule.offsets)
    assert back.class_names == tuple(NAMES) and back.targets == ("G3.recall>=0.65",)
    assert back.info == rule.info and back.to_dict() == rule.to_dict()
    assert not list(tmp_path.glob("sub/.rule.json.*"))  # no temp file left behind
    assert load_rule(path, NAMES).class_names == tuple(NAMES)


def test_load_rule_errors_name_the_file(tmp_path):
    path = DecisionRule(torch.zeros(5), NAMES).save(tmp_path / "rule.json")
    other = load_description("camvid")
    with pytest.raises(DecisionRuleError, match=r"rule\.json.*classes.*Sky"):
        load_rule(path, other)
    with pytest.raises(DecisionRuleError, match="calibrated for classes"):
        load_rule(path, list(reversed(NAMES)))
    assert issubclass(DecisionRuleError, ValueError)  # `iaseg evaluate` prints it as one line
    with pytest.raises(DecisionRuleError, match="missing.json not found"):
        load_rule(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DecisionRuleError, match="bad.json is not valid JSON"):
        load_rule(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DecisionRuleError, match="bad.json: not an iaseg decision rule"):
        load_rule(bad)
GOOD = DecisionRule(torch.zeros(5), NAMES).to_dict()

# (change to a good rule's JSON, expected message after "<file>: "); raw JSON text where a str
BAD_RULES = [
    ({"version": 99}, "decision rule version 99 is not supported (this iaseg reads version 1)"),
    ({"version": True}, "decision rule version True is not supported"),
    ({"version": "1"}, "decision rule version '1' is not supported"),
    ({"offsets": [0, 0]}, "'offsets' must be a list of 5 numbers, one per class"),
    ({"offsets": "0 0 0 0 0"}, "'offsets' must be a list of 5 numbers, one per class"),
    ({"offsets": [0, 0, "x", 0, 0]}, f"offset of {NAMES[2]!r} is 'x', not a number"),
    ({"offsets": [0, 0, "1.5", 0, 0]}, f"offset of {NAMES[2]!r} is '1.5', not a number"),
    ({"offsets": [0, None, 0, 0, 0]}, f"offset of {NAMES[1]!r} is None, not a number"),
    ({"offsets": [0, True, 0, 0, 0]}, f"offset of {NAMES[1]!r} is True, not a number"),
    ({"offsets": [0, 0, 0, 1e308, 0]}, f"offset of {NAMES[3]!r} is 1e+308: offsets must be finite and within +-10000"),
    ({"offsets": [0, 0, 0, 0, -2e4]}, f"offset of {NAMES[4]!r} is -20000.0: offsets must be finite"),
    ('{"format": "iaseg-decision-rule", "version": 1, "classes": ["a", "b"], "offsets": [0, NaN]}',
     "offset of 'b' is nan: offsets must be finite"),
    ('{"format": "iaseg-decision-rule", "version": 1, "classes": ["a", "b"], "offsets": [-Infinity, 0]}',
     "offset of 'a' is -inf: offsets must be finite"),
    ('{"format": "iaseg-decision-rule", "version": 1, "classes": ["a", "b"], "offsets": [1e400, 0]}',
     "offset of 'a' is inf: offsets must be finite"),
    ({"classes": "abcde"}, "'classes' must be a list of distinct class names"),
    ({"classes": [1, 2, 3, 4, 5]}, "'classes' must be a list of distinct class names"),
    ({"classes": ["a", "a", "b", "c", "d"]}, "'classes' must be a list of distinct class names"),
    ({"classes": [], "offsets": []}, "'classes' must be a list of distinct class names"),
    ({"targets": "G3.recall>=0.65"}, "'targets' must be a list of strings, got 'G3.recall>=0.65'"),
    ({"targets": [0.65]}, "'targets' must be a list of strings, got [0.65]"),
    ({"info": [1]}, "'info' must be a mapping, got [1]"),
    ({"note": "x"}, "unknown field(s) ['note']; a decision rule has ['format', 'version', 'classes', 'offsets', "
                    "'targets', 'info']"),
    ({"format": "something-else"}, 'not an iaseg decision rule (no "format": "iaseg-decision-rule")'),
    ("[1, 2]", 'not an iaseg decision rule'),
]


@pytest.mark.parametrize("change, message", BAD_RULES, ids=[str(c)[:50] for c, _ in BAD_RULES])
def test_every_field_of_a_rule_file_is_checked(tmp_path, change, message):
    bad = tmp_path / "bad.json"
    bad.write_text(change if isinstance(change, str) else json.dumps({**GOOD, **change}))
    with pytest.raises(DecisionRuleError) as info:
        load_rule(bad)
    assert str(info.value).startswith(f"{bad}: {message}") and "\n" not in str(info.value)


def test_rule_constructor_bounds_offsets():
    with pytest.raises(ValueError, match=r"finite and within \+-10000"):
        DecisionRule([0.0, 1e308], ["a", "b"])  # float32 inf
    with pytest.raises(ValueError, match=r"finite and within \+-10000"):
        DecisionRule([0.0, 1e5], ["a", "b"])
    assert DecisionRule([0.0, -1e4], ["a", "b"]).offsets.tolist() == [0.0, -1e4]


def test_with_decision_rule_exports_to_onnx_and_matches_decide(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 1)).eval()
    rule = DecisionRule(torch.tensor([0.0, 0.8, -0.3, 1.2, 0.0]), NAMES)
    rule_path = rule.save(tmp_path / "rule.json")
    wrapped = bake_decision_rule(model, rule_path, toy_description())
    assert isinstance(wrapped, WithDecisionRule)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(wrapped(x).argmax(1), rule.decide(model(x)))
        path = tmp_path / "model.onnx"
        torch.onnx.export(wrapped, (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"],
                          opset_version=17)
        ref = rule.decide(model(x))
    onnx.checker.check_model(onnx.load(str(path)))
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    assert np.array_equal(out.argmax(1), ref.numpy())
    assert not np.array_equal(ref.numpy(), model(x).argmax(1).numpy())  # the offsets mattered
