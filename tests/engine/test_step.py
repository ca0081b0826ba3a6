"""The network inputs of a batch, and autocast."""
import pytest
import torch

from iaseg.engine.step import autocast_context, model_inputs


def test_model_inputs_take_each_network_its_keys_on_the_device_in_the_memory_format():
    batch = {"image": torch.rand(2, 3, 8, 16), "spatial": torch.rand(2, 3, 16, 32), "label": torch.zeros(2, 8, 16)}
    (x,) = model_inputs(batch, ("image",), torch.device("cpu"))
    assert torch.equal(x, batch["image"])
    ctx, sp = model_inputs(batch, ("context", "spatial"), torch.device("cpu"), channels_last=True)
    assert torch.equal(ctx, batch["image"]) and torch.equal(sp, batch["spatial"])
    assert sp.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="input names"):  # a model name is not its inputs
        model_inputs(batch, "erfpspnet", torch.device("cpu"))


def test_autocast_context():
    a = torch.rand(4, 4)
    with autocast_context(torch.device("cpu"), "off"):
        assert (a @ a).dtype == torch.float32
    with autocast_context(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
