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
