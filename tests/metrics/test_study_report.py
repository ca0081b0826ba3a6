"""The words and figures of a multi-seed study (iaseg.metrics.study_report); whole studies are
written in tests/metrics/test_study.py."""
import warnings

import numpy as np

from iaseg.metrics.study_report import _seed_band, _verdict


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
