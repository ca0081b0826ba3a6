"""The leave-one-part-out comparison of rule families, on constructed parts."""
import numpy as np
import pytest
import torch

from iaseg.decision import confusion_from_cache, parse_objective
from iaseg.decision.cache import pool
from iaseg.decision.comparison import compare_families, families_markdown
from iaseg.decision.families import fit_family
from iaseg.decision.policy import matched_targets

from tests.helpers.decision import miou_of, recall_of, toy_data, toy_description


def _part(seed, strength, images=12, n=2000, seq="S"):
    data = toy_data(n, seed=seed, strength=strength)
    data.images = (torch.arange(n, dtype=torch.int32) * images) // n
    data.info["names"] = [f"{seq}_{i:03d}.png" for i in range(images)]
    return data


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
