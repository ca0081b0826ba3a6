"""The timing harness (no timing assertions)."""
import pytest
import torch

from iaseg.speed import summarize, time_calls


def test_summarize_against_hand_computed_values():
    s = summarize([0.004, 0.001, 0.003, 0.002, 0.010])
    assert s["median"] == pytest.approx(3.0) and s["min"] == pytest.approx(1.0) and s["max"] == pytest.approx(10.0)
    assert s["p25"] == pytest.approx(2.0) and s["p75"] == pytest.approx(4.0) and s["iqr"] == pytest.approx(2.0)
    assert s["mean"] == pytest.approx(4.0) and s["n"] == 5
    one = summarize([0.5])
    assert one["median"] == one["p25"] == one["p75"] == 500.0 and one["iqr"] == 0
    with pytest.raises(ValueError):
        summarize([])


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    times = time_calls(lambda: calls.append(1), warmup=3, repeats=4, device=torch.device("cpu"))
    assert len(calls) == 7 and len(times) == 4 and all(t >= 0 for t in times)


def test_noise_is_the_iqr_against_the_median():
    from iaseg.speed.timing import NOISE_FRACTION, noise, noise_warning, noisy_rows_note

    assert NOISE_FRACTION == 0.10
    steady = summarize([0.010, 0.0101, 0.0102, 0.0103, 0.0104])   # IQR 0.2 ms of 10.2 ms: 2%
    assert noise(steady) == {"noisy": False, "spread": pytest.approx(0.2 / 10.2)}
    busy = summarize([0.010, 0.010, 0.030, 0.030])                 # IQR 20 ms of a 20 ms median: 100%
    assert noise(busy) == {"noisy": True, "spread": pytest.approx(1.0)}
    assert noise(steady, fraction=0.01)["noisy"]                   # the threshold is a stated fraction
    row = {"name": "eager fp32", "status": "ok", "latency_ms": busy}
    assert noise_warning(row) == ("eager fp32 is noisy: IQR 20.00 ms is 100% of its median 20.00 ms (above 10%): "
                                  "rerun on an idle machine or with more --repeats before comparing it")
    assert noise_warning({**row, "latency_ms": steady}) is None
    assert noise_warning({"name": "x", "status": "failed", "reason": "no"}) is None
    assert noisy_rows_note([{"name": "a", "noisy": True}, {"name": "b", "noisy": False}, {"name": "c"}]) == (
        "\nnoisy (IQR above 10% of the median): a; their ratios to other rows are unreliable")
    assert noisy_rows_note([{"name": "b", "noisy": False}]) == ""
