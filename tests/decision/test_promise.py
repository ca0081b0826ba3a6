"""Promise intervals on constructed per-image counts with known answers."""
import numpy as np
import pytest

from iaseg.decision.promise import check_promise, rule_promise

from tests.helpers.decision import miou_of, recall_of, toy_description


def _image(car_hits: int, person_hits: int, sky_to_car: int = 0) -> np.ndarray:
    """One image's confusion matrix: 10 pixels of every class, some car/person pixels missed
    (labelled sky), and some sky pixels labelled car (the price of recall)."""
    cm = np.diag([10.0, 10, 10, 10, 10])
    cm[3, 3], cm[3, 0] = car_hits, 10 - car_hits
    cm[4, 4], cm[4, 0] = person_hits, 10 - person_hits
    cm[0, 0], cm[0, 3] = 10 - sky_to_car, sky_to_car
    return cm


def _effect(plain, ruled):
    return (100 * (miou_of(plain) - miou_of(ruled)), 100 * recall_of(ruled, [3, 4]),
            100 * (recall_of(ruled, [3, 4]) - recall_of(plain, [3, 4])))


def test_no_rule_promises_exactly_nothing():
    plain = np.stack([_image(5 + i % 3, 4) for i in range(12)])
    names = [f"S1_{i:03d}.png" for i in range(12)]
    p = rule_promise(plain, plain, names, toy_description(), "G3", n_boot=200)
    for kind in ("expected", "new_sequence"):
        assert p[kind]["miou_cost"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}
        assert p[kind]["group_recall_gain"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}
    assert "one calibration sequence" in p["summary"] and p["sequences"] == ["S1"] and p["blocks"] == 2


def test_identical_frames_give_a_point_interval_at_the_direct_value():
    plain, ruled = _image(5, 4), _image(8, 7, sky_to_car=10)
    names = [f"S1_{i:03d}.png" for i in range(20)]
    p = rule_promise(np.stack([plain] * 20), np.stack([ruled] * 20), names, toy_description(), "G3", n_boot=100)
    want = _effect(plain, ruled)
    for kind in ("expected", "new_sequence"):
        got = [p[kind][k] for k in ("miou_cost", "group_recall", "group_recall_gain")]
        for iv, w in zip(got, want):
            assert iv["estimate"] == pytest.approx(w) and iv["low"] == pytest.approx(w) and iv["high"] == pytest.approx(w)
    assert want[0] > 0 and want[2] == pytest.approx(30.0)


def test_two_sequences_span_their_own_effects():
    """Sequence A: the rule gains 30 recall points at a cost; sequence B: it changes nothing. A new
    sequence is either (the 90% interval spans both); the pooled estimate lies between."""
    a_plain, a_rule, b = _image(5, 4), _image(8, 7, sky_to_car=10), _image(6, 6)
    names = [f"A_{i:03d}.png" for i in range(10)] + [f"B_{i:03d}.png" for i in range(10)]
    plain = np.stack([a_plain] * 10 + [b] * 10)
    ruled = np.stack([a_rule] * 10 + [b] * 10)
    p = rule_promise(plain, ruled, names, toy_description(), "G3", block_len=5, n_boot=400, seed=1)
    cost_a, _, gain_a = _effect(a_plain, a_rule)
    new = p["new_sequence"]
    assert new["miou_cost"]["low"] == pytest.approx(0.0) and new["miou_cost"]["high"] == pytest.approx(cost_a)
    assert new["group_recall_gain"]["low"] == pytest.approx(0.0)
    assert new["group_recall_gain"]["high"] == pytest.approx(gain_a)
    pooled = _effect(plain.sum(0), ruled.sum(0))
    assert new["miou_cost"]["estimate"] == pytest.approx(pooled[0]) and 0 < pooled[0] < cost_a
    assert p["sequences"] == ["A", "B"] and p["blocks"] == 4 and "2 sequence(s)" in p["summary"]
    # a promise checked against realised counts: inside kept, outside broken
    kept, lines = check_promise(p, b * 10, b * 10, toy_description())
    assert not kept["broken"] and lines[0].startswith("promise kept")
    worse = _image(8, 7, sky_to_car=10); worse[1, 1], worse[1, 0] = 2, 8
    broken, lines = check_promise(p, a_plain * 10, worse * 10, toy_description())
    assert broken["broken"] and not broken["miou_cost"]["kept"] and broken["group_recall_gain"]["kept"]
    assert lines[0].startswith("PROMISE BROKEN") and "OUTSIDE" in lines[0]
    # a harder street: recall level below the interval, but the rule's cost and gain as promised
    hard_plain, hard_rule = _image(1, 1), _image(3, 3, sky_to_car=10)
    level, lines = check_promise(p, hard_plain * 10, hard_rule * 10, toy_description())
    assert not level["group_recall"]["kept"] and not level["broken"] and lines[0].startswith("promise kept")
    assert broken["miou_cost"]["realised"] == pytest.approx(_effect(a_plain, worse)[0])
