"""The words and figures of a multi-seed study (iaseg.evidence.study_report); whole studies are
written in tests/evidence/test_study.py."""
import warnings

import numpy as np

from iaseg.evidence.study_report import _seed_band, _verdict


def test_seed_band_is_nan_aware_mean_and_sample_sd() -> None:
    arr = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [5.0, 4.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the all-NaN column must not warn
        mean, sd = _seed_band(arr)
    np.testing.assert_allclose(mean[:2], [3.0, 3.0])
    np.testing.assert_allclose(sd[:2], [2.0, np.sqrt(2.0)])
    assert np.isnan(mean[2]) and np.isnan(sd[2])
    m1, s1 = _seed_band(arr[:1])
    np.testing.assert_array_equal(s1[:2], [0.0, 0.0])


def test_a_difference_is_judged_on_its_t_ci_and_sign_flip_p() -> None:
    # the bootstrap CI (narrow with few seeds) does not enter the verdict
    d = {"t_ci": [-0.004, 0.03], "bootstrap_ci": [0.005, 0.02], "p_value": 0.0625}
    assert _verdict(d) == "not resolved at this precision (CI includes 0)"
    assert _verdict({**d, "t_ci": [0.002, 0.03]}) == "CI excludes 0, not confirmed by the sign-flip test (p >= 0.05)"
    assert _verdict({**d, "t_ci": [0.002, 0.03], "p_value": 0.03125}) == "CI excludes 0"


def test_frontier_figure_says_what_moves_along_the_curves(tmp_path, monkeypatch) -> None:
    """frontier.png names the offset on the set's logits on both panels and the legend, and
    writes a few offsets on the reference curve."""
    import iaseg.metrics.figures as figures
    from iaseg.evidence.study import build_study
    from iaseg.evidence.study_report import plot_frontier

    from tests.evidence.test_study import _run

    for seed in range(2):
        _run(tmp_path, "CE", seed, 0.0)
        _run(tmp_path, "IAL", seed, 0.4)
    study = build_study({m: [tmp_path / m / f"seed{s}" for s in range(2)] for m in ("CE", "IAL")}, n_boot=100)
    seen = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out: seen.setdefault("fig", fig) and out)
    plot_frontier(study, tmp_path / "f.png")
    left, right = seen["fig"].axes[:2]
    for ax in (left, right):
        assert ax.get_title().endswith("offset on G3 logits")
    assert left.get_legend().get_title().get_text() == "curves: offset on G3 logits; numbers: offsets on CE's"
    assert {t.get_text() for t in left.texts} <= {"0", "+1", "+2"} and "0" in {t.get_text() for t in left.texts}
