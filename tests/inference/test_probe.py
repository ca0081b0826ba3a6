"""Probe scenes: seeded, with class colours shared across seeds."""
import torch

from iaseg.inference.probe import structured_scenes
from iaseg.models import image_inputs


def test_structured_scenes_are_seeded_and_share_colours():
    a_img, a_lab = structured_scenes(2, (32, 48), 5, seed=3)
    b_img, b_lab = structured_scenes(2, (32, 48), 5, seed=3)
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    assert a_img.shape == (2, 3, 32, 48) and 0 <= a_img.min() and a_img.max() <= 1
    assert a_lab.min() >= 0 and a_lab.max() < 5 and len(a_lab.unique()) >= 3
    c_img, c_lab = structured_scenes(2, (32, 48), 5, seed=4)
    assert not torch.equal(a_lab, c_lab)
    # class colours are a property of the class, not of the seed
    col = lambda img, lab, c: img.permute(0, 2, 3, 1)[lab == c].median(0).values  # noqa: E731
    torch.testing.assert_close(col(a_img, a_lab, 1), col(c_img, c_lab, 1), atol=0.12, rtol=0)
    x = image_inputs("bierfpspnet", a_img, spatial_size=(64, 96))
    assert [tuple(t.shape[-2:]) for t in x] == [(32, 48), (64, 96)]
