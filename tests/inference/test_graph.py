"""Export-ready graphs: static pyramid pooling."""
import copy

import pytest
import torch

from tests.helpers.speed import SIZE, inputs_for, meta_for, random_model


def test_specialised_pooling_equals_dynamic_pooling_and_checks_size():
    from iaseg.inference import export_ready, specialise_pooling

    for name, size in (("erfpspnet", (64, 96)), ("bierfpspnet", (64, 64))):
        model = random_model(name)
        x = inputs_for(name, batch=1) if size == SIZE else (torch.rand(1, 3, *size),)
        with torch.no_grad():
            ref = model(*x)
            torch.testing.assert_close(specialise_pooling(copy.deepcopy(model), size)(*x), ref)
            torch.testing.assert_close(export_ready(model, size)(*x), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="specialised for 64x96"):
        with torch.no_grad():
            specialise_pooling(copy.deepcopy(random_model("erfpspnet")), (64, 96))(torch.rand(1, 3, 64, 64))
    meta = meta_for("bierfpspnet").with_(input_size=(360, 720), spatial_size=None)
    assert meta.complete().spatial_size == (1024, 2048)
