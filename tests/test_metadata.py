"""ModelMetadata: the JSON stored in exported files, and the one place a network's inputs and
their sizes are decided."""
import pytest
import torch

from iaseg.inference import ModelMetadata as PublicModelMetadata
from iaseg.metadata import DECISION_RULE_KEY, ModelMetadata
from iaseg.models import default_spatial_size

from tests.helpers.speed import camvid, meta_for


def test_metadata_json_round_trip():
    meta = meta_for("bierfpspnet").with_(model_options={"final_relu": False, "bins": (0, 2)})
    back = ModelMetadata.from_json(meta.to_json())
    assert back.model_options == {"final_relu": False, "bins": [0, 2]}
    assert back.with_(model_options=meta.model_options) == meta and back.input_names == ("context", "spatial")
    assert PublicModelMetadata is ModelMetadata  # the inference API hands out the same class


def test_the_decision_rule_key_is_the_decision_packages():
    from iaseg.decision import ONNX_METADATA_KEY

    assert DECISION_RULE_KEY == ONNX_METADATA_KEY == "iaseg.decision_rule"


def test_sizes_fill_a_two_input_networks_spatial_size_at_the_papers_ratio():
    one = ModelMetadata("erfpspnet", camvid(), (360, 480))
    two = ModelMetadata("BiERF-PSPNet", camvid(), (360, 720))
    assert one.sizes == ((360, 480),) and one.complete() is one
    assert two.sizes == ((360, 720), (1024, 2048)) and two.spatial_size is None
    assert two.complete().spatial_size == (1024, 2048)
    stated = two.with_(spatial_size=(512, 1024))
    assert stated.sizes == ((360, 720), (512, 1024)) and stated.complete() is stated
    # 360x480 is not the paper's pair: the ratio 1024/360, 2048/720 rounded to multiples of 8
    assert ModelMetadata("bierfpspnet", camvid(), (360, 480)).sizes[1] == default_spatial_size((360, 480)) == (1024, 1368)
    with pytest.raises(ValueError, match="no input size"):
        ModelMetadata("erfpspnet", camvid()).sizes
    assert ModelMetadata("bierfpspnet", camvid()).complete().spatial_size is None  # nothing to scale


def test_at_size_drops_a_spatial_size_that_belonged_to_the_old_size():
    stated = ModelMetadata("bierfpspnet", camvid(), (360, 720), (600, 1200))
    assert stated.at_size((180, 360)).sizes == ((180, 360), (512, 1024))  # default_spatial_size((180, 360))
    assert stated.at_size((180, 360), (200, 400)).spatial_size == (200, 400)
    assert ModelMetadata("erfpspnet", camvid(), (64, 64)).at_size([32, 48]).sizes == ((32, 48),)


def test_example_and_image_inputs_have_the_networks_sizes():
    meta = meta_for("bierfpspnet")  # 64x64 context, 128x128 spatial
    assert [tuple(t.shape) for t in meta.example_inputs(batch=2)] == [(2, 3, 64, 64), (2, 3, 128, 128)]
    images = torch.rand(1, 3, 32, 32)
    ctx, sp = meta.image_inputs(images)
    assert ctx.shape[-2:] == (64, 64) and sp.shape[-2:] == (128, 128)
    expected = torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(ctx, expected.clamp(0, 1))
    (x,) = meta_for("erfpspnet").image_inputs(images)
    assert x.shape[-2:] == (64, 64)
