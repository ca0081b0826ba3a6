"""Label maps for images of any size, against the network run by hand: the training resize,
batches of mixed sizes, --keep-aspect padding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iaseg.data.base import image_to_tensor
from iaseg.data.io import resize_image
from iaseg.inference.predictor import Predictor, aspect_padding

from tests.helpers.speed import SPATIAL, meta_for, random_model


def pil_input(image, size):
    """The training resize (iaseg.data.io.resize_image: PIL bilinear, antialiased) as a tensor."""
    return torch.from_numpy(resize_image(image, size).copy()).permute(2, 0, 1)[None].float() / 255


def by_hand(model, name, image, size):
    inputs = [pil_input(image, size)]
    if name == "bierfpspnet":
        inputs.append(pil_input(image, SPATIAL))
    with torch.no_grad():
        logits = model(*inputs)
    return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False).argmax(1)[0].numpy()


def test_images_of_two_sizes_in_one_batch():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)]
    for name in ("erfpspnet", "bierfpspnet"):
        model = random_model(name)
        predictor = Predictor(model, meta_for(name), torch.device("cpu"))
        labels = predictor(images)
        assert [lab.shape for lab in labels] == [(48, 80), (30, 40)]
        for image, label in zip(images, labels):
            assert np.array_equal(label, by_hand(model, name, image, (64, 64)))
    rule = Predictor(model, meta_for(name), torch.device("cpu"), decide=lambda z: z.argmin(1))
    assert not np.array_equal(rule(images[:1])[0], labels[0])


def test_the_network_sees_the_training_resize():
    """A 3x-size camera image: what the network gets is the datasets' PIL antialiased resize
    exactly (torch's bilinear without antialias differs on many pixels)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (192, 192, 3), dtype=np.uint8)
    seen = []

    def net(*inputs):
        seen.append(inputs)
        return torch.zeros(inputs[0].shape[0], 3, *inputs[0].shape[-2:])

    Predictor(net, meta_for("bierfpspnet").with_(spatial_size=(96, 96)), torch.device("cpu"))([image])
    (context, spatial), = seen
    assert torch.equal(context, image_to_tensor(resize_image(image, (64, 64)))[None])
    assert torch.equal(spatial, image_to_tensor(resize_image(image, (96, 96)))[None])
    naive = F.interpolate(image_to_tensor(image)[None], size=(64, 64), mode="bilinear", align_corners=False)
    assert (naive - context).abs().max() > 0.05


@pytest.mark.parametrize("shape, size, expected", [
    ((48, 64), (64, 64), (8, 8, 0, 0)),       # wider than square: bands top and bottom
    ((90, 160), (360, 480), (15, 15, 0, 0)),  # 16:9 into 4:3: 120 x 160, bands top and bottom
    ((91, 160), (360, 480), (14, 15, 0, 0)),  # odd extra: the larger band at the bottom
    ((60, 80), (360, 480), (0, 0, 0, 0)),     # same aspect: nothing
    ((100, 50), (64, 64), (0, 0, 25, 25)),    # taller: bands left and right
])
def test_aspect_padding(shape, size, expected):
    t, b, l, r = aspect_padding(shape, size)
    assert (t, b, l, r) == expected
    h, w = shape[0] + t + b, shape[1] + l + r
    assert abs(h / w - size[0] / size[1]) < 1 / min(h, w)


def test_keep_aspect_pads_runs_and_crops_back():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)  # 16:9 into a square network
    model = random_model("erfpspnet")
    label, = Predictor(model, meta_for("erfpspnet"), torch.device("cpu"), keep_aspect=True)([image])
    assert label.shape == (36, 64)
    padded = np.concatenate([image[13::-1], image, image[:-15:-1]])  # bands mirrored from the image edges
    with torch.no_grad():
        logits = model(pil_input(padded, (64, 64)))
    full = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    assert np.array_equal(label, full[14:50])
    stretched, = Predictor(model, meta_for("erfpspnet"), torch.device("cpu"))([image])
    assert not np.array_equal(label, stretched)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (500, 1), (1, 500), (8, 4000)])
def test_very_small_and_very_thin_images_get_a_label_map_of_their_own_size(shape):
    """1x1, 2x3 and one-pixel-wide strips: upsampled to the network size, segmented, and the
    logits brought back to the image size (stretched, and with --keep-aspect's padding)."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    model = random_model("erfpspnet")
    stretched, = Predictor(model, meta_for("erfpspnet"), torch.device("cpu"))([image])
    assert stretched.shape == shape and np.array_equal(stretched, by_hand(model, "erfpspnet", image, (64, 64)))
    padded_label, = Predictor(model, meta_for("erfpspnet"), torch.device("cpu"), keep_aspect=True)([image])
    assert padded_label.shape == shape and padded_label.min() >= 0 and padded_label.max() < 11


def test_keep_aspect_bands_leave_no_class_in_the_image():
    """A network that labels dark regions (class 1) after a 9x9 blur, on a bright 16:9 image in a
    square network: black bands would be dark and their class would spread into the image rows
    next to them; bands mirrored from the image keep every pixel the image's own class."""
    def net(x):
        dark = F.avg_pool2d(1.0 - x.mean(1, keepdim=True), 9, stride=1, padding=4, count_include_pad=False)
        return torch.cat([torch.full_like(dark, 0.5), dark], 1)

    image = np.full((36, 64, 3), 220, dtype=np.uint8)
    label, = Predictor(net, meta_for("erfpspnet"), torch.device("cpu"), keep_aspect=True)([image])
    assert label.shape == (36, 64) and (label == 0).all()


def test_a_rule_of_offsets_takes_the_fast_label_maps_and_equals_resize_then_decide():
    """A DecisionRule (per-class offsets) is used as `decide`: the uint8 label maps equal the
    rule applied to the logits resized to the image (the path before upsample_argmax)."""
    from iaseg.decision.rule import DecisionRule

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    model = random_model("erfpspnet")
    offsets = torch.from_numpy(rng.normal(0, 2, 11).astype(np.float32))
    rule = DecisionRule(offsets, [str(k) for k in range(11)])
    label, = Predictor(model, meta_for("erfpspnet"), torch.device("cpu"), decide=rule)([image])
    with torch.no_grad():
        logits = model(pil_input(image, (64, 64)))
    resized = F.interpolate(logits, size=(48, 80), mode="bilinear", align_corners=False)
    assert label.dtype == np.uint8
    assert np.array_equal(label, rule.decide(resized)[0].numpy())
    assert not np.array_equal(label, by_hand(model, "erfpspnet", image, (64, 64)))  # the offsets matter
