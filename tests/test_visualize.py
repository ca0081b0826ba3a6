"""Colour masks, overlays (all classes or one group) and legends against numpy by hand."""
import numpy as np
import pytest

from iaseg.data.description import load_description
from iaseg.visualize import blend, blend_table, colorize, draw_legend, highlight_classes, overlay


@pytest.fixture
def desc():
    return load_description("camvid")


def test_overlay_of_one_group_leaves_other_pixels_alone(desc):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    label = rng.integers(0, 12, (20, 30))  # 11 = void
    label[0, 0] = 255
    palette = np.asarray(desc.palette, dtype=np.float64)
    g3 = highlight_classes(desc)
    assert [desc.classes[k] for k in g3] == ["SignSymbol", "Car", "Pedestrian", "Bicyclist"]
    assert highlight_classes(desc, "G1") == tuple(desc.classes.index(c) for c in ("Sky", "Building", "Tree"))
    for only, coloured in ((None, label < 11), (g3, np.isin(label, g3))):
        out = overlay(image, label, desc, only=only)
        expected = image.astype(np.float64).copy()
        idx = np.where(coloured)
        expected[idx] = 0.5 * expected[idx] + 0.5 * palette[label[idx]]
        assert np.array_equal(out, np.round(expected).astype(np.uint8))
    assert np.array_equal(colorize(label, desc)[0, 0], desc.ignore_color)
    with pytest.raises(ValueError, match="no group 'G9'"):
        highlight_classes(desc, "G9")


@pytest.mark.parametrize("alpha", [0.5, 0.3, 0.77, 0.0, 1.0])
def test_lookup_table_blend_equals_the_float_formula(desc, alpha):
    """blend/overlay (one table lookup per pixel and channel) against the float32 blend they
    replace, on every class, void, out-of-range ids and odd alphas (rounding half to even)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    label = rng.integers(-3, 300, (40, 50))
    label[:20] = rng.integers(0, 11, (20, 50))
    for only in (None, (1, 5, 99)):
        color = colorize(label, desc).astype(np.float32)
        img = image.astype(np.float32)
        valid = (label >= 0) & (label < desc.num_classes)
        if only is not None:
            valid &= np.isin(label, only)
        expected = np.where(valid[..., None], (1 - alpha) * img + alpha * color, img).round().clip(0, 255)
        assert np.array_equal(overlay(image, label, desc, alpha, only), expected.astype(np.uint8))
        table = blend_table(desc, alpha, only)
        assert np.array_equal(blend(image[:20], label[:20].astype(np.uint8), table), expected[:20].astype(np.uint8))


def test_legend_is_drawn_in_the_corner_and_keeps_the_size(desc):
    image = np.full((240, 320, 3), 77, np.uint8)
    out = draw_legend(image, desc)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = np.argwhere((out != image).any(-1))
    assert changed[:, 0].max() < 240 // 2 and changed[:, 1].max() < 320 // 2  # a box in the top-left corner
    car = np.asarray(desc.palette[desc.classes.index("Car")], np.uint8)
    assert (out == car).all(-1).sum() > 10  # the swatches carry the palette colours
    only = draw_legend(image, desc, highlight_classes(desc))
    assert (np.argwhere((only != image).any(-1))[:, 0].max()) < changed[:, 0].max()  # 4 lines, not 11
    sky = np.asarray(desc.palette[desc.classes.index("Sky")], np.uint8)
    assert (out == sky).all(-1).sum() > 10 and (only == sky).all(-1).sum() < 3  # no Sky swatch: not in G3
