"""`iaseg benchmark`: JSON schema, tables, options, errors (no timing assertions)."""
import json

import pytest
import torch

from iaseg import cli
from iaseg.cli.benchmark import command_line
from iaseg.speed import SCHEMA

from tests.helpers.speed import benchmark_args


LATENCY_KEYS = {"median", "p25", "p75", "iqr", "min", "max", "mean", "n"}
MACHINE_KEYS = {"cpu", "cpu_cores", "torch_threads", "torch", "gpu", "device", "onnxruntime", "cpu_bf16"}


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    """--threads changes PyTorch's global thread count: restore it for the other tests. The
    matmul peak is measured on small matrices (seconds saved; the numbers are not asserted)."""
    import iaseg.speed.peak

    monkeypatch.setattr(iaseg.speed.peak, "DEFAULT_SIZE", 128)
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_inference_json_schema_all_backends(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = cli.main(["benchmark", "--size", "64x64", "--warmup", "0", "--repeats", "2", "--threads", "1",
                   "--backend", "all", "--no-compile", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["schema"] == SCHEMA and r["mode"] == "inference"
    assert MACHINE_KEYS <= set(r["machine"]) and r["machine"]["torch_threads"] == 1
    assert r["command"].startswith("iaseg benchmark --mode inference --model erfpspnet")
    assert "--size 64x64" in r["command"] and "--no-compile" in r["command"]
    s = r["settings"]
    assert (s["model"], s["size"], s["batch"]) == ("erfpspnet", [64, 64], 1)
    assert (s["repeats"], s["warmup"], s["threads"]) == (2, 0, 1)
    assert r["model"]["params"] == 2483836 and r["model"]["gflops_per_image"] > 0
    rows = r["results"]
    assert rows[0]["backend"] == "naive" and rows[0]["speedup"] == pytest.approx(1.0)
    names = [x["name"] for x in rows]
    assert {"eager fp32", "onnxruntime fp32", "onnxruntime int8", "torchscript fp32"} <= set(names)
    from iaseg.inference import openvino_available
    if openvino_available():  # OpenVINO rows side by side, and it is the CPU default then
        assert "openvino fp32" in names and any(x["default"] and x["backend"] == "openvino" for x in rows)
    assert not any(n.startswith("compile") for n in names)
    assert sum(x["default"] for x in rows) == 1
    for row in rows:
        assert row["status"] == "ok", row
        assert LATENCY_KEYS == set(row["latency_ms"]) and row["latency_ms"]["n"] == 2
        assert row["fps"] > 0 and row["gflops_per_s"] > 0 and row["speedup"] > 0 and row["setup_s"] >= 0
        assert set(row["agreement"]) == {"argmax_agreement", "max_abs_diff", "near_ties"}
        assert row["options"]["backend"] == row["backend"] and row["options"]["precision"] == row["precision"]
    fp32 = [x for x in rows if x["precision"] == "fp32"]
    assert all(x["agreement"]["argmax_agreement"] > 0.999 for x in fp32)
    for n in names:
        assert n in text
    assert "speed-up" in text and "GFLOP/s" in text and "machine:" in text
    # the matmul peak, measured once before the rows; each row's fraction of its precision's peak
    assert set(r["peak"]) == {"fp32", "bf16", "int8"} and r["peak"]["fp32"]["gflops"] > 0
    assert "peak (matmul 128^3, median of 5): fp32" in text and "% peak" in text
    for row in rows:
        assert row["peak_dtype"] == row["precision"]
        if r["peak"][row["peak_dtype"]]["status"] == "ok":
            assert row["peak_fraction"] == pytest.approx(row["gflops_per_s"] / r["peak"][row["precision"]]["gflops"])
    # int8 rows without weights and labels: the accuracy check says it did not run, and how to run it
    assert r["accuracy_check"]["status"] == "not run"
    assert ("int8 accuracy check not run: it needs trained weights (--checkpoint) and a labelled split "
            "(--dataset, --root); to score fp32 and each int8 path on a labelled split: iaseg benchmark ... "
            "--checkpoint CKPT --dataset NAME --root DIR [--split val] [--accuracy-images N]") in text


def test_inference_single_backend_bierf(tmp_path):
    out = tmp_path / "r.json"
    rc = cli.main(["benchmark", "--model", "bierfpspnet", "--size", "64x64", "--spatial-size", "128x128",
                   "--batch", "2", "--warmup", "1", "--repeats", "1", "--backend", "onnxruntime",
                   "--precision", "fp32", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert [x["name"] for x in r["results"]] == ["naive fp32", "onnxruntime fp32"]
    assert r["settings"]["spatial_size"] == [128, 128] and r["settings"]["batch"] == 2
    assert r["results"][1]["fps"] == pytest.approx(2000 / r["results"][1]["latency_ms"]["median"])


def test_train_json_schema(tmp_path, capsys):
    out = tmp_path / "t.json"
    rc = cli.main(["benchmark", "--mode", "train", "--size", "64x64", "--batch", "2", "--warmup", "0",
                   "--repeats", "1", "--threads", "1", "--loss", "all", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["mode"] == "train" and r["settings"]["batch"] == 2 and r["settings"]["optimizer"] == "Adam"
    rows = {x["name"]: x for x in r["results"]}
    assert set(rows) == {f"{loss} {p}" for loss in ("ce", "weighted_ce", "ial")
                         for p in ("fp32", "fast-previous", "fast")}
    for name, row in rows.items():
        if row["status"] == "skipped":  # IAL lives in iaseg.losses (another module)
            assert row["loss"] == "ial" and "iaseg.losses" in row["reason"]
            continue
        assert row["status"] == "ok" and LATENCY_KEYS == set(row["step_ms"]) and row["images_per_s"] > 0
        assert row["channels_last"] == ("fast" in name) and "speedup" in row
        assert row["loss_impl"] in ("iaseg.losses", "torch.nn.CrossEntropyLoss")
    assert rows["ce fast"]["precision"] == rows["ce fast-previous"]["precision"] == "bf16-autocast"
    speedups = {f"{loss}_fast_speedup_over_previous" for loss in ("ce", "weighted_ce", "ial")}
    if rows["ial fp32"]["status"] == "ok":
        assert set(r["ratios"]) == {"ial_over_weighted_ce_fp32", "ial_over_weighted_ce_fast-previous",
                                    "ial_over_weighted_ce_fast"} | speedups
    for loss in ("ce", "weighted_ce"):
        ratio = rows[f"{loss} fast"]["images_per_s"] / rows[f"{loss} fast-previous"]["images_per_s"]
        assert r["ratios"][f"{loss}_fast_speedup_over_previous"] == pytest.approx(ratio)
    assert "fast speedup over previous" in text
    assert "training step" in text


def test_cli_errors(capsys):
    cases = [
        (["--backend", "all", "--precision", "int8"], "needs one --backend"),
        (["--batch", "0"], "--batch must be >= 1"),
        (["--mode", "pipeline"], "--dataset NAME and --root DIR"),
        (["--num-classes", "7"], "--num-classes 7"),
        (["--repeats", "0"], "--repeats must be >= 1"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "no CUDA device"))
    for extra, message in cases:
        rc = cli.main(["benchmark", "--size", "64x64", "--repeats", "1", "--warmup", "0", *extra])
        assert rc == 2 and message in capsys.readouterr().err


def test_command_line_reproduces_the_settings():
    args = benchmark_args(["--mode", "train", "--size", "360x480", "--batch", "8", "--loss", "ial", "--threads", "2"])
    cmd = command_line(args)
    assert cmd.startswith("iaseg benchmark --mode train")
    for part in ("--size 360x480", "--batch 8", "--loss ial", "--threads 2", "--train-precision all"):
        assert part in cmd
    assert "--workers" not in cmd
    assert benchmark_args(cmd.split()[2:]).size == (360, 480)


def test_pipeline_mode_times_the_loader(tmp_path, monkeypatch, capsys):
    import iaseg.data

    built = {}

    def build_dataset(name, root, split):
        built["dataset"] = (name, str(root), split)
        return list(range(10))

    def build_loader(dataset, batch_size, num_workers):
        built["loader"] = (batch_size, num_workers)
        return [torch.zeros(batch_size, 3, 8, 8) for _ in range(len(dataset) // batch_size)]

    monkeypatch.setattr(iaseg.data, "build_dataset", build_dataset, raising=False)
    monkeypatch.setattr(iaseg.data, "build_loader", build_loader, raising=False)
    out = tmp_path / "p.json"
    rc = cli.main(["benchmark", "--mode", "pipeline", "--dataset", "camvid", "--root", "/data", "--batch", "4",
                   "--workers", "0", "--warmup", "1", "--repeats", "3", "--json", str(out)])
    assert rc == 0 and "images/s" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert built == {"dataset": ("camvid", "/data", "train"), "loader": (4, 0)}
    assert r["mode"] == "pipeline" and r["settings"]["workers"] == 0 and r["settings"]["batch"] == 4
    (row,) = r["results"]
    assert row["status"] == "ok" and LATENCY_KEYS == set(row["batch_ms"]) and row["batch_ms"]["n"] == 3
    assert row["images_per_s"] > 0 and "--dataset camvid" in r["command"]


def test_train_mode_uses_iaseg_losses_and_reports_the_ial_ratio(tmp_path, monkeypatch):
    import sys
    import types

    seen = []

    def build_loss(name, class_weights=None, groups=None, ignore_index=255):
        seen.append((name, None if class_weights is None else tuple(class_weights.shape), groups, ignore_index))
        return torch.nn.CrossEntropyLoss(weight=class_weights, ignore_index=ignore_index)

    monkeypatch.setitem(sys.modules, "iaseg.losses", types.SimpleNamespace(build_loss=build_loss))
    out = tmp_path / "t.json"
    rc = cli.main(["benchmark", "--mode", "train", "--size", "64x64", "--batch", "1", "--warmup", "0",
                   "--repeats", "1", "--train-precision", "fp32", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert [x["status"] for x in r["results"]] == ["ok"] * 3
    assert {x["loss_impl"] for x in r["results"]} == {"iaseg.losses"}
    assert set(r["ratios"]) == {"ial_over_weighted_ce_fp32"} and r["ratios"]["ial_over_weighted_ce_fp32"] > 0
    assert [s[0] for s in seen] == ["ce", "weighted_ce", "ial"]
    assert seen[1][1] == (11,) and seen[2][2] == [[0, 1, 5], [2, 3, 4, 7], [6, 8, 9, 10]] and seen[2][3] == 11


def test_rows_are_printed_as_measured_with_noise_warnings(monkeypatch, capsys):
    import iaseg.speed.train as train

    fake = iter([[0.010] * 3, [0.010, 0.020, 0.040]])   # ce fp32 steady; weighted_ce fp32: IQR 15 of 20 ms
    monkeypatch.setattr(train, "time_calls", lambda fn, warmup, repeats, device: next(fake))
    assert cli.main(["benchmark", "--mode", "train", "--size", "32x32", "--batch", "1", "--warmup", "0",
                     "--repeats", "3", "--loss", "ce", "--train-precision", "fp32", "--no-peak"]) == 0
    assert cli.main(["benchmark", "--mode", "train", "--size", "32x32", "--batch", "1", "--warmup", "0",
                     "--repeats", "3", "--loss", "weighted_ce", "--train-precision", "fp32", "--no-peak"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "benchmarking train speed; each row is printed as soon as it is measured",
        "[1/1] ce fp32: 100.00 images/s, median 10.00 ms (IQR 0.00), 1.00x",
        "benchmarking train speed; each row is printed as soon as it is measured",
        "[1/1] weighted_ce fp32: 50.00 images/s, median 20.00 ms (IQR 15.00), 1.00x",
        "warning: weighted_ce fp32 is noisy: IQR 15.00 ms is 75% of its median 20.00 ms (above 10%): rerun on an "
        "idle machine or with more --repeats before comparing it"]
    assert "noisy (IQR above 10% of the median): weighted_ce fp32" in captured.out


def test_any_network_can_be_benchmarked(capsys):
    assert cli.main(["benchmark", "--model", "tests.helpers.networks:tiny_net", "--size", "32x32", "--warmup", "0",
                     "--repeats", "1", "--backend", "eager", "--precision", "fp32"]) == 0
    assert "tests.helpers.networks:tiny_net 32x32" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["benchmark", "--model", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


INT8_BACKENDS = [pytest.param("onnxruntime", marks=pytest.mark.skipif(not _available("onnxruntime"),
                                                                     reason="onnxruntime is not installed")),
                 pytest.param("openvino", marks=pytest.mark.skipif(not (_available("openvino") and _available("nncf")),
                                                                  reason="openvino/nncf are not installed"))]


def _accuracy_args(checkpoint, backend, out, *extra):
    return ["benchmark", "--checkpoint", str(checkpoint), "--size", "64x64", "--backend", backend, "--precision",
            "int8", "--warmup", "0", "--repeats", "1", "--no-peak", "--dataset", "synthetic",
            "--accuracy-images", "2", "--calib-images", "2", "--json", str(out), *extra]


@pytest.mark.parametrize("backend", INT8_BACKENDS)
def test_int8_accuracy_check_on_a_labelled_split(backend, tmp_path, checkpoints, capsys):
    """fp32 (the naive row) and the int8 path scored on 2 synthetic val images with the guard's
    figures; the reference equals the plain model's own split_accuracy on the same samples."""
    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.inference import mean_iou, split_accuracy
    from iaseg.inference.images import dataset_samples
    from iaseg.speed import NaiveRunner

    out = tmp_path / "r.json"
    assert cli.main(_accuracy_args(checkpoints["erfpspnet"], backend, out)) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    check = r["accuracy_check"]
    assert check == {"status": "run", "reference": "naive fp32", "dataset": "synthetic", "split": "val", "images": 2,
                     "limits": {"miou_drop": 0.5, "top_group_recall_drop": 1.0},
                     "calibration": {"dataset": "synthetic", "split": "train", "images": 2}}
    naive, int8 = r["results"]
    assert "accuracy" not in naive
    a = int8["accuracy"]
    assert set(a) == {"reference", "candidate", "top_group", "miou_change", "top_group_recall_change", "passed",
                      "images"} and a["images"] == 2 and a["top_group"] == "G3"
    assert a["miou_change"] == pytest.approx(a["candidate"]["miou"] - a["reference"]["miou"])
    assert a["passed"] == (a["miou_change"] >= -0.5 and not a["top_group_recall_change"] < -1.0)
    model, meta = model_from_checkpoint(str(checkpoints["erfpspnet"]))
    meta = meta.with_(input_size=(64, 64))
    samples = dataset_samples("synthetic", None, "val", meta, 2)
    conf = mean_iou(NaiveRunner(model, torch.device("cpu")), samples, 11, 11)["confusion"]
    assert a["reference"] == pytest.approx(split_accuracy(conf, meta.description))
    assert "int8 accuracy on synthetic val (2 labelled images; reference naive fp32; int8 calibrated on 2 synthetic " \
           "train images; limits: mean IoU -0.5, top-group recall -1 points):" in text
    ref, cand = a["reference"], a["candidate"]
    assert (f"  {backend} int8: mean IoU fp32 {ref['miou']:.2f}, int8 {cand['miou']:.2f} "
            f"(change {a['miou_change']:+.2f} points); G3 recall fp32 {ref['top_group_recall']:.2f}, "
            f"int8 {cand['top_group_recall']:.2f} (change {a['top_group_recall_change']:+.2f} points): "
            f"{'PASS' if a['passed'] else 'FAIL'}") in text
    assert "--dataset synthetic" in r["command"] and "--accuracy-images 2" in r["command"]


@pytest.mark.parametrize("backend", INT8_BACKENDS[:1])
def test_an_int8_path_that_fails_the_guard_is_reported_not_raised(backend, tmp_path, checkpoints, monkeypatch,
                                                                   capsys):
    """An int8 model that predicts one class everywhere: FAIL below the table, exit status 0."""
    import iaseg.speed.inference as inference

    scored = inference.int8_accuracy

    def broken(reference, runner, samples, description, what):
        def one_class(*inputs):
            logits = torch.zeros(inputs[0].shape[0], 11, *inputs[0].shape[-2:])
            logits[:, 10] = 1
            return logits
        return scored(reference, one_class, samples, description, what)

    monkeypatch.setattr(inference, "int8_accuracy", broken)
    out = tmp_path / "r.json"
    assert cli.main(_accuracy_args(checkpoints["erfpspnet"], backend, out, "--accuracy-images", "3")) == 0
    text = capsys.readouterr().out
    a = json.loads(out.read_text())["results"][1]["accuracy"]
    assert a["passed"] is False and a["images"] == 3 and a["candidate"]["miou"] < a["reference"]["miou"] - 0.5
    assert f"  {backend} int8: mean IoU fp32" in text and text.rstrip().splitlines()[-2].endswith(": FAIL")


@pytest.mark.parametrize("backend", INT8_BACKENDS[1:])
def test_a_checked_int8_ir_beside_the_checkpoint_is_the_default_row(backend, tmp_path, checkpoints, capsys):
    """load_runner(checkpoint) runs a checked int8 IR beside it at its size: the benchmark times
    that very file as the default row and scores it with the other int8 rows."""
    import shutil

    from iaseg.checkpoint import model_from_checkpoint
    from iaseg.inference import openvino as ovb
    from iaseg.inference.checked_int8 import accuracy_record, checkpoint_weights_digest
    from iaseg.inference.probe import structured_scenes

    ckpt = tmp_path / "ce.pt"
    shutil.copy(checkpoints["erfpspnet"], ckpt)
    model, meta = model_from_checkpoint(ckpt)
    images, _ = structured_scenes(2, (64, 64), 11, seed=3)
    ir = ovb.export_openvino(model, meta.with_(input_size=(64, 64)), tmp_path / "ce.int8.xml", precision="int8",
                             calibration=[(images[i:i + 1],) for i in range(2)])
    guard = {"passed": True, "images": 2, "top_group": "G3", "miou_change": 0.0, "top_group_recall_change": 0.0,
             "reference": {}, "candidate": {}}
    ovb.record_accuracy_check(ir, accuracy_record(guard, "synthetic val", checkpoint_weights_digest(model)))
    out = tmp_path / "r.json"
    assert cli.main(_accuracy_args(ckpt, backend, out)) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["results"]
    assert [(r["name"], r["default"]) for r in rows] == [("naive fp32", False), ("openvino int8", False),
                                                          ("openvino int8 ce.int8.xml", True)]
    assert "accuracy" in rows[2] and "openvino int8 ce.int8.xml (default)" in text
    # at another size the IR does not fit: the usual default, no extra row
    assert cli.main(_accuracy_args(ckpt, backend, out, "--size", "64x96")) == 0
    assert [r["name"] for r in json.loads(out.read_text())["results"]] == ["naive fp32", "openvino int8"]


@pytest.mark.parametrize("name", ["erfpspnet", "bierfpspnet"])
def test_a_checkpoint_is_timed_at_its_own_sizes_unless_told(name, tmp_path, checkpoints, capsys):
    """--checkpoint without --size: the network as it was saved (context and spatial size); a
    spatial size belongs to its context size, so another --size gets the default ratio."""
    from iaseg.models import default_spatial_size

    out = tmp_path / "r.json"
    base = ["benchmark", "--checkpoint", str(checkpoints[name]), "--backend", "naive", "--warmup", "0",
            "--repeats", "1", "--threads", "1", "--no-peak", "--json", str(out)]
    spatial = [128, 128] if name == "bierfpspnet" else None  # tests.helpers.speed: SIZE 64x64, SPATIAL 128x128
    for extra, size, want_spatial in (([], [64, 64], spatial),
                                      (["--size", "32x48"], [32, 48],
                                       list(default_spatial_size((32, 48))) if spatial else None)):
        assert cli.main(base + extra) == 0
        s = json.loads(out.read_text())["settings"]
        assert (s["model"], s["size"], s["spatial_size"]) == (name, size, want_spatial)
    capsys.readouterr()


def test_the_accuracy_check_says_why_it_did_not_run(capsys):
    """Without weights or without a labelled split: one line says why and how to run it; no
    int8 row: no check at all."""
    from iaseg.speed.inference import _accuracy_setup, format_accuracy_check

    int8 = [("naive", "fp32", {}), ("onnxruntime", "int8", {})]
    for extra, reason in ((["--checkpoint", "m.pt"], "needs a labelled split (--dataset, --root)"),
                          (["--dataset", "synthetic"], "needs trained weights (--checkpoint)")):
        check, labelled, calib = _accuracy_setup(benchmark_args(extra), None, int8)
        assert check["status"] == "not run" and check["reason"] == reason and labelled == [] and calib is None
        assert format_accuracy_check({"accuracy_check": check, "results": []}) == (
            f"\nint8 accuracy check not run: it {reason}; to score fp32 and each int8 path on a labelled split: "
            "iaseg benchmark ... --checkpoint CKPT --dataset NAME --root DIR [--split val] [--accuracy-images N]")
    assert _accuracy_setup(benchmark_args(["--dataset", "synthetic", "--checkpoint", "m.pt"]), None,
                           int8[:1]) == (None, [], None)
    assert format_accuracy_check({"accuracy_check": None, "results": []}) == ""
    assert cli.main(["benchmark", "--accuracy-images", "0"]) == 2
    assert "--accuracy-images and --calib-images must be >= 1" in capsys.readouterr().err


def test_pipeline_mode_with_a_config_times_its_loader_without_and_with_augmentation(tmp_path, capsys):
    pytest.importorskip("kornia")
    cfg = tmp_path / "aug.yaml"
    cfg.write_text("model: {name: erfpspnet}\n"
                   "data: {dataset: synthetic, size: [64, 96], options: {length: 8},\n"
                   "       augment: {crop: [32, 48], scale: [0.5, 2.0]}}\n")
    out = tmp_path / "p.json"
    rc = cli.main(["benchmark", "--mode", "pipeline", "--config", str(cfg), "--batch", "2", "--workers", "0",
                   "--warmup", "1", "--repeats", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "no augmentation" in text and "crop=32x48" in text
    r = json.loads(out.read_text())
    assert [row["status"] for row in r["results"]] == ["ok", "ok"]
    assert r["settings"]["dataset"] == "synthetic" and r["settings"]["config"] == str(cfg)
    assert f"--config {cfg}" in r["command"]
