"""Any network by import path ('package.module:factory'): one-line errors at build, and the whole
tool chain (train with IAL, evaluate, calibrate, predict, save/load, ONNX export) on a tiny
network defined in the tests."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from iaseg.checkpoint import load_checkpoint, model_from_checkpoint
from iaseg.cli import main as cli
from iaseg.models import build_model, example_inputs, input_names, is_import_path, takes_spatial

from tests.helpers.networks import TinyNet

TINY = "tests.helpers.networks:tiny_net"


@pytest.mark.parametrize("name,options,message", [
    ("no_such_pkg.nets:f", {}, "model 'no_such_pkg.nets:f': cannot import module 'no_such_pkg.nets' "
                               "(No module named 'no_such_pkg'; is it installed or on PYTHONPATH?)"),
    ("tests.helpers.networks:nope", {}, "model 'tests.helpers.networks:nope': module 'tests.helpers.networks' "
                                        "has no 'nope'"),
    ("tests.helpers.networks:", {}, "model 'tests.helpers.networks:': expected 'package.module:factory'"),
    (":tiny_net", {}, "model ':tiny_net': expected 'package.module:factory'"),
    ("tests.helpers.networks:NOT_CALLABLE", {}, "model 'tests.helpers.networks:NOT_CALLABLE': 'NOT_CALLABLE' is "
                                                "not callable (a function or class that returns the network)"),
    (TINY, {"depth": 3}, "bad option for model 'tests.helpers.networks:tiny_net': got an unexpected keyword "
                         "argument 'depth' (it is called with num_classes and model.options)"),
    ("tests.helpers.networks:not_a_module", {}, "model 'tests.helpers.networks:not_a_module': the factory returned "
                                                "str, not a torch.nn.Module"),
    ("tests.helpers.networks:half_resolution", {}, "model 'tests.helpers.networks:half_resolution' maps a 1x3x64x64 "
                                                   "input to 1x5x32x32, not 1x5x64x64 (upsample the logits to the "
                                                   "input size inside forward)"),
    ("tests.helpers.networks:wrong_classes", {}, "model 'tests.helpers.networks:wrong_classes' maps a 1x3x64x64 "
                                                 "input to 1x6x64x64, not 1x5x64x64 (5 classes expected)"),
    ("tests.helpers.networks:DictOutput", {}, "model 'tests.helpers.networks:DictOutput' returns dict for a "
                                              "1x3x64x64 input; it must return one tensor of logits 1x5x64x64 "
                                              "(wrap it to pick the logits)"),
    ("tests.helpers.networks:broken", {}, "model 'tests.helpers.networks:broken' fails on a 1x3x64x64 input "
                                          "(RuntimeError: "),
    ("tests.helpers.networks:AuxInTraining", {}, "model 'tests.helpers.networks:AuxInTraining' returns tuple for a "
                                                 "2x3x64x64 input in training mode; it must return one tensor of "
                                                 "logits 2x5x64x64 (wrap it to pick the logits)"),
])
def test_bad_imported_networks_are_one_line(name, options, message):
    with pytest.raises(ValueError) as e:
        build_model(name, 5, **options)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_imported_network_is_built_with_its_options():
    torch.manual_seed(0)
    model = build_model(TINY, 7, width=4)
    assert isinstance(model, TinyNet) and model.training  # the shape check restores the mode
    assert model.head.out_channels == 7 and model.body[0].out_channels == 4
    assert is_import_path(TINY) and not is_import_path("erfpspnet")
    assert input_names(TINY) == ("image",) and not takes_spatial(TINY)
    (x,) = example_inputs(TINY, (32, 48), batch=2)
    assert model.eval()(x).shape == (2, 7, 32, 48)
    # the check ran in both modes, but BN statistics are restored
    assert torch.equal(model.body[1].running_mean, torch.zeros(4)) and int(model.body[1].num_batches_tracked) == 0


@pytest.fixture(scope="module")
def tiny_net_run(tmp_path_factory):
    """`iaseg train` (IAL, one epoch of 4 synthetic images) on the tiny network of the tests."""
    run = tmp_path_factory.mktemp("any_net") / "run"
    assert cli(["train", "--config", "tiny_synthetic", "--out", str(run), "--no-progress",
                "--set", f"model.name={TINY}", "--set", "model.options={width: 6}", "--set", "train.epochs=1",
                "--set", "data.options={length: 4, seed: 0}", "--set", "train.tensorboard=false"]) == 0
    return run


@pytest.mark.filterwarnings("ignore:undefined per-class values")  # one epoch leaves classes unpredicted
def test_imported_network_trains_evaluates_loads_and_exports(tiny_net_run, tmp_path, capsys):
    run = tiny_net_run
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_name"] == TINY and ckpt["model_options"] == {"width": 6}
    assert ckpt["config"]["loss"]["name"] == "ial"
    # save/load: the recorded import path rebuilds the same network with the trained weights
    model, meta = model_from_checkpoint(run / "best.pt")
    assert isinstance(model, TinyNet) and model.body[0].out_channels == 6 and meta.input_names == ("image",)
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["model"][key].float()), key

    assert cli(["evaluate", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    m = np.asarray(report["confusion_matrix"], dtype=np.float64)
    assert m.sum() == report["meta"]["pixels"] > 0
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / m.sum(1)
    g3 = [list(report["per_class"]).index(c) for c in report["meta"]["groups"]["G3"]]
    assert report["groups"]["G3"]["recall"] == pytest.approx(np.nanmean(recall[g3]), abs=1e-12)

    onnx_path = tmp_path / "tiny.onnx"
    assert cli(["export", "--checkpoint", str(run / "best.pt"), "--format", "onnx", "--out", str(onnx_path)]) == 0
    assert "OK (>= 99.9%)" in capsys.readouterr().out
    from iaseg.inference import load_runner

    runner = load_runner(onnx_path)
    assert runner.model_name == TINY and runner.input_names == ("image",)
    x = torch.rand(2, 3, *meta.input_size)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(runner(x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_imported_network_calibrates_and_predicts(tiny_net_run, tmp_path, request, capsys):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("calibrate and predict on the tiny network add ~15 s: run with -m slow")
    run = tiny_net_run
    rule = tmp_path / "rule.json"
    assert cli(["calibrate", "--checkpoint", str(run / "best.pt"), "--target", "G3.recall>=0.2", "--out", str(rule),
                "--device", "cpu", "--no-progress"]) == 0
    assert "G3.recall>=0.2" in capsys.readouterr().out and rule.is_file()
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(image)
    assert cli(["predict", "--checkpoint", str(run / "best.pt"), "--input", str(image), "--out", str(tmp_path / "pred"),
                "--save-labels", "--decision-rule", str(rule), "--no-progress"]) == 0
    label = np.asarray(Image.open(tmp_path / "pred" / "labels" / "img.png"))
    assert label.shape == (40, 56) and label.max() < 11
