"""Pooled analysis of several studies (iaseg.evidence.pool) on constructed studies."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from iaseg.evidence.pool import load_study, pool_studies, write_pooled
from iaseg.evidence.stats import detectable_difference, t_quantile
from iaseg.evidence.study import build_study
from iaseg.evidence.study_report import write_study
from iaseg.metrics.report import ReportError
from tests.evidence.test_study import _run


@pytest.fixture(scope="module")
def strata(tmp_path_factory):
    """Two strata (protocols) of constructed runs: A with seeds 0-3, B with seeds 0-2 (the same seed
    numbers, other IAL runs: pairs must not cross strata)."""
    out = {}
    for name, seeds, bias in (("A", range(4), 0.3), ("B", range(3), 0.6)):
        root = tmp_path_factory.mktemp(name)
        for s in seeds:
            _run(root, "CE", s, 0.0)
            _run(root, "IAL", s, bias)
        runs = {m: sorted((root / m).iterdir()) for m in ("CE", "IAL")}
        out[name] = build_study(runs, n_boot=200, bootstrap=False)
    return out


def test_pooled_differences_are_the_within_stratum_pairs_together(strata) -> None:
    pooled = pool_studies(strata, n_boot=500)
    d = pooled["methods"]["IAL"]["pooled"]["G3 Recall"]
    expected = np.concatenate([strata[k]["differences"]["IAL"]["G3 Recall"]["diffs"] for k in ("A", "B")])
    assert d["n"] == 7 and d["diffs"] == pytest.approx(tuple(expected), abs=1e-15)
    assert list(d["seeds"]) == ["A:0", "A:1", "A:2", "A:3", "B:0", "B:1", "B:2"]
    assert d["mean"] == pytest.approx(expected.mean(), abs=1e-15)
    half = t_quantile(0.975, 6) * expected.std(ddof=1) / np.sqrt(7)
    assert d["t_ci"] == pytest.approx((expected.mean() - half, expected.mean() + half), abs=1e-14)
    # exact sign-flip p over all 2^7 sign patterns
    sums = [abs(np.dot(signs, expected)) for signs in itertools.product((1, -1), repeat=7)]
    assert d["p_value"] == pytest.approx(np.mean(np.array(sums) >= abs(expected.sum()) - 1e-12), abs=1e-15)
    assert d["detectable"] == pytest.approx(detectable_difference(expected.std(ddof=1), 7), rel=1e-12)
    # each stratum's own difference is the study's
    assert pooled["methods"]["IAL"]["strata"]["B"]["G3 Recall"] == strata["B"]["differences"]["IAL"]["G3 Recall"]
    # the band-matched recall is pooled the same way, each stratum in its own band
    band = pooled["methods"]["IAL"]["band"]
    per = np.concatenate([strata[k]["frontier"]["band"]["pairs"]["IAL"]["difference"]["diffs"] for k in ("A", "B")])
    assert band["difference"]["diffs"] == pytest.approx(tuple(per), abs=1e-15)
    assert band["bands"]["A"] == [strata["A"]["frontier"]["band"]["pairs"]["IAL"][k] for k in ("low", "high")]
    assert pooled["summary"][0].startswith("IAL - CE, G3 Recall, pooled over A (4 seeds), B (3 seeds), paired within stratum:")


def test_pooled_files_round_trip_and_refusals(strata, tmp_path) -> None:
    paths = {}
    for k, s in strata.items():
        write_study(s, tmp_path / k)
        paths[k] = tmp_path / k
    studies = {k: load_study(p) for k, p in paths.items()}
    out = write_pooled(pool_studies(studies, n_boot=500), tmp_path / "pooled", {k: str(p) for k, p in paths.items()})
    data = json.loads(out["json"].read_text())
    assert data["format"] == "iaseg.pooled/1" and data["sources"]["A"] == str(paths["A"])
    md = out["md"].read_text()
    assert "## IAL - CE" in md and "| G3 Recall | " in md and "| band-matched recall (bands A " in md
    with pytest.raises(ReportError, match="at least two studies"):
        pool_studies({"A": strata["A"]})
    with pytest.raises(ReportError, match="method 'X' is not in every study"):
        pool_studies(strata, methods=["X"])
    other = json.loads(json.dumps(data))  # any dict with another reference
    with pytest.raises(ReportError, match="reference 'IAL', not 'CE'"):
        pool_studies({"A": strata["A"], "B": {**strata["B"], "reference": "IAL"}})
    with pytest.raises(ReportError, match="no study.json"):
        load_study(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text(json.dumps(other))
    with pytest.raises(ReportError, match="not a study.json of `iaseg compare --group`"):
        load_study(tmp_path / "bad.json")
