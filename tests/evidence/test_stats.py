import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from iaseg.evidence.stats import (Interval, PairedDifference, bootstrap_mean_ci, detectable_difference,
                                  hierarchical_bootstrap, paired_differences, seed_summary, sign_flip_p_value,
                                  summary_sentence, t_quantile, t_tail, t_test_power, verdict)
from iaseg.metrics import build_report, class_metrics, summarize
from iaseg.metrics.per_image import PerImageCounts, sequence_blocks
from iaseg.metrics.report import confusion_metrics, group_means

CLASSES = ("Sky", "Road", "Car", "Pedestrian", "Bicyclist")
GROUPS = {"G1": ["Sky"], "G2": ["Road"], "G3": ["Car", "Pedestrian", "Bicyclist"]}


def nan_equal(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# -- Student t ------------------------------------------------------------------------------------

@pytest.mark.parametrize("df, expected", [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157),
                                          (30, 2.042272), (100, 1.983972)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.95, 0.975, 0.995, 0.9995])
def test_t_quantile_and_tail_match_closed_forms(p):
    # df = 1 is Cauchy, df = 2 has a closed form: exact references
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-11)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-11)
    assert t_quantile(1 - p, 4) == -t_quantile(p, 4)
    t = 1.7
    assert t_tail(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-12)
    assert t_tail(t, 2) == pytest.approx(0.5 * (1 - t / math.sqrt(2 + t * t)), rel=1e-12)


def test_t_quantile_edges():
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-6)  # the normal quantile
    for p, df in [(0.0, 3), (1.0, 3), (0.9, 0)]:
        with pytest.raises(ValueError):
            t_quantile(p, df)


# -- one metric over seeds ----------------------------------------------------------------------------

def test_seed_summary_of_a_known_sample():
    s = seed_summary([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (s.mean, s.n) == (3.0, 5) and s.sd == pytest.approx(math.sqrt(2.5), rel=1e-15)
    assert (s.low, s.high) == pytest.approx((3 - half, 3 + half), rel=1e-9)
    assert s.estimate == s.mean
    # numpy reference on another sample, 90 % level, dict input, NaN left out
    v = np.array([0.52, 0.55, 0.49, 0.57])
    s = seed_summary({0: 0.52, 1: 0.55, 2: math.nan, 3: 0.49, 4: 0.57}, confidence=0.90)
    half = t_quantile(0.95, 3) * v.std(ddof=1) / 2
    assert s.n == 4 and s.mean == pytest.approx(v.mean(), rel=1e-15)
    assert (s.low, s.high) == pytest.approx((v.mean() - half, v.mean() + half), rel=1e-12)


def test_seed_summary_of_one_value_and_errors():
    s = seed_summary([0.7])
    assert s.mean == 0.7 and s.n == 1 and math.isnan(s.sd) and math.isnan(s.low) and math.isnan(s.high)
    with pytest.raises(ValueError, match="at least one"):
        seed_summary([math.nan])
    with pytest.raises(ValueError, match="confidence"):
        seed_summary([1, 2], confidence=95)


# -- paired differences -------------------------------------------------------------------------------

def brute_force_p(diffs):
    """Two-sided sign-flip p-value by enumerating every sign pattern, in exact arithmetic."""
    d = [Fraction(str(x)) for x in diffs]
    observed = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_sign_flip_p_value_known_values():
    assert sign_flip_p_value([1, 2, 3, 4, 5]) == (2 / 32, True)
    assert sign_flip_p_value([0.0, 0.0, 0.0]) == (1.0, True)
    assert sign_flip_p_value([-1.5]) == (1.0, True)


@pytest.mark.parametrize("diffs", [
    [0.1, 0.2, -0.3, 1.0],                 # 0.1 + 0.2 - 0.3 is 0 in exact arithmetic only: a float tie
    [0.012, -0.004, 0.021, 0.009, 0.015, -0.002, 0.03],
    [3, -1, 2, 2, -3, 1, 0, 4, -2],        # many exact ties
])
def test_sign_flip_p_value_equals_brute_force_enumeration(diffs):
    p, exact = sign_flip_p_value(diffs)
    assert exact and p == pytest.approx(brute_force_p(diffs), abs=1e-15)


def test_sign_flip_monte_carlo_is_reproducible_and_close_to_exact():
    d = np.random.default_rng(1).normal(0.3, 1.0, size=12)
    exact, _ = sign_flip_p_value(d)
    mc, is_exact = sign_flip_p_value(d, exact_max_n=5, n_perm=40_000, seed=3)
    assert not is_exact and mc == sign_flip_p_value(d, exact_max_n=5, n_perm=40_000, seed=3)[0]
    assert abs(mc - exact) < 4 * math.sqrt(exact * (1 - exact) / 40_000) + 1e-4
    # only the all-plus and all-minus patterns reach the observed sum: p is about 1 / (n_perm + 1)
    assert sign_flip_p_value(np.full(20, 1.0), n_perm=1000)[0] == pytest.approx(1 / 1001, abs=3e-3)


def test_bootstrap_mean_ci_against_numpy_and_reproducible():
    v = np.array([0.8, -0.2, 1.1, 0.4, 0.9, 0.3])
    ci = bootstrap_mean_ci(v, n_boot=5000, seed=7)
    rng = np.random.default_rng(7)
    means = v[rng.integers(0, v.size, size=(5000, v.size))].mean(1)
    assert ci == tuple(np.quantile(means, [0.025, 0.975]))
    assert ci == bootstrap_mean_ci(v, n_boot=5000, seed=7) and ci != bootstrap_mean_ci(v, n_boot=5000, seed=8)
    assert ci[0] < v.mean() < ci[1]
    assert bootstrap_mean_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)
    # many values: the percentile bootstrap CI approaches the t CI
    big = np.random.default_rng(0).normal(0, 1, 400)
    lo, hi = bootstrap_mean_ci(big, n_boot=4000)
    s = seed_summary(big)
    assert hi - lo == pytest.approx(s.high - s.low, rel=0.1)


def test_paired_differences_statistics():
    a = {0: 0.60, 1: 0.62, 2: 0.58, 3: 0.61, 4: 0.63}
    b = {4: 0.61, 3: 0.60, 2: 0.58, 1: 0.59, 0: 0.59}  # another key order: paired by seed, not position
    r = paired_differences(a, b, n_boot=2000, seed=1)
    d = np.array([a[s] - b[s] for s in a])
    assert isinstance(r, PairedDifference) and r.seeds == (0, 1, 2, 3, 4) and r.n == 5
    assert r.diffs == tuple(d) and r.mean == pytest.approx(d.mean(), rel=1e-15)
    assert r.sd == pytest.approx(d.std(ddof=1), rel=1e-14)
    s = seed_summary(d)
    assert r.t_ci == (s.low, s.high)
    assert r.bootstrap_ci == bootstrap_mean_ci(d, n_boot=2000, seed=1) and (r.low, r.high) == r.t_ci
    assert r.p_value == pytest.approx(brute_force_p(d.tolist()), abs=1e-15) and r.exact_p
    assert r.estimate == r.mean


def test_paired_differences_refuse_misaligned_seeds():
    with pytest.raises(ValueError, match=r"missing from b: \[2\], missing from a: \[7\]"):
        paired_differences({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 7: 3.0})
    with pytest.raises(ValueError, match="equal lengths"):
        paired_differences([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="not a mix"):
        paired_differences({0: 1.0}, [1.0])


def test_paired_differences_leave_out_undefined_seeds():
    r = paired_differences({0: 0.5, 1: math.nan, 2: 0.7}, {0: 0.4, 1: 0.3, 2: 0.5})
    assert r.seeds == (0, 2) and r.undefined_seeds == (1,) and r.diffs == pytest.approx((0.1, 0.2))
    with pytest.raises(ValueError, match="no seed"):
        paired_differences([math.nan], [0.1])


# -- power ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("df", [1, 2, 3, 4, 8, 30])
@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0, 4.0, 7.0])
def test_t_test_power_equals_scipys_noncentral_t(df, lam):
    stats = pytest.importorskip("scipy.stats")
    c = stats.t.ppf(0.975, df)
    expected = stats.nct.sf(c, df, lam) + stats.nct.cdf(-c, df, lam) if lam else 0.05
    assert t_test_power(lam, df) == pytest.approx(expected, abs=1e-8)
    assert t_test_power(-lam, df) == pytest.approx(t_test_power(lam, df), abs=1e-12)  # two-sided


@pytest.mark.parametrize("n", [3, 4, 5, 9, 31])  # n = 2 needs lambda = 16, where scipy's nct gives NaN
def test_detectable_difference_is_where_scipys_power_reaches_80_percent(n):
    stats = pytest.importorskip("scipy.stats")
    optimize = pytest.importorskip("scipy.optimize")
    sd = 0.031
    mdd = detectable_difference(sd, n)
    lam = mdd * math.sqrt(n) / sd
    c = stats.t.ppf(0.975, n - 1)
    power = lambda x: stats.nct.sf(c, n - 1, x) + stats.nct.cdf(-c, n - 1, x)  # noqa: E731
    assert power(lam) == pytest.approx(0.8, abs=1e-7)
    assert lam == pytest.approx(optimize.brentq(lambda x: power(x) - 0.8, 0.1, 1.2 * lam, xtol=1e-13), rel=1e-6)
    # above the normal-approximation value (z_0.975 + z_0.8) sd / sqrt(n), approaching it as n grows
    assert mdd > (1.959964 + 0.841621) * sd / math.sqrt(n)


def test_detectable_difference_by_simulation_and_edges():
    # 5 seeds, differences with SD 1: a true difference of mdd is found (t CI excludes 0) 80 % of the time
    rng = np.random.default_rng(3)
    mdd = detectable_difference(1.0, 5)
    d = rng.normal(mdd, 1.0, size=(40_000, 5))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(5))
    assert np.mean(np.abs(t) > t_quantile(0.975, 4)) == pytest.approx(0.8, abs=0.01)
    d = rng.normal(detectable_difference(1.0, 2), 1.0, size=(40_000, 2))  # n = 2 too
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(2))
    assert np.mean(np.abs(t) > t_quantile(0.975, 1)) == pytest.approx(0.8, abs=0.01)
    assert detectable_difference(2.0, 5) == pytest.approx(2 * mdd, rel=1e-12)  # linear in the SD
    assert detectable_difference(1.0, 5, power=0.9) > mdd > detectable_difference(1.0, 5, alpha=0.1)
    assert math.isnan(detectable_difference(1.0, 1)) and math.isnan(detectable_difference(math.nan, 5))
    assert detectable_difference(0.0, 5) == 0.0
    with pytest.raises(ValueError, match="power"):
        detectable_difference(1.0, 5, power=1.0)


def test_paired_differences_carry_the_detectable_difference():
    r = paired_differences([0.61, 0.60, 0.66, 0.62], [0.60, 0.61, 0.62, 0.60])
    assert r.detectable == pytest.approx(detectable_difference(r.sd, 4), rel=1e-15)


# -- words ----------------------------------------------------------------------------------------

def test_summary_sentence_says_when_the_ci_includes_zero():
    ci_zero = Interval(0.012, -0.005, 0.029)
    clear = PairedDifference((0, 1, 2), (0.01, 0.02, 0.03), 0.02, 0.01, 3, (0.005, 0.035), (0.01, 0.03), 0.25, True)
    # the verdict follows the t CI, not the narrower bootstrap CI
    t_only = PairedDifference((0, 1, 2), (0.01, 0.02, 0.03), 0.02, 0.01, 3, (-0.005, 0.045), (0.01, 0.03), 0.25, True)
    text = summary_sentence({"G3 recall, IAL - CE": ci_zero, "mean IoU, IAL - CE": clear, "t": t_only})
    lines = text.splitlines()
    assert lines[0] == ("G3 recall, IAL - CE: +1.2 points (95 % CI -0.5 to +2.9): "
                        "not resolved at this precision (CI includes 0).")
    # 3 seeds: the sign-flip p cannot go below 0.25, which the verdict says
    assert lines[1] == ("mean IoU, IAL - CE: +2.0 points (95 % CI +0.5 to +3.5, p = 0.25, n = 3): "
                        "CI excludes 0, not confirmed by the sign-flip test (p >= 0.05).")
    assert lines[2].endswith("not resolved at this precision (CI includes 0).")
    one = seed_summary([0.4])
    assert summary_sentence({"x": one}) == ("x: +40.0 points (95 % CI undefined, n = 1): "
                                            "no conclusion possible (CI undefined).")


def test_verdict_follows_the_ci_then_the_sign_flip_p():
    assert verdict(-0.01, 0.02, 0.01) == "not resolved at this precision (CI includes 0)"
    assert verdict(0.0, 0.02) == "not resolved at this precision (CI includes 0)"      # a bound at 0 includes it
    assert verdict(0.01, 0.02, 0.03) == "CI excludes 0"
    assert verdict(-0.03, -0.01) == "CI excludes 0"
    assert verdict(0.01, 0.02, 0.0625) == "CI excludes 0, not confirmed by the sign-flip test (p >= 0.05)"
    assert verdict(math.nan, math.nan, 1.0) == "no conclusion possible (CI undefined)"


# -- report metrics of many matrices --------------------------------------------------------------------

def random_matrices(shape, c=len(CLASSES), seed=0):
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 30, size=shape + (c, c)) * (rng.random(shape + (c, c)) < 0.6)
    m[..., 1, :] = 0  # class 1 absent from the ground truth: recall NaN
    m[..., :, 4] = 0  # class 4 never predicted: precision NaN
    return m


def test_class_metrics_on_a_batch_equals_one_matrix_at_a_time():
    batch = random_matrices((3, 4))
    got = class_metrics(torch.as_tensor(batch))
    for i, j in itertools.product(range(3), range(4)):
        one = class_metrics(batch[i, j])
        for k in one:
            assert nan_equal(got[k][i, j], one[k])  # bit for bit
    with pytest.raises(ValueError, match="square"):
        class_metrics(np.zeros(3))


def test_confusion_metrics_equal_build_report_bit_for_bit():
    batch = random_matrices((6,))
    got = confusion_metrics(batch, CLASSES, GROUPS)
    for i in range(6):
        with pytest.warns(Warning):
            report = build_report(batch[i], CLASSES, GROUPS)
        for j, c in enumerate(CLASSES):
            for k in ("precision", "recall", "iou"):
                assert nan_equal(got["per_class"][k][i, j], report["per_class"][c][k])
        for g in GROUPS:
            for k in ("precision", "recall", "iou"):
                assert nan_equal(got["groups"][g][k][i], report["groups"][g][k])
        for k in ("precision", "recall", "iou"):
            assert nan_equal(got["mean"][k][i], report["mean"][k])


def test_group_means_are_the_nan_aware_means_of_the_members():
    values = {"recall": [0.5, math.nan, 0.25, 1.0, math.nan]}
    means = group_means(values, CLASSES, {**GROUPS, "none": ["Road"]})
    assert means["groups"]["G3"]["recall"] == (0.25 + 1.0) / 2
    assert means["groups"]["G1"]["recall"] == 0.5 and math.isnan(means["groups"]["none"]["recall"])
    assert means["mean"]["recall"] == (0.5 + 0.25 + 1.0) / 3
    per_class = {c: {"precision": 0.1 * i, "recall": values["recall"][i], "iou": 0.3} for i, c in enumerate(CLASSES)}
    s = summarize(per_class, GROUPS, warn=False)
    assert s["groups"]["G3"]["recall"] == means["groups"]["G3"]["recall"]
    assert s["mean"]["precision"] == sum(0.1 * i for i in range(5)) / 5


# -- hierarchical bootstrap ------------------------------------------------------------------------------

def names_for(n_images, sequences=("0016E5",)):
    per = -(-n_images // len(sequences))
    return tuple(f"{sequences[i // per]}_{100 + 2 * (i % per):05d}.png" for i in range(n_images))


def run_of(counts, names=None):
    counts = np.asarray(counts)
    return PerImageCounts(names or names_for(counts.shape[0]), counts, CLASSES, 255)


def each_interval(result):
    for c, m in result["per_class"].items():
        for k, v in m.items():
            yield ("per_class", c, k), v
    for g, m in result["groups"].items():
        for k, v in m.items():
            yield ("groups", g, k), v
    for k, v in result["mean"].items():
        yield ("mean", "mean", k), v


def test_one_seed_of_identical_images_collapses_the_ci_to_the_point_value():
    image = random_matrices((), seed=3)
    counts = np.repeat(image[None], 23, axis=0)
    result = hierarchical_bootstrap({0: run_of(counts)}, groups=GROUPS, block_len=4, n_boot=300)
    with pytest.warns(Warning):
        report = build_report(counts.sum(0), CLASSES, GROUPS)
    for (section, name, k), iv in each_interval(result):
        expected = report[section][name][k] if section != "mean" else report["mean"][k]
        assert nan_equal(iv.estimate, expected)
        assert nan_equal(iv.low, expected) and nan_equal(iv.high, expected), (section, name, k)
    assert result["meta"]["blocks"] == 6 and result["meta"]["n_boot"] == 300


def test_identical_methods_give_a_difference_of_exactly_zero():
    runs = {s: run_of(random_matrices((17,), seed=s)) for s in range(4)}
    copy = {s: PerImageCounts(r.names, r.counts.copy(), r.classes, r.ignore_index) for s, r in runs.items()}
    result = hierarchical_bootstrap(runs, copy, groups=GROUPS, block_len=3, n_boot=500)
    assert result["meta"]["difference"]
    for key, iv in each_interval(result):
        if key[1:] in (("Road", "recall"), ("G2", "recall"), ("Bicyclist", "precision")):
            assert math.isnan(iv.estimate) and math.isnan(iv.low)  # undefined for every run
            continue
        assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0), key


def test_estimate_is_the_mean_over_seeds_of_each_runs_report():
    runs = {s: run_of(random_matrices((12,), seed=10 + s)) for s in range(3)}
    other = {s: run_of(random_matrices((12,), seed=20 + s)) for s in range(3)}
    with pytest.warns(Warning):
        reports_a = [build_report(r.total, CLASSES, GROUPS) for r in runs.values()]
        reports_b = [build_report(r.total, CLASSES, GROUPS) for r in other.values()]
    single = hierarchical_bootstrap(runs, groups=GROUPS, n_boot=200)
    pair = hierarchical_bootstrap(runs, other, groups=GROUPS, n_boot=200)
    for k in ("precision", "recall", "iou"):
        a = np.mean([r["groups"]["G3"][k] for r in reports_a])
        b = np.mean([r["groups"]["G3"][k] for r in reports_b])
        assert single["groups"]["G3"][k].estimate == pytest.approx(a, rel=1e-14)
        assert pair["groups"]["G3"][k].estimate == pytest.approx(a - b, rel=1e-12)
        iv = single["groups"]["G3"][k]
        assert iv.low <= iv.estimate <= iv.high and iv.low < iv.high


def test_bootstrap_follows_the_documented_resampling_exactly():
    """Seeds with replacement, then for each drawn seed as many blocks as there are, with
    replacement; the drawn counts pooled, scored as a report, averaged over drawn seeds; the same
    draws for both methods of a pair. Re-done here with plain loops from the same generator."""
    n_seeds, n_boot, block_len = 3, 40, 3
    names = names_for(11, sequences=("0001TP", "Seq05VD"))
    shuffle = np.random.default_rng(5).permutation(11)
    a = {s: run_of(random_matrices((11,), seed=30 + s), names) for s in range(n_seeds)}
    b = {s: run_of(random_matrices((11,), seed=40 + s), names) for s in range(n_seeds)}
    # b lists its images in another order: runs are matched by image name
    b[1] = PerImageCounts(tuple(names[i] for i in shuffle), b[1].counts[shuffle], CLASSES, 255)
    blocks = sequence_blocks(names, block_len)
    rng = np.random.default_rng(9)
    drawn = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    picks = rng.integers(0, len(blocks), size=(n_boot, n_seeds, len(blocks)))
    by_name = {s: dict(zip(r.names, r.counts)) for s, r in b.items()}
    values = []
    for i in range(n_boot):
        per_seed = []
        for j in range(n_seeds):
            images = [names[x] for blk in picks[i, j] for x in blocks[blk]]
            seed = int(drawn[i, j])
            pooled_a = sum(a[seed].counts[names.index(n)] for n in images)
            pooled_b = sum(by_name[seed][n] for n in images)
            with pytest.warns(Warning):
                ra, rb = build_report(pooled_a, CLASSES, GROUPS), build_report(pooled_b, CLASSES, GROUPS)
            per_seed.append((ra["groups"]["G3"]["recall"], rb["groups"]["G3"]["recall"],
                             ra["per_class"]["Car"]["iou"], rb["per_class"]["Car"]["iou"]))
        values.append(np.nanmean(np.array(per_seed), axis=0))
    values = np.array(values)
    result = hierarchical_bootstrap(a, b, groups=GROUPS, block_len=block_len, n_boot=n_boot, seed=9)
    for column, iv in ((0, result["groups"]["G3"]["recall"]), (2, result["per_class"]["Car"]["iou"])):
        diff = values[:, column] - values[:, column + 1]
        assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])), rel=1e-12, abs=1e-15)
    again = hierarchical_bootstrap(a, b, groups=GROUPS, block_len=block_len, n_boot=n_boot, seed=9)
    assert again["groups"]["G3"]["recall"] == result["groups"]["G3"]["recall"]


def test_blocks_of_whole_sequences_give_only_whole_sequence_mixtures():
    # two sequences, every image of a sequence identical, one block per sequence: a resample is
    # AA, AB or BB, so every bootstrap quantile is one of those three values
    seq_a, seq_b = random_matrices((), seed=1), random_matrices((), seed=2)
    counts = np.stack([seq_a] * 6 + [seq_b] * 6)
    names = names_for(12, sequences=("0001TP", "0016E5"))
    result = hierarchical_bootstrap([run_of(counts, names)], block_len=6, n_boot=400, confidence=0.5)
    possible = [confusion_metrics(m, CLASSES)["per_class"]["iou"][2] for m in (2 * seq_a, seq_a + seq_b, 2 * seq_b)]
    iv = result["per_class"]["Car"]["iou"]
    assert any(iv.low == p for p in possible) and any(iv.high == p for p in possible)
    assert result["meta"]["blocks"] == 2


def test_hierarchical_bootstrap_refuses_mismatched_runs():
    run = run_of(random_matrices((5,)))
    with pytest.raises(ValueError, match=r"missing from b: \[1\]"):
        hierarchical_bootstrap({0: run, 1: run}, {0: run, 2: run}, n_boot=10)
    other_images = PerImageCounts(tuple(f"x{i}.png" for i in range(5)), run.counts, CLASSES, 255)
    with pytest.raises(ValueError, match="different images"):
        hierarchical_bootstrap({0: run}, {0: other_images}, n_boot=10)
    other_classes = PerImageCounts(run.names, run.counts, tuple("abcde"), 255)
    with pytest.raises(ValueError, match="different classes"):
        hierarchical_bootstrap([run, other_classes], n_boot=10)
    with pytest.raises(TypeError, match="PerImageCounts"):
        hierarchical_bootstrap({0: run.counts}, n_boot=10)
    with pytest.raises(ValueError, match="n_boot"):
        hierarchical_bootstrap([run], n_boot=0)
