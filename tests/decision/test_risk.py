"""Risk control of the per-image group miss rate: the losses against DecisionRule.decide, the
thresholds against a direct numpy computation and against MAPIE (skipped when absent)."""
import math

import numpy as np
import pytest
import torch

from iaseg.decision import DecisionRule
from iaseg.decision.risk import control_miss_rate, crc_offset, hb_p_value, ltt_offset, miss_losses

from tests.helpers.decision import NAMES, toy_data

GRID = [round(0.1 * i, 1) for i in range(0, 41)]


def _data(images=30, n=6000, seed=0):
    data = toy_data(n, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    data.images = torch.randint(0, images, (n,), generator=g, dtype=torch.int32)
    data.info["names"] = [f"S{i // 10}_{i:03d}.png" for i in range(images)]
    return data


def test_miss_losses_are_the_group_miss_rate_of_the_rule_per_image():
    data = _data()
    losses, present = miss_losses(data, [3, 4], GRID)
    z, y, img = data.logits.float(), data.labels.long(), data.images.long()
    for j in (0, 5, 17, 40):
        pred = DecisionRule([0, 0, 0, GRID[j], GRID[j]], NAMES).decide(z.T[None, :, :, None])[0, :, 0]
        for row, i in enumerate(present):
            sel = (img == int(i)) & ((y == 3) | (y == 4))
            want = 1.0 - float((pred[sel] == y[sel]).double().mean())
            assert losses[row, j] == pytest.approx(want, abs=1e-12)
    assert (np.diff(losses, axis=1) <= 1e-12).all()  # non-increasing in the offset
    assert losses[:, 0].mean() > losses[:, -1].mean()


def test_crc_and_ltt_thresholds_against_a_direct_computation():
    losses, _ = miss_losses(_data(images=60, n=12000), [3, 4], GRID)
    n = losses.shape[0]
    for alpha in (0.3, 0.35, 0.45):
        bound = (losses.sum(0) + 1) / (n + 1)
        ok = [all(bound[k] <= alpha for k in range(j, len(GRID))) for j in range(len(GRID))]
        want = next((GRID[j] for j in range(len(GRID)) if ok[j]), None)
        assert crc_offset(losses, GRID, alpha) == want
        # LTT: walk down from the largest offset while the p-value rejects at delta
        delta, got = 0.1, None
        for j in reversed(range(len(GRID))):
            r = losses[:, j].mean()
            h = (min(r, alpha) * math.log(min(r, alpha) / alpha) if min(r, alpha) > 0 else 0.0) + \
                (1 - min(r, alpha)) * math.log((1 - min(r, alpha)) / (1 - alpha))
            k = math.ceil(n * r - 1e-12)
            binom = sum(math.comb(n, i) * alpha ** i * (1 - alpha) ** (n - i) for i in range(0, k + 1))
            if min(math.exp(-n * h), math.e * binom, 1.0) > delta:
                break
            got = GRID[j]
        assert ltt_offset(losses, GRID, alpha, delta) == got
        if got is not None and want is not None:
            assert got >= want  # a high-probability bound is stricter than one in expectation
    assert crc_offset(np.ones((10, 3)), [0, 1, 2], 0.5) is None


def test_thresholds_equal_mapie_on_the_same_losses():
    methods = pytest.importorskip("mapie.risk_control.methods")
    fwer = pytest.importorskip("mapie.risk_control.fwer_control")
    losses, _ = miss_losses(_data(images=60, n=12000), [3, 4], GRID)
    n, lambdas = losses.shape[0], np.asarray(GRID)
    for alpha in (0.3, 0.35, 0.45):
        _, r_hat_plus = methods.get_r_hat_plus(losses, lambdas, "crc", None, None, None)
        assert crc_offset(losses, GRID, alpha) == pytest.approx(
            float(methods.find_best_predict_param(lambdas, r_hat_plus, np.array([alpha]))[0]))
        risks = losses.mean(0)
        p = methods.compute_hoeffding_bentkus_p_value(risks, n, alpha)[:, 0]
        assert np.allclose([hb_p_value(float(r), n, alpha) for r in risks], np.minimum(p, 1.0), rtol=1e-9, atol=1e-12)
        order = np.arange(len(GRID))[::-1]  # easiest (largest offset) first: fixed-sequence testing
        valid = fwer.control_fwer(p[order], 0.1, "fixed_sequence")
        want = float(lambdas[order][valid].min()) if len(valid) else None
        assert ltt_offset(losses, GRID, alpha, 0.1) == want


def test_crc_keeps_its_expected_risk_on_exchangeable_images():
    """Monte Carlo: i.i.d. per-image loss curves; calibrate on 40, score a 41st; the average
    loss over 3000 draws stays below alpha (up to Monte Carlo error)."""
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 4, 81)
    alpha, trials, n = 0.25, 3000, 40
    scale = rng.uniform(0.5, 2.0, size=(trials, n + 1, 1))
    curves = np.clip(0.9 * np.exp(-scale * grid), 0, 1) * (rng.random((trials, n + 1, 1)) < 0.8)
    seen = [curves[t, -1, list(grid).index(crc_offset(curves[t, :n], list(grid), alpha))] for t in range(trials)]
    assert np.mean(seen) <= alpha + 3 * np.std(seen) / math.sqrt(trials)
    assert np.mean(seen) > alpha - 0.05  # not trivially conservative


def test_control_miss_rate_states_the_guarantee_and_its_limits():
    data = _data(images=60, n=12000)
    rc = control_miss_rate(data, [3, 4], 0.3)
    losses, _ = miss_losses(data, [3, 4])
    assert rc.offset == crc_offset(losses, list(np.round(np.arange(0, 401) * 0.02, 2)), 0.3)
    assert rc.empirical_risk <= 0.3 and rc.images == losses.shape[0] and rc.sequences == 6
    text = rc.statement("G3")
    assert "expected per-image G3 miss rate <= 0.3 for new images exchangeable" in text
    assert "not exchangeable" in text and "6 sequence(s)" in text
    ltt = control_miss_rate(data, [3, 4], 0.4, delta=0.1)
    assert "miss rate <= 0.4 with probability >= 0.9" in ltt.statement("G3")
    assert ltt.offset >= control_miss_rate(data, [3, 4], 0.4).offset
    # 60 images cannot certify 0.3 with high probability when the best offset's miss rate is ~0.25
    assert control_miss_rate(data, [3, 4], 0.3, delta=0.1).offset is None
    assert control_miss_rate(data, [3, 4], 0.001).offset is None
