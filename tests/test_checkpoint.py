import pytest
import torch

from iaseg.checkpoint import (CheckpointError, dataset_settings, inference_checkpoint, load_checkpoint,
                              model_from_checkpoint, save_checkpoint)
from iaseg.data import load_description
from iaseg.models import build_model


@pytest.mark.parametrize("half", [False, True])
def test_inference_checkpoint_round_trip(tmp_path, half):
    desc = load_description("camvid")
    model = build_model("erfpspnet", desc.num_classes, bins=(1, 2, 4, 8)).eval()
    path = tmp_path / "w.pt"
    save_checkpoint(inference_checkpoint(model, "erfpspnet", {"bins": (1, 2, 4, 8)}, desc, (64, 64), half=half), path)
    torch.load(path, weights_only=True)  # plain containers only
    restored, meta = model_from_checkpoint(path)
    assert meta.description == desc and meta.input_size == (64, 64) and meta.model_options == {"bins": (1, 2, 4, 8)}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x), atol=5e-2 if half else 0, rtol=0)


def test_corrupt_and_foreign_checkpoints_are_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not an iaseg checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_save_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}, "model_name": "erfpspnet", "v": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint({"model": {}, "model_name": "erfpspnet", "v": Boom()}, path)
    assert load_checkpoint(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_kill_during_save_leaves_previous_checkpoint_valid(tmp_path):
    """SIGKILL a process that keeps rewriting a large checkpoint: the file is always whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}, "model_name": "erfpspnet", "v": -1}, path)
    script = (
        "import sys, torch\n"
        "from iaseg.checkpoint import save_checkpoint\n"
        "big = torch.randn(4_000_000)\n"
        "i = 0\n"
        "while True:\n"
        "    save_checkpoint({'model': {'w': big + i}, 'model_name': 'erfpspnet', 'v': i}, sys.argv[1])\n"
        "    print(i, flush=True)\n"
        "    i += 1\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    proc.stdout.readline()  # at least one save finished; the next ones are in flight
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ckpt = load_checkpoint(path)  # whole and readable, never half-written
    assert ckpt["v"] >= 0
    assert ckpt["model"]["w"].numel() == 4_000_000


def test_dataset_settings_default_to_the_training_data():
    ckpt = {"config": {"data": {"dataset": "camvid", "root": "/train/camvid", "options": {"list_file": False},
                                "description": None}}}
    assert dataset_settings(ckpt) == {"name": "camvid", "root": "/train/camvid", "options": {"list_file": False}}
    assert dataset_settings(ckpt, root="/here") == {"name": "camvid", "root": "/here", "options": {"list_file": False}}
    other = dataset_settings(ckpt, dataset="folder", root="/f", description="my.yaml")
    assert other == {"name": "folder", "root": "/f", "options": {"description": "my.yaml"}}  # not camvid's options
    assert dataset_settings({}, dataset="synthetic")["root"] is None
    assert dataset_settings({}, root="/d", fallback="camvid")["name"] == "camvid"
    with pytest.raises(ValueError, match="records no dataset"):
        dataset_settings({})
    published = {"config": {"data": {"dataset": "camvid", "root": None}}}
    with pytest.raises(ValueError, match="no camvid folder: give --root DIR"):
        dataset_settings(published)


def _checkpoint_with_classes(tmp_path, weights_classes: int, description_classes: int):
    """An inference checkpoint whose description has `description_classes` classes and whose
    weights were trained for `weights_classes`."""
    from iaseg.data.description import DatasetDescription

    names = [f"c{i}" for i in range(description_classes)]
    desc = DatasetDescription(name="toy", classes=tuple(names), palette=tuple((i, i, i) for i in range(len(names))),
                              ignore_index=255, groups={"G1": tuple(names[:1]), "G2": tuple(names[1:])})
    model = build_model("erfpspnet", weights_classes).eval()
    ckpt = inference_checkpoint(model, "erfpspnet", {}, desc, (64, 64))
    path = tmp_path / f"w{weights_classes}.pt"
    save_checkpoint(ckpt, path)
    return path


@pytest.mark.parametrize("weights, expected", [(5, 11), (11, 5), (3, 2)])
def test_class_count_mismatch_is_one_line_naming_file_and_counts(tmp_path, weights, expected):
    path = _checkpoint_with_classes(tmp_path, weights, expected)
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(path)
    msg = str(info.value)
    assert msg == (f"checkpoint {path} holds weights for {weights} classes, expected {expected} "
                   "(use the dataset description the checkpoint was trained with)")
    with pytest.raises(CheckpointError, match=r"checkpoint best\.pt holds weights for"):
        model_from_checkpoint(load_checkpoint(path), source="best.pt")


def test_load_model_state_names_the_file_and_the_keys(tmp_path):
    from iaseg.checkpoint import load_model_state

    model = build_model("erfpspnet", 11)
    state = build_model("erfpspnet", 5).state_dict()
    with pytest.raises(CheckpointError, match=r"^checkpoint run/last\.pt holds weights for 5 classes, expected 11 "):
        load_model_state(model, state, 11, "run/last.pt")    # e.g. a resume with another description
    state = model.state_dict()
    extra = dict(state, **{"extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"do not fit the ERFPSPNet network \(unexpected \['extra.weight'\]\)"):
        load_model_state(model, extra, 11, "x.pt")
    first = next(iter(state))
    with pytest.raises(CheckpointError, match=rf"missing \['{first}'\]"):
        load_model_state(model, {k: v for k, v in state.items() if k != first}, 11, "x.pt")
    with pytest.raises(CheckpointError, match="'model' is not a state_dict of tensors"):
        load_model_state(model, [1, 2], 11, "x.pt")
    load_model_state(model, {k: v + 0 for k, v in state.items()}, 11, "x.pt")  # a fitting state loads


def test_malformed_checkpoint_fields_are_checkpoint_errors(tmp_path):
    path = _checkpoint_with_classes(tmp_path, 3, 3)
    ckpt = load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"^checkpoint c\.pt has no dataset description$"):
        model_from_checkpoint({**ckpt, "description": None}, source="c.pt")
    bad = {**ckpt["description"], "classes": 11}
    with pytest.raises(CheckpointError, match=r"^checkpoint c\.pt: 'classes' must be a list"):
        model_from_checkpoint({**ckpt, "description": bad}, source="c.pt")
    with pytest.raises(CheckpointError, match=r"^checkpoint c\.pt: cannot build its network 'nonet'"):
        model_from_checkpoint({**ckpt, "model_name": "nonet"}, source="c.pt")


def _saved(tmp_path, name, **changes):
    model = build_model("erfpspnet", 11)
    ckpt = inference_checkpoint(model, "erfpspnet", {}, load_description("camvid"), (64, 64), None)
    ckpt.update(changes)
    save_checkpoint(ckpt, tmp_path / name)
    return tmp_path / name, ckpt


def test_a_checkpoint_with_non_finite_weights_is_not_a_model(tmp_path):
    path, ckpt = _saved(tmp_path, "ok.pt")
    state = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    nan_path, _ = _saved(tmp_path, "nan.pt", model=state)
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(nan_path)
    n = sum(1 for v in state.values() if v.is_floating_point())
    assert str(info.value) == (f"checkpoint {nan_path} holds non-finite weights (encoder.layers.0.conv.weight and "
                               f"{n - 1} more): not a usable model")
    one_inf = dict(ckpt["model"])
    one_inf["encoder.layers.0.conv.weight"] = one_inf["encoder.layers.0.conv.weight"].clone()
    one_inf["encoder.layers.0.conv.weight"].view(-1)[3] = float("inf")
    inf_path, _ = _saved(tmp_path, "inf.pt", model=one_inf)
    with pytest.raises(CheckpointError, match=r"holds non-finite weights \(encoder.layers.0.conv.weight\): "):
        model_from_checkpoint(inf_path)
    model_from_checkpoint(path)  # the finite one loads


@pytest.mark.parametrize("key, value", [("input_size", [0, 64]), ("input_size", [64]), ("input_size", "64x64"),
                                        ("input_size", [64.5, 64]), ("spatial_size", [-1, 5])])
def test_a_checkpoint_with_a_bad_size_is_refused_naming_the_file(tmp_path, key, value):
    path, _ = _saved(tmp_path, "bad.pt", **{key: value})
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(path)
    assert str(info.value) == f"checkpoint {path}: {key} {value!r} is not [height, width] of positive integers"
