"""Rule families on constructed data: exact sweeps, the best grid offset, their shapes."""
import pytest
import torch

from iaseg.decision import confusion_from_cache, parse_objective
from iaseg.decision.families import _GRID, fit_family, group_sweep
from iaseg.decision.policy import matched_targets

from tests.helpers.decision import miou_of, recall_of, toy_data, toy_description


def test_group_sweep_is_the_exact_confusion_of_every_offset():
    data = toy_data(3000, seed=2)
    b = torch.tensor([0.0, 0.2, -0.1, 0.0, 0.0])
    cms = group_sweep(data, b, [3, 4], _GRID)
    for j in (0, 30, 60, 61, 100, 180):
        shifted = b.clone()
        shifted[[3, 4]] += _GRID[j]
        assert torch.equal(cms[j], confusion_from_cache(data, shifted)), j


def test_single_family_is_the_best_grid_offset_of_the_matched_point():
    data, desc = toy_data(6000), toy_description()
    objective = parse_objective("G3.recall", desc)
    targets, _ = matched_targets(data, desc, objective, 1.0, 2.0)
    result = fit_family("single", data, desc, targets, objective, improve=True)
    best, best_v = -1.0, None
    for v in _GRID.tolist():  # brute force, float64 references
        cm = confusion_from_cache(data, torch.tensor([0, 0, 0, v, v], dtype=torch.float32)).numpy()
        if miou_of(cm) >= targets[0].value and all(recall_of(cm, t.quantity.classes) >= t.value for t in targets[1:]):
            if recall_of(cm, [3, 4]) > best + 1e-12:
                best, best_v = recall_of(cm, [3, 4]), v
    assert result.met and result.offsets.tolist() == pytest.approx([0, 0, 0, best_v, best_v])
    assert float(objective.value(result.after)) == pytest.approx(best)


def test_group_and_shrunk_families_have_their_shape():
    data, desc = toy_data(4000), toy_description()
    objective = parse_objective("G3.recall", desc)
    targets, _ = matched_targets(data, desc, objective, 1.0, 2.0)
    group = fit_family("group", data, desc, targets, objective, improve=True)
    b = group.offsets.tolist()
    assert group.met and b[0] == b[1] == 0.0 and b[3] == b[4] and b[3] > 0
    per_class = fit_family("class", data, desc, targets, objective, improve=True)
    for s in (0.25,):
        shrunk = fit_family("shrunk", data, desc, targets, objective, improve=True, shrinkage=s)
        want = (1 - s) * per_class.offsets + s * group.offsets
        assert torch.allclose(shrunk.offsets, want) and torch.equal(shrunk.after, confusion_from_cache(data, want))
    with pytest.raises(ValueError, match="shrinkage"):
        fit_family("shrunk", data, desc, targets, objective, shrinkage=1.5)
    with pytest.raises(ValueError, match="unknown rule family"):
        fit_family("pixel", data, desc, targets, objective)
