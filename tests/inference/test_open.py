"""open_model: a checkpoint or an exported file ready to score, as evaluate and calibrate run it."""
import pytest
import torch

from iaseg.checkpoint import save_checkpoint
from iaseg.inference import export_onnx
from iaseg.inference.open import load_model, open_model

from tests.helpers.speed import batch_inputs, checkpoint_for, random_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("open")
    model = random_model("erfpspnet")
    save_checkpoint(checkpoint_for(model, "erfpspnet"), root / "m.pt")
    return root, model


def test_a_checkpoint_runs_exactly_unless_a_backend_is_named(files):
    root, model = files
    cpu = torch.device("cpu")
    net, meta, ckpt, path = open_model(str(root / "m.pt"), cpu)
    assert isinstance(net, torch.nn.Module) and not net.training and path == "exact fp32 eager"
    assert meta.model_name == "erfpspnet" and "model" in ckpt
    x = batch_inputs("erfpspnet", 2)
    with torch.no_grad():
        assert torch.equal(net(*x), model.eval()(*x))  # the weights as trained, nothing folded
    assert open_model(str(root / "m.pt"), cpu, amp="bf16").path == "exact fp32 eager + bf16 autocast"
    same = load_model(str(root / "m.pt"), cpu)
    assert same[1].to_dict() == meta.to_dict()
    runner = open_model(str(root / "m.pt"), cpu, backend="eager", precision="fp32")
    assert runner.path == runner.model.describe() and runner.checkpoint.keys() == ckpt.keys()
    with pytest.raises(ValueError, match=r"^--precision is for a non-exact --backend"):
        open_model(str(root / "m.pt"), cpu, precision="fp32")
    with pytest.raises(ValueError, match=r"^--amp is for the exact path"):
        open_model(str(root / "m.pt"), cpu, backend="eager", amp="bf16")


def test_an_exported_file_runs_in_its_stored_precision_with_no_checkpoint_dict(files):
    root, model = files
    export_onnx(model, open_model(str(root / "m.pt"), torch.device("cpu")).meta, root / "m.onnx")
    runner, meta, ckpt, path = open_model(str(root / "m.onnx"), torch.device("cpu"))
    assert ckpt == {} and runner.precision == "fp32" and path == runner.describe()
    assert meta.model_name == "erfpspnet"
