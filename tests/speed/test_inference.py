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
