"""The machine's matmul peak (iaseg.speed.peak) and the '% peak' of benchmark rows (constructed
timings: no assertion on real speed)."""
import pytest
import torch

import iaseg.speed as speed
import iaseg.speed.inference as inference
import iaseg.speed.peak as peak
import iaseg.speed.train as train
from iaseg.speed.peak import add_peak_fractions, format_peak, measure_peak, peak_fraction, percent_of_peak

from tests.helpers.speed import benchmark_args

PEAK = {"fp32": {"status": "ok", "gflops": 100.0, "median_ms": 1.0, "size": 2048, "rounds": 5, "op": "torch.matmul"},
        "bf16": {"status": "ok", "gflops": 400.0, "median_ms": 1.0, "size": 2048, "rounds": 5, "op": "torch.matmul"},
        "int8": {"status": "n/a", "reason": "torch._int_mm int8: not here", "op": "torch._int_mm"}}


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_measure_peak_gives_each_precision_a_throughput_and_is_cached(monkeypatch):
    threads = torch.get_num_threads()
    r = measure_peak("cpu", threads=1, size=96, rounds=2)
    assert torch.get_num_threads() == threads  # restored
    assert list(r) == ["fp32", "bf16", "int8"]
    for d, v in r.items():
        if v["status"] == "n/a":  # int8 where this torch has no u8/s8 GEMM on this CPU
            assert d == "int8" and v["reason"].startswith("torch._int_mm int8")
            continue
        assert v["status"] == "ok" and v["gflops"] > 0 and (v["size"], v["rounds"]) == (96, 2)
        assert v["gflops"] == pytest.approx(2 * 96 ** 3 / (v["median_ms"] / 1000) / 1e9)
        assert v["op"] == ("torch._int_mm" if d == "int8" else "torch.matmul")
    assert r["fp32"]["status"] == "ok" and r["bf16"]["status"] == "ok"

    def never(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(peak, "_measure", never)
    again = measure_peak("cpu", threads=1, size=96, rounds=2)
    assert again == r
    again["fp32"]["gflops"] = -1.0  # a copy: the cache is not changed through it
    assert measure_peak("cpu", threads=1, size=96, rounds=2)["fp32"]["gflops"] == r["fp32"]["gflops"]
    with pytest.raises(AssertionError, match="measured again"):  # another thread count is another machine
        measure_peak("cpu", threads=2, size=96, rounds=2)
    with pytest.raises(ValueError, match="unknown precision"):
        measure_peak("cpu", dtypes=["fp8"])


def test_an_unsupported_precision_is_na_with_the_reason(monkeypatch):
    def no_int_mm(dtype, size, device):
        if dtype == "int8":
            raise RuntimeError("no int8 GEMM here\nsecond line")
        return lambda: torch.zeros(1)

    monkeypatch.setattr(peak, "_matmul", no_int_mm)
    r = measure_peak("cpu", threads=1, dtypes=["fp32", "int8"], size=7, rounds=1)
    assert r["int8"] == {"status": "n/a", "reason": "torch._int_mm int8: no int8 GEMM here", "op": "torch._int_mm"}
    assert r["fp32"]["status"] == "ok" and r["fp32"]["size"] == 7
    assert format_peak(r).endswith("int8 n/a (torch._int_mm int8: no int8 GEMM here)")


def test_a_slow_precision_runs_at_a_smaller_size_and_says_so(monkeypatch):
    """A precision the CPU emulates (bf16 or int8 without the instructions: under 1 GFLOP/s) would
    take minutes at 2048^3: it climbs 256, 512, ... only while the next call is expected (8x per
    doubling) to take at most MAX_CALL_S. A fake clock advances by each fake call's cost."""
    clock = [0.0]
    cost = {"fp32": 1e-11, "bf16": 6e-10}  # seconds per multiply-add: ~100 and ~1.7 GFLOP/s

    def fake_matmul(dtype, size, device):
        def call():
            clock[0] += cost[dtype] * size ** 3
            return torch.zeros(1)
        return call

    monkeypatch.setattr(peak, "_matmul", fake_matmul)
    monkeypatch.setattr(peak.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(peak, "MAX_CALL_S", 0.5)
    r = measure_peak("cpu", threads=1, dtypes=["fp32", "bf16"], size=2048, rounds=3)
    # bf16: 512^3 costs 0.08 s, so 1024^3 (0.64 s) would be over the budget; fp32 reaches 2048
    assert (r["fp32"]["size"], r["bf16"]["size"]) == (2048, 512)
    assert r["bf16"]["median_ms"] == pytest.approx(1000 * 6e-10 * 512 ** 3)
    assert r["bf16"]["gflops"] == pytest.approx(2 / 6e-10 / 1e9)
    assert r["fp32"]["gflops"] == pytest.approx(2 / 1e-11 / 1e9)
    assert format_peak(r) == "peak (matmul, median of 3): fp32 200 GFLOP/s at 2048^3, bf16 3.3 GFLOP/s at 512^3"
    # a size at or below MIN_SIZE is used as given, whatever it costs
    assert measure_peak("cpu", threads=1, dtypes=["bf16"], size=200, rounds=1)["bf16"]["size"] == 200


def test_peak_fraction_matches_each_row_to_the_peak_of_its_precision():
    rows = [{"status": "ok", "precision": "fp32", "gflops_per_s": 25.0},
            {"status": "ok", "precision": "bf16-autocast", "gflops_per_s": 10.0},   # a train row: bf16 peak
            {"status": "ok", "precision": "int8", "gflops_per_s": 50.0},           # no int8 peak measured
            {"status": "ok", "precision": "fp16", "gflops_per_s": 50.0},           # fp16 not measured
            {"status": "failed", "precision": "bf16"}]
    add_peak_fractions(rows, PEAK)
    assert [(r.get("peak_dtype"), r.get("peak_fraction")) for r in rows] == [
        ("fp32", 0.25), ("bf16", 0.025), ("int8", None), ("fp16", None), (None, None)]
    assert "peak_fraction" not in rows[4]
    assert [percent_of_peak(r) for r in rows[:3]] == ["25", "2.5", "-"]
    assert peak_fraction(rows[0], None) == ("fp32", None)
    assert format_peak(PEAK) == ("peak (matmul 2048^3, median of 5): fp32 100 GFLOP/s, bf16 400 GFLOP/s, "
                                 "int8 n/a (torch._int_mm int8: not here)")
    assert format_peak(None).startswith("peak: not measured (--no-peak)")


def test_inference_rows_get_gflops_and_percent_of_peak(monkeypatch):
    """1 ms per call: GFLOP/s = counted GFLOPs per image x batch / 0.001 s; fp32 rows over the
    fp32 peak, the bf16 row over the bf16 peak; the peak is measured once, before the rows."""
    calls = []
    monkeypatch.setattr(speed, "measure_peak", lambda device, threads: calls.append("peak") or PEAK)
    monkeypatch.setattr(inference, "time_calls", lambda fn, warmup, repeats, device: calls.append("row") or [0.001] * 3)
    args = benchmark_args(["--size", "32x32", "--batch", "2", "--backend", "eager", "--precision", "bf16",
                           "--repeats", "3"])
    r = speed.benchmark(args)
    assert calls == ["peak", "row", "row"] and r["peak"] == PEAK
    per_image = r["model"]["gflops_per_image"]
    rows = {x["name"]: x for x in r["results"]}
    assert rows["naive fp32"]["gflops_per_s"] == pytest.approx(per_image * 2 / 0.001)
    assert rows["naive fp32"]["peak_fraction"] == pytest.approx(per_image * 2 / 0.001 / 100)
    assert rows["eager bf16"]["peak_dtype"] == "bf16"
    assert rows["eager bf16"]["peak_fraction"] == pytest.approx(per_image * 2 / 0.001 / 400)
    text = speed.format_report(r)
    assert "peak (matmul 2048^3, median of 5): fp32 100 GFLOP/s" in text and "% peak" in text
    (line,) = [x for x in text.splitlines() if x.strip().startswith("eager bf16")]
    assert f"  {100 * per_image * 2 / 0.001 / 400:.0f}  " in line


def test_train_rows_get_gflops_and_percent_of_peak(monkeypatch):
    """A step of 100 ms: GFLOP/s = counted forward + backward GFLOPs per image x batch / 0.1 s;
    the fast (bf16 autocast) row over the bf16 peak."""
    monkeypatch.setattr(speed, "measure_peak", lambda device, threads: PEAK)
    monkeypatch.setattr(train, "time_calls", lambda fn, warmup, repeats, device: [0.1])
    args = benchmark_args(["--mode", "train", "--model", "tests.helpers.networks:tiny_net", "--size", "32x32",
                           "--batch", "4", "--loss", "ce", "--repeats", "1"])
    r = speed.benchmark(args)
    step = 356352 / 1e9  # tiny_net at 32x32, hand-counted below
    assert r["model"]["gflops_per_step_image"] == pytest.approx(step)
    fp32, previous, fast = r["results"]
    assert [x["name"] for x in r["results"]] == ["ce fp32", "ce fast-previous", "ce fast"]
    assert fp32["gflops_per_s"] == pytest.approx(step * 4 / 0.1)
    assert fp32["peak_dtype"] == "fp32" and fp32["peak_fraction"] == pytest.approx(step * 40 / 100)
    for row in (previous, fast):
        assert row["peak_dtype"] == "bf16" and row["peak_fraction"] == pytest.approx(step * 40 / 400)
    assert r["ratios"]["ce_fast_speedup_over_previous"] == pytest.approx(1.0)
    assert "% peak" in speed.format_report(r)


def test_step_gflops_counts_forward_and_backward():
    """tiny_net at 32x32: conv 3->8 (3x3, stride 2) F1 = 2*16*16*8*27, head 8->11 (1x1) F2 =
    2*16*16*11*8. Backward: the head's input and weight gradients (2 F2), the first conv's weight
    gradient only (F1: the image needs no gradient), so 2 F1 + 3 F2 per image."""
    from tests.helpers.networks import tiny_net

    f1, f2 = 2 * 16 * 16 * 8 * 27, 2 * 16 * 16 * 11 * 8
    model = tiny_net(11)
    assert train.step_gflops(model, [torch.rand(4, 3, 32, 32)]) == pytest.approx((2 * f1 + 3 * f2) / 1e9)
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_no_peak_leaves_the_column_out(monkeypatch):
    monkeypatch.setattr(speed, "measure_peak", lambda *a: pytest.fail("measured despite --no-peak"))
    monkeypatch.setattr(inference, "time_calls", lambda fn, warmup, repeats, device: [0.010])
    r = speed.benchmark(benchmark_args(["--size", "32x32", "--backend", "naive", "--no-peak"]))
    assert r["peak"] is None and r["results"][0]["peak_fraction"] is None
    text = speed.format_report(r)
    assert "% peak" not in text and "peak: not measured (--no-peak)" in text
