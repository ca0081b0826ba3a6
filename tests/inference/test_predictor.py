"""Label maps for images of any size, against the network run by hand."""
import numpy as np
import torch
import torch.nn.functional as F

from iaseg.inference.predictor import Predictor

from tests.helpers.speed import SPATIAL, random_model


def by_hand(model, name, image, size):
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    inputs = [F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1)]
    if name == "bierfpspnet":
        inputs.append(F.interpolate(x, size=SPATIAL, mode="bilinear", align_corners=False).clamp(0, 1))
    with torch.no_grad():
        logits = model(*inputs)
    return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False).argmax(1)[0].numpy()


def test_images_of_two_sizes_in_one_batch():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)]
    for name in ("erfpspnet", "bierfpspnet"):
        model = random_model(name)
        predictor = Predictor(model, name, (64, 64), SPATIAL if name == "bierfpspnet" else None, torch.device("cpu"))
        labels = predictor(images)
        assert [lab.shape for lab in labels] == [(48, 80), (30, 40)]
        for image, label in zip(images, labels):
            assert np.array_equal(label, by_hand(model, name, image, (64, 64)))
    rule = Predictor(model, name, (64, 64), SPATIAL, torch.device("cpu"), decide=lambda z: z.argmin(1))
    assert not np.array_equal(rule(images[:1])[0], labels[0])
