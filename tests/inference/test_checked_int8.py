"""Accuracy-checked int8 IRs beside a checkpoint: the weights digest, which IR qualifies and why
not, and load_runner choosing one by default (OpenVINO + NNCF; those tests skip without them)."""
import copy
import shutil

import pytest
import torch

from iaseg.checkpoint import save_checkpoint
from iaseg.inference import load_runner
from iaseg.inference import checked_int8 as ci
from iaseg.inference import openvino as ovb
from iaseg.inference.probe import structured_scenes
from tests.helpers.speed import SIZE, checkpoint_for, meta_for, random_model

needs_nncf = pytest.mark.skipif(not (ovb.openvino_available() and ovb.nncf_available()),
                                reason="openvino and nncf are not installed")


def _guard(passed=True):
    return {"passed": passed, "images": 6, "top_group": "G3", "miou_change": 0.25, "top_group_recall_change": -0.5,
            "reference": {"miou": 60.0, "top_group_recall": 70.0}, "candidate": {"miou": 60.25, "top_group_recall": 69.5}}


def test_weights_digest_follows_the_weights_not_their_storage_dtype():
    model = copy.deepcopy(random_model("erfpspnet"))  # the helper's model is shared: change copies
    digest = ci.checkpoint_weights_digest(model)
    assert len(digest) == 64 and digest == ci.checkpoint_weights_digest(random_model("erfpspnet"))
    halved = copy.deepcopy(model)
    with torch.no_grad():  # values exactly representable in fp16 and fp32 give the same digest
        for p in list(model.parameters()) + list(halved.parameters()):
            p.copy_(p.half().float())
    assert ci.checkpoint_weights_digest(model) == ci.checkpoint_weights_digest(halved)
    with torch.no_grad():
        next(halved.parameters()).view(-1)[0] += 1
    assert ci.checkpoint_weights_digest(model) != ci.checkpoint_weights_digest(halved)


def test_only_a_passed_matching_int8_record_qualifies():
    meta = meta_for("erfpspnet")
    record = ci.accuracy_record(_guard(), "camvid val", "abc")
    assert record["checkpoint_weights"] == "abc" and record["images"] == 6 and record["passed"] is True
    good = meta.with_(precision="int8", accuracy_check=record)
    sizes = (tuple(SIZE),)
    assert ci._mismatch(good, "erfpspnet", "abc", sizes) is None
    cases = [
        (meta.with_(accuracy_check=record), "erfpspnet", "abc", sizes, "not int8"),
        (meta.with_(precision="int8"), "erfpspnet", "abc", sizes, "no accuracy check recorded"),
        (good.with_(accuracy_check=ci.accuracy_record(_guard(False), "x", "abc")), "erfpspnet", "abc", sizes,
         "its accuracy check failed"),
        (good, "erfpspnet", "other", sizes, "made from other weights"),
        (good, "bierfpspnet", "abc", sizes, "a erfpspnet, not bierfpspnet"),
        (good.with_(decision_rule={"offsets": [0.0] * 11}), "erfpspnet", "abc", sizes, "decision rule"),
        (good, "erfpspnet", "abc", ((32, 32),), f"size {SIZE[0]}x{SIZE[1]}"),
    ]
    for m, name, digest, s, why in cases:
        assert why in ci._mismatch(m, name, digest, s)
    assert ci.describe_record(record) == "mean IoU +0.25, G3 recall -0.50 points vs fp32 on 6 images of camvid val"


def test_the_record_survives_the_metadata_round_trip():
    meta = meta_for("erfpspnet").with_(precision="int8", accuracy_check=ci.accuracy_record(_guard(), "d", "abc"))
    assert type(meta).from_json(meta.to_json()) == meta
    assert type(meta).from_json(meta_for("erfpspnet").to_json()).accuracy_check is None


@needs_nncf
def test_load_runner_runs_a_checked_int8_ir_beside_the_checkpoint_by_default(tmp_path):
    model, meta = random_model("erfpspnet"), meta_for("erfpspnet")  # wiring: the accuracy record is given
    ckpt = tmp_path / "ce.pt"
    save_checkpoint(checkpoint_for(model, "erfpspnet"), ckpt)
    assert ci.candidate_paths(ckpt) == [] and load_runner(ckpt).precision != "int8"
    images, _ = structured_scenes(4, SIZE, 11, seed=7)
    ir = ovb.export_openvino(model, meta, tmp_path / "ce.int8.xml", precision="int8",
                             calibration=[(images[i:i + 1],) for i in range(4)])
    assert ci.candidate_paths(ckpt) == [ir]
    # no accuracy check recorded yet: passed over, and the note says why
    runner = load_runner(ckpt)
    assert runner.precision != "int8" and "ce.int8.xml: no accuracy check recorded" in runner.describe()

    digest = ci.checkpoint_weights_digest(model)
    ovb.record_accuracy_check(ir, ci.accuracy_record(_guard(), "camvid val", digest))
    runner = load_runner(ckpt)
    assert (runner.backend, runner.precision, runner.input_size) == ("openvino", "int8", tuple(SIZE))
    assert "the accuracy-checked int8 IR ce.int8.xml" in runner.describe()
    assert "mean IoU +0.25, G3 recall -0.50 points" in runner.describe()
    x = images[:2]
    torch.testing.assert_close(runner(x), load_runner(ir)(x))  # the very file
    assert load_runner(ckpt, precision="int8").precision == "int8"
    # anything explicit bypasses it
    assert load_runner(ckpt, precision="bf16").precision == "bf16"
    assert load_runner(ckpt, backend="openvino").precision != "int8"
    assert load_runner(ckpt, fold_bn=False).backend == "eager"
    with pytest.raises(ValueError, match="int8 from a checkpoint needs calibration inputs or an accuracy-checked "
                                         "int8 IR beside it .*passed over: ce.int8.xml: size 64x64"):
        load_runner(ckpt, precision="int8", input_size=(64, 96))
    other = load_runner(ckpt, input_size=(64, 96))
    assert other.precision != "int8" and other.input_size == (64, 96) and "size 64x64" in other.describe()
    # a failed check, or other weights under the same name, are passed over
    ovb.record_accuracy_check(ir, ci.accuracy_record(_guard(False), "camvid val", digest))
    assert "its accuracy check failed" in load_runner(ckpt).describe()
    ovb.record_accuracy_check(ir, ci.accuracy_record(_guard(), "camvid val", digest))
    retrained = copy.deepcopy(model)
    with torch.no_grad():
        next(retrained.parameters()).view(-1)[0] += 1
    save_checkpoint(checkpoint_for(retrained, "erfpspnet"), ckpt)
    assert "made from other weights" in load_runner(ckpt).describe()
    shutil.copy(ckpt, tmp_path / "other.pt")  # another stem: its own candidates only
    assert ci.candidate_paths(tmp_path / "other.pt") == []
