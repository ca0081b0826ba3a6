"""The inference benchmark from Python, on a checkpoint."""
from iaseg.speed import format_report

from tests.helpers.speed import benchmark_args, checkpoint_for, random_model


def test_inference_with_a_checkpoint(tmp_path):
    from iaseg.checkpoint import save_checkpoint

    save_checkpoint(checkpoint_for(random_model("erfpspnet"), "erfpspnet"), tmp_path / "m.pt")
    args = benchmark_args(["--checkpoint", str(tmp_path / "m.pt"), "--size", "64x64", "--warmup", "0",
                           "--repeats", "1", "--backend", "eager", "--precision", "fp32"])
    from iaseg.speed import benchmark

    r = benchmark(args)
    assert r["settings"]["weights"] == "checkpoint" and [x["status"] for x in r["results"]] == ["ok", "ok"]
    assert "weights: checkpoint" in format_report(r)
    naive, eager = r["results"]
    assert r["model"]["params"] == 2_483_836 and naive["speedup"] == 1.0
    # the checkpoint's own weights on both rows: eager fp32 (BN folded) gives the naive row's logits
    assert eager["agreement"]["argmax_agreement"] == 1.0 and eager["agreement"]["max_abs_diff"] < 1e-4


def test_each_row_is_reported_as_soon_as_it_is_measured(monkeypatch):
    """on_row hears of row k after the k-th timing and before the next one starts; the fake
    timings make the second row noisy."""
    import iaseg.speed.inference as inference
    from iaseg.speed import benchmark, progress_line

    fake = iter([[0.010] * 4, [0.010, 0.010, 0.030, 0.030]])
    timed = []

    def time_calls(fn, warmup, repeats, device):
        timed.append(1)
        return next(fake)

    monkeypatch.setattr(inference, "time_calls", time_calls)
    heard = []
    args = benchmark_args(["--size", "64x64", "--backend", "eager", "--precision", "fp32"])
    r = benchmark(args, on_row=lambda row, done, total: heard.append((row["name"], done, total, len(timed),
                                                                      progress_line(row, done, total))))
    assert heard == [("naive fp32", 1, 2, 1, "[1/2] naive fp32: 100.00 fps, median 10.00 ms (IQR 0.00), 1.00x"),
                     ("eager fp32", 2, 2, 2, "[2/2] eager fp32: 50.00 fps, median 20.00 ms (IQR 20.00), 0.50x")]
    naive, eager = r["results"]
    assert (naive["noisy"], eager["noisy"]) == (False, True) and eager["spread"] == 1.0
    assert "noisy (IQR above 10% of the median): eager fp32" in format_report(r)
