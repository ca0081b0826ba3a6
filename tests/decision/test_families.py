"""Rule families and their leave-one-part-out comparison, on constructed data."""
import math

import numpy as np
import pytest
import torch

from iaseg.decision import confusion_from_cache, parse_objective, parse_target
from iaseg.decision.cache import pool
from iaseg.decision.families import (_GRID, compare_families, families_markdown, fit_family, group_sweep)
from iaseg.decision.policy import matched_targets

from tests.helpers.decision import miou_of, recall_of, toy_data, toy_description


def _part(seed, strength, images=12, n=2000, seq="S"):
    data = toy_data(n, seed=seed, strength=strength)
    data.images = (torch.arange(n, dtype=torch.int32) * images) // n
    data.info["names"] = [f"{seq}_{i:03d}.png" for i in range(images)]
    return data


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


def test_compare_families_holds_each_part_out_and_scores_it_there():
    desc = toy_description()
    parts = {"A": _part(0, (2.0, 2.0, 2.0, 1.0, 0.8), seq="A"), "B": _part(1, (2.0, 1.5, 2.0, 1.2, 0.6), seq="B"),
             "C": _part(2, (1.5, 2.0, 2.0, 0.8, 1.0), seq="C")}
    comp = compare_families(parts, desc, "G3", max_miou_drop=1.0, promise_boot=50)
    assert set(comp["held_out"]) == {"A", "B", "C"} and comp["meta"]["families"] == ["single", "group", "class", "shrunk"]
    recall = parse_objective("G3.recall", desc)
    for name, rows in comp["held_out"].items():
        others = pool([p for n, p in parts.items() if n != name])
        targets, _ = matched_targets(others, desc, recall, 1.0, 2.0)
        single = fit_family("single", others, desc, targets, recall, improve=True)
        assert rows["single"]["offsets"] == pytest.approx(single.offsets.tolist())
        plain = confusion_from_cache(parts[name]).numpy()
        for fam, r in rows.items():
            cm = confusion_from_cache(parts[name], torch.tensor(r["offsets"])).numpy()
            assert r["miou_cost"] == pytest.approx(100 * (miou_of(plain) - miou_of(cm)))
            assert r["group_recall_gain"] == pytest.approx(100 * (recall_of(cm, [3, 4]) - recall_of(plain, [3, 4])))
            assert isinstance(r["promise_kept"], bool)
        assert rows["single"]["gap_to_single_curve"] <= 1e-9  # on the curve (or under its envelope)
    for fam in comp["mean"]:
        want = np.mean([comp["held_out"][n][fam]["miou_cost"] for n in parts])
        assert comp["mean"][fam]["miou_cost"] == pytest.approx(want)
    table = families_markdown(comp)
    assert table.count("\n") == 2 + 3 * 4 + 4 and "| **mean** | single |" in table
    with pytest.raises(ValueError, match="at least two parts"):
        compare_families({"A": parts["A"]}, desc)
