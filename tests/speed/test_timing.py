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
