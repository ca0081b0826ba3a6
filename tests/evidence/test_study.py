"""Multi-seed studies (iaseg.evidence.study) on constructed evaluation folders."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from iaseg.evidence.stats import detectable_difference, t_quantile
from iaseg.evidence.study import _band_match, build_study
from iaseg.evidence.study_report import write_study
from iaseg.metrics import BoundaryMetrics, build_report, write_report
from iaseg.metrics.frontier import (OffsetSweep, band_recall, frontier_curves, load_frontier, recall_at_iou,
                                    save_frontier)
from iaseg.metrics.per_image import save_per_image
from iaseg.metrics.report import ReportError

CLASSES = ["road", "sky", "car"]
GROUPS = {"G1": ["sky"], "G2": ["road"], "G3": ["car"]}
NAMES = [f"0016E5_{i:05d}.png" for i in range(12)]


def _run(root, method: str, seed: int, car_bias: float) -> None:
    """An evaluation folder of a run: logits drawn per (seed), the method's bias on 'car'."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(len(NAMES), 200, 3, generator=g)
    y = torch.randint(0, 3, (len(NAMES), 200), generator=g)
    z[..., 2] += car_bias + 0.8 * (y == 2)  # the method's bias plus some signal
    z[..., 0] += 0.8 * (y == 0)
    pred = z.argmax(-1)
    counts = torch.stack([torch.bincount(y[i] * 3 + pred[i], minlength=9).view(3, 3) for i in range(len(NAMES))])
    run = root / method / f"seed{seed}"
    (run).mkdir(parents=True)
    (run / "config.yaml").write_text(f"train:\n  seed: {seed}\n")
    out = run / "eval_val"
    report = build_report(counts.sum(0), CLASSES, GROUPS)
    bm = BoundaryMetrics(3, None, tolerance=1)
    bm.update(pred.view(len(NAMES), 10, 20), y.view(len(NAMES), 10, 20))
    report["boundary"] = bm.result(CLASSES, GROUPS)
    write_report(report, out)
    save_per_image(out / "per_image.npz", NAMES, counts.numpy(), CLASSES, None)
    sweep = OffsetSweep(3, None, {"G3": [2]}, [-0.5, 0.0, 0.25, 0.5, 1.0, 2.0])
    sweep.update(z.reshape(-1, 3), y.reshape(-1))
    save_frontier(out / "frontier.json", sweep.to_dict(CLASSES))


@pytest.fixture
def study_root(tmp_path):
    for seed in range(4):
        _run(tmp_path, "CE", seed, 0.0)
        _run(tmp_path, "IAL", seed, 0.4)
    return tmp_path


def _report(root, method, seed):
    return json.loads((root / method / f"seed{seed}" / "eval_val" / "report.json").read_text())


def test_means_cis_and_paired_differences_match_numpy(study_root) -> None:
    groups = {m: [study_root / m / f"seed{s}" for s in (3, 1, 0, 2)] for m in ("CE", "IAL")}  # any order
    study = build_study(groups, n_boot=500)
    ce = np.array([_report(study_root, "CE", s)["groups"]["G3"]["recall"] for s in (3, 1, 0, 2)])
    ial = np.array([_report(study_root, "IAL", s)["groups"]["G3"]["recall"] for s in (3, 1, 0, 2)])
    s = study["methods"]["CE"]["summary"]["G3 Recall"]
    half = t_quantile(0.975, 3) * ce.std(ddof=1) / 2
    assert s["mean"] == pytest.approx(ce.mean(), abs=1e-12) and s["sd"] == pytest.approx(ce.std(ddof=1))
    assert (s["low"], s["high"]) == pytest.approx((ce.mean() - half, ce.mean() + half))
    d = study["differences"]["IAL"]["G3 Recall"]
    assert d["seeds"] == (3, 1, 0, 2) and d["diffs"] == pytest.approx(tuple(ial - ce))
    # the bias on 'car' raises its recall on every seed: all 4 diffs positive, exact p = 2/16
    assert all(x > 0 for x in d["diffs"]) and d["p_value"] == pytest.approx(0.125) and d["exact_p"]
    assert any("smallest possible two-sided sign-flip p is 0.125" in line for line in study["summary"])
    # boundary F-scores are summarised like every other metric
    ce_f = np.array([_report(study_root, "CE", s)["boundary"]["boundary_f"]["groups"]["G3"]["f"] for s in (3, 1, 0, 2)])
    assert study["methods"]["CE"]["summary"]["G3 boundary F"]["mean"] == pytest.approx(ce_f.mean())
    boot = study["bootstrap"]["differences"]["IAL"]["G3 Recall"]
    assert boot[0] == pytest.approx((ial - ce).mean(), abs=1e-12) and boot[1] <= boot[0] <= boot[2]


def test_matched_operating_point(study_root) -> None:
    groups = {m: [study_root / m / f"seed{s}" for s in range(4)] for m in ("CE", "IAL")}
    study = build_study(groups, n_boot=200)
    f = study["frontier"]
    ce_iou = np.mean([_report(study_root, "CE", s)["mean"]["iou"] for s in range(4)])
    assert f["target_mean_iou"] == pytest.approx(ce_iou - 0.005)
    data = load_frontier(study_root / "IAL" / "seed2" / "eval_val" / "frontier.json")
    c = frontier_curves(data, "G3", GROUPS)
    assert f["matched_recall"]["IAL"][2] == pytest.approx(recall_at_iou(c["mean_iou"], c["group_recall"], f["target_mean_iou"]))
    # delta 0 of the frontier is the report's plain argmax
    assert c["mean_iou"][1] == pytest.approx(_report(study_root, "IAL", 2)["mean"]["iou"], abs=1e-12)


def test_matched_per_seed_uses_each_seeds_own_reference(study_root, tmp_path) -> None:
    # "mixed": seed 3's bias on 'car' is so large that no offset of the sweep (down to -0.5)
    # brings its mean IoU back to CE seed 3's
    for s in range(4):
        _run(study_root, "mixed", s, 3.0 if s == 3 else 0.4)
    groups = {m: [study_root / m / f"seed{s}" for s in range(4)] for m in ("CE", "mixed")}
    study = build_study(groups, n_boot=200)
    ps = study["frontier"]["per_seed"]
    curve = {}
    for m in ("CE", "mixed"):
        for s in range(4):
            c = frontier_curves(load_frontier(study_root / m / f"seed{s}" / "eval_val" / "frontier.json"), "G3", GROUPS)
            curve[m, s] = c
    for s in range(4):
        ce = _report(study_root, "CE", s)
        assert ps["targets"][s] == pytest.approx(ce["mean"]["iou"] - 0.005, abs=1e-12)
        # CE's plain argmax meets its own target: every CE seed has a matched recall, at least the plain one
        assert ps["matched_recall"]["CE"][s] >= ce["groups"]["G3"]["recall"] - 1e-12
        for m in ("CE", "mixed"):
            c = curve[m, s]
            assert ps["matched_recall"][m][s] == pytest.approx(
                recall_at_iou(c["mean_iou"], c["group_recall"], ps["targets"][s]), nan_ok=True)
    assert math.isnan(ps["matched_recall"]["mixed"][3]) and max(curve["mixed", 3]["mean_iou"]) < ps["targets"][3]
    d = ps["differences"]["mixed"]
    assert d["seeds"] == (0, 1, 2) and d["undefined_seeds"] == (3,)
    assert d["diffs"] == pytest.approx(tuple(ps["matched_recall"]["mixed"][s] - ps["matched_recall"]["CE"][s]
                                             for s in range(3)))
    assert any(n.startswith("per-seed matching: mixed seed(s) 3 do not reach") and n.endswith("which favours mixed")
               for n in study["notes"])
    assert any(line.startswith("Matched per seed (each seed's CE mean IoU - 0.5), mixed - CE, G3 recall:")
               and "n = 3" in line for line in study["summary"])
    md = write_study(study, tmp_path / "out")["md"].read_text()
    assert "| method | seed 0 | seed 1 | seed 2 | seed 3 |" in md
    row = md.split("Matched per seed:")[1].split("| mixed | ")[1].split(" | ")
    assert row[3] == "-" and row[4].splitlines()[0].endswith("n = 3 |")   # seeds 0-2 matched, seed 3 not


def test_write_study_and_refusals(study_root, tmp_path) -> None:
    groups = {m: [study_root / m / f"seed{s}" for s in range(4)] for m in ("CE", "IAL")}
    paths = write_study(build_study(groups, n_boot=200), tmp_path / "out")
    md = paths["md"].read_text()
    assert "## Paired differences against CE" in md and "## Matched operating points" in md
    assert paths["frontier"].stat().st_size > 10_000 and paths["seeds"].is_file()
    assert json.loads(paths["json"].read_text())["reference"] == "CE"
    with pytest.raises(ReportError, match="two runs of seed 0"):
        build_study({"CE": [study_root / "CE" / "seed0", study_root / "CE" / "seed0"]})
    with pytest.raises(ReportError, match="--reference"):
        build_study(groups, reference="nope")


def test_unpaired_seeds_and_missing_files_are_noted(study_root) -> None:
    (study_root / "IAL" / "seed3" / "eval_val" / "per_image.npz").unlink()
    study = build_study({"CE": [study_root / "CE" / f"seed{s}" for s in range(4)],
                         "IAL": [study_root / "IAL" / f"seed{s}" for s in range(1, 4)]}, n_boot=100)
    assert study["differences"]["IAL"]["mean IoU"]["n"] == 3
    assert any("share seeds [1, 2, 3] only" in n for n in study["notes"])
    assert study["bootstrap"] is None and any("no hierarchical bootstrap" in n for n in study["notes"])
    assert not math.isnan(study["frontier"]["differences"]["IAL"]["mean"])


def test_sign_flip_floor_counts_the_seeds_the_methods_share(study_root) -> None:
    # three runs each, but only seeds 1 and 2 in common: the floor is 2 / 2**2, not 2 / 2**3
    study = build_study({"CE": [study_root / "CE" / f"seed{s}" for s in range(3)],
                         "IAL": [study_root / "IAL" / f"seed{s}" for s in range(1, 4)]}, n_boot=100)
    assert study["differences"]["IAL"]["G3 Recall"]["n"] == 2
    assert any("With 2 paired seeds the smallest possible two-sided sign-flip p is 0.5." == line
               for line in study["summary"])
    assert any("n = 2 paired seeds)" in line for line in study["summary"])
    one = build_study({"CE": [study_root / "CE" / "seed0"], "IAL": [study_root / "IAL" / "seed0"]}, n_boot=100)
    assert any("n = 1 paired seed)" in line for line in one["summary"])
    assert "With 1 paired seed the smallest possible two-sided sign-flip p is 1." in one["summary"]


def test_hierarchical_bootstrap_needs_two_seeds(study_root, tmp_path) -> None:
    # one seed: resampling images alone would give an interval blind to seed-to-seed variation
    one = build_study({"CE": [study_root / "CE" / "seed0"], "IAL": [study_root / "IAL" / "seed0"]}, n_boot=100)
    assert one["bootstrap"]["differences"] == {} and one["bootstrap"]["methods"] == {"CE": {}, "IAL": {}}
    assert sum("needs at least 2 seeds" in n for n in one["notes"]) == 3  # CE, IAL, IAL - CE
    assert "Hierarchical bootstrap" not in write_study(one, tmp_path / "one")["md"].read_text()
    # two paired seeds: intervals for both methods and their difference
    two = build_study({m: [study_root / m / f"seed{s}" for s in (0, 1)] for m in ("CE", "IAL")}, n_boot=100)
    est, lo, hi = two["bootstrap"]["differences"]["IAL"]["G3 Recall"]
    assert lo <= est <= hi and two["bootstrap"]["methods"]["CE"]["mean IoU"] is not None
    assert not any("needs at least 2 seeds" in n for n in two["notes"])


def test_trimap_iou_is_summarised_and_plotted_against_the_width(study_root, tmp_path) -> None:
    groups = {m: [study_root / m / f"seed{s}" for s in range(4)] for m in ("CE", "IAL")}
    study = build_study(groups, n_boot=100, frontier=False)
    widths = _report(study_root, "CE", 0)["boundary"]["trimap_iou"]["widths"]
    assert study["trimap_widths"] == widths and len(widths) >= 2
    for i, d in enumerate(widths):
        ial = np.array([_report(study_root, "IAL", s)["boundary"]["trimap_iou"]["groups"]["G3"][i] for s in range(4)])
        ce = np.array([_report(study_root, "CE", s)["boundary"]["trimap_iou"]["mean"][i] for s in range(4)])
        assert study["methods"]["IAL"]["values"][f"G3 trimap IoU d={d}"] == pytest.approx(list(ial), abs=1e-12)
        assert study["methods"]["CE"]["summary"][f"mean trimap IoU d={d}"]["mean"] == pytest.approx(ce.mean())
    paths = write_study(study, tmp_path / "out")
    assert paths["trimap"].stat().st_size > 10_000
    md = paths["md"].read_text()
    assert f"| mean trimap IoU d={widths[0]} |" in md
    # the hierarchical bootstrap resamples confusion counts only: no boundary rows in its table
    boot = md.split("## Hierarchical bootstrap")[1]
    assert "boundary F" not in boot and "trimap" not in boot


def test_a_method_without_frontiers_is_drawn_as_points(study_root, tmp_path) -> None:
    # e.g. CE scored with a decision rule: a report and per-image counts, no frontier.json
    for s in range(3):
        _run(study_root, "rule", s, 0.8)
        (study_root / "rule" / f"seed{s}" / "eval_val" / "frontier.json").unlink()
    groups = {m: [study_root / m / f"seed{s}" for s in range(3)] for m in ("CE", "rule", "IAL")}
    study = build_study(groups, n_boot=100)
    f = study["frontier"]
    assert set(f["curves"]) == {"CE", "IAL"} and set(f["points"]) == {"rule"}
    for s in range(3):
        r = _report(study_root, "rule", s)
        assert f["points"]["rule"][s] == pytest.approx({"mean_iou": r["mean"]["iou"], "group_recall": r["groups"]["G3"]["recall"],
                                                       "group_precision": r["groups"]["G3"]["precision"]}, abs=1e-12)
    assert f["differences"]["rule"] is None and not math.isnan(f["differences"]["IAL"]["mean"])
    assert "rule" not in f["matched_recall"]
    assert any(n.startswith("no frontier for rule: 3 run(s)") and "drawn as points" in n for n in study["notes"])
    paths = write_study(study, tmp_path / "out")
    assert "| rule | no frontier.json (points on the figure) |" in paths["md"].read_text()
    assert paths["frontier"].stat().st_size > 10_000
    # no method with frontiers: no frontier section, one note
    none = build_study({"rule": groups["rule"]}, n_boot=100)
    assert none["frontier"] is None and any(n.startswith("no frontier: 3 run(s)") for n in none["notes"])


def _line(peak: float, level: float, slope: float = 1.0) -> dict[str, list[float]]:
    """A constructed frontier: recall = level - slope * (mean IoU - 0.6), mean IoU from `peak` down 8 points."""
    iou = np.linspace(peak, peak - 0.08, 33)
    return {"mean_iou": iou.tolist(), "group_recall": (level - slope * (iou - 0.6)).tolist()}


def test_band_matching_on_constructed_frontiers_gives_the_known_differences() -> None:
    # 4 seeds, peaks differ by seed and method; IAL's frontier lies 3 points above CE's on seeds 0-2
    # and 1 point on seed 3; the lowest peak of the pair is 0.615 (CE seed 2)
    peaks = {"CE": [0.64, 0.63, 0.615, 0.65], "IAL": [0.625, 0.66, 0.62, 0.64]}
    level = {s: 0.70 + 0.02 * s for s in range(4)}
    gap = [0.03, 0.03, 0.03, 0.01]
    curves = {"CE": {s: _line(peaks["CE"][s], level[s]) for s in range(4)},
              "IAL": {s: _line(peaks["IAL"][s], level[s] + gap[s]) for s in range(4)}}
    notes: list[str] = []
    b = _band_match(curves, "CE", {"IAL": [0, 1, 2, 3]}, 0.02, 500, 0, notes)
    p = b["pairs"]["IAL"]
    assert (p["high"], p["low"]) == pytest.approx((0.615, 0.595), abs=1e-15) and not notes
    assert p["targets"] == pytest.approx([0.615, 0.61, 0.605, 0.6, 0.595], abs=1e-15)
    for s in range(4):  # recall at a target t: level - (t - 0.6); over the band: at its middle, 0.605
        assert p["recall_at_targets"]["CE"][s] == pytest.approx([level[s] - (t - 0.6) for t in p["targets"]], abs=1e-12)
        assert p["band_recall"]["CE"][s] == pytest.approx(level[s] - 0.005, abs=1e-12)
    d = p["difference"]
    assert d["diffs"] == pytest.approx(tuple(gap), abs=1e-12) and d["mean"] == pytest.approx(0.025, abs=1e-12)
    assert d["sd"] == pytest.approx(0.01, abs=1e-12) and d["p_value"] == pytest.approx(0.125)
    assert all(t["diffs"] == pytest.approx(tuple(gap), abs=1e-12) for t in p["target_differences"])
    # unequal slopes: IAL - CE = 0.02 - 0.5 (t - 0.6) on every seed, whose mean over the band is at 0.605
    curves["IAL"] = {s: _line(peaks["IAL"][s], level[s] + 0.02, slope=1.5) for s in range(4)}
    p = _band_match(curves, "CE", {"IAL": [0, 1, 2, 3]}, 0.02, 500, 0, notes)["pairs"]["IAL"]
    assert p["difference"]["mean"] == pytest.approx(0.02 - 0.5 * 0.005, abs=1e-12)
    assert [t["mean"] for t in p["target_differences"]] == pytest.approx([0.02 - 0.5 * (t - 0.6) for t in p["targets"]])
    # a curve that ends 1 point below the peak narrows the band, with a note
    curves["IAL"][1] = {k: v[:5] for k, v in curves["IAL"][1].items()}  # 0.66 down to 0.65
    p = _band_match(curves, "CE", {"IAL": [0, 1, 2, 3]}, 0.02, 500, 0, notes)["pairs"]["IAL"]
    assert p is None and notes[-1].startswith("band matching: the frontiers of IAL and CE share no mean-IoU range")
    curves["IAL"][1] = _line(0.66, 0.8)
    curves["IAL"][1] = {k: v[:23] for k, v in curves["IAL"][1].items()}  # 0.66 down to 0.605
    p = _band_match(curves, "CE", {"IAL": [0, 1, 2, 3]}, 0.02, 500, 0, notes)["pairs"]["IAL"]
    assert (p["high"], p["low"]) == pytest.approx((0.615, 0.605), abs=1e-12) and "narrowed to 1.00 points" in notes[-1]


def test_band_matching_in_a_study_equals_a_direct_computation(study_root, tmp_path) -> None:
    groups = {m: [study_root / m / f"seed{s}" for s in range(4)] for m in ("CE", "IAL")}
    study = build_study(groups, n_boot=200)
    p = study["frontier"]["band"]["pairs"]["IAL"]
    curves = {(m, s): frontier_curves(load_frontier(study_root / m / f"seed{s}" / "eval_val" / "frontier.json"),
                                      "G3", GROUPS) for m in ("CE", "IAL") for s in range(4)}
    high = min(np.nanmax(c["mean_iou"]) for c in curves.values())
    assert p["high"] == pytest.approx(high, abs=1e-15) and p["low"] == pytest.approx(high - 0.02, abs=1e-15)
    direct = {}
    for (m, s), c in curves.items():
        # dense brute force: each segment cut into 2000 pieces, the best recall at mean IoU >= t
        x = np.concatenate([np.linspace(x0, x1, 2001) for x0, x1 in zip(c["mean_iou"][:-1], c["mean_iou"][1:])])
        y = np.concatenate([np.linspace(y0, y1, 2001) for y0, y1 in zip(c["group_recall"][:-1], c["group_recall"][1:])])
        targets = np.linspace(p["low"], p["high"], 401)
        direct[m, s] = np.mean([y[x >= t].max() for t in targets])
        assert p["band_recall"][m][s] == pytest.approx(direct[m, s], abs=2e-4)
        assert p["recall_at_targets"][m][s][0] == pytest.approx(y[x >= high].max(), abs=2e-4)
    d = p["difference"]
    assert tuple(d["seeds"]) == (0, 1, 2, 3)
    assert d["diffs"] == pytest.approx(tuple(direct["IAL", s] - direct["CE", s] for s in range(4)), abs=4e-4)
    assert any(line.startswith("Matched over a band (mean IoU ") for line in study["summary"])
    md = write_study(study, tmp_path / "out")["md"].read_text()
    assert "### Matched over a band of mean IoU" in md and "| IAL - CE | band " in md
    # unresolved differences say the smallest effect the seeds could detect
    g3 = study["differences"]["IAL"]["G3 Precision"]
    assert g3["detectable"] == pytest.approx(detectable_difference(g3["sd"], 4), rel=1e-12)
    assert "| p | n | detectable (80 % power) | verdict |" in md
    assert any("not resolved at this precision (CI includes 0); 80 % power only for effects of at least" in line
               for line in study["summary"])
