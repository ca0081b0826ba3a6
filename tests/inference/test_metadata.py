"""ModelMetadata: the JSON stored in exported files."""
from iaseg.inference import ModelMetadata

from tests.helpers.speed import meta_for


def test_metadata_json_round_trip():
    meta = meta_for("bierfpspnet").with_(model_options={"final_relu": False, "bins": (0, 2)})
    back = ModelMetadata.from_json(meta.to_json())
    assert back.model_options == {"final_relu": False, "bins": [0, 2]}
    assert back.with_(model_options=meta.model_options) == meta and back.input_names == ("context", "spatial")
