"""Collate, seeded loaders, spatial items, worker errors and signals."""
import os
import signal
import subprocess
import time

import pytest
import torch

from iaseg.data import build_dataset, build_loader, collate, default_num_workers

from tests.helpers.data import camvid_tree


def _items(n=3, h=8, w=12):
    return [{"image": torch.rand(3, h, w), "label": torch.randint(0, 11, (h, w)), "path": f"p{i}"} for i in range(n)]


def test_collate_stacks_dicts():
    items = _items()
    batch = collate(items)
    assert batch["image"].shape == (3, 3, 8, 12) and batch["label"].dtype == torch.int64
    assert batch["path"] == ["p0", "p1", "p2"]
    assert torch.equal(batch["image"][1], items[1]["image"])
    with pytest.raises(ValueError, match=r"different 'image' shapes .* give the dataset a fixed size"):
        collate(_items(1) + _items(1, h=9))
    with pytest.raises(ValueError, match="empty batch"):
        collate([])


def test_loader_seeded_shuffling_and_workers():
    ds = build_dataset("synthetic", None, "val", size=(32, 48), length=12)

    def order(seed, workers):
        loader = build_loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=seed)
        return [p for batch in loader for p in batch["path"]]

    first = order(0, 0)
    assert sorted(first) == sorted(ds[i]["path"] for i in range(12))
    assert order(0, 0) == first and order(0, 2) == first           # workers do not change the order
    assert order(1, 0) != first
    loader = build_loader(ds, batch_size=5, shuffle=False, num_workers=2, drop_last=True)
    assert loader.persistent_workers and not loader.pin_memory or torch.cuda.is_available()
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["image"].shape == (5, 3, 32, 48)
    assert batches[0]["path"][0] == ds[0]["path"]
    sampler = torch.utils.data.SubsetRandomSampler([3, 5], generator=torch.Generator().manual_seed(0))
    got = [p for b in build_loader(ds, 2, shuffle=True, num_workers=0, sampler=sampler) for p in b["path"]]
    assert sorted(got) == sorted([ds[3]["path"], ds[5]["path"]])
    assert 1 <= default_num_workers() <= 2
    with pytest.raises(ValueError, match="batch_size"):
        build_loader(ds, 0)


def test_loader_spatial_items():
    ds = build_dataset("synthetic", None, "val", size=(24, 32), spatial_size=(48, 64), length=4)
    batch = next(iter(build_loader(ds, 4, num_workers=0)))
    assert batch["spatial"].shape == (4, 3, 48, 64) and batch["image"].shape == (4, 3, 24, 32)
    # the same scene twice: drawn at the spatial size, the context image is its antialiased 2x shrink
    shrunk = torch.nn.functional.avg_pool2d(batch["spatial"], 2)
    assert (shrunk - batch["image"]).abs().mean() < 0.02
    for i in range(4):
        assert torch.equal(batch["spatial"][i], ds[i]["spatial"]) and torch.equal(batch["label"][i], ds[i]["label"])


def test_worker_errors_keep_the_one_line_message(tmp_path):
    from tests.helpers.data import truncate
    from iaseg.data import DatasetError

    root = camvid_tree(tmp_path)
    truncate(root / "train/b.png")
    loader = build_loader(build_dataset("camvid", root, "train"), batch_size=1, num_workers=2)
    with pytest.raises(DatasetError) as info:
        list(loader)
    message = str(info.value)
    del info    # the traceback refers to this frame: a cycle only the slow garbage collector would free
    assert "\n" not in message and message.startswith(str(root / "train/b.png") + ": unreadable or truncated image")
    camvid_tree(root)                                   # repaired: the same (persistent) loader works again
    assert [p for b in loader for p in b["path"]] == [str(root / f"train/{n}.png") for n in "abc"]


def test_seeded_items_draw_from_seed_epoch_and_index_only():
    """Augmented items are the same whatever the worker count and the order they are asked
    for, and building them leaves the caller's RNG alone."""
    from iaseg.data.augment import sample_seed
    from iaseg.data.loader import SeededItems

    ds = build_dataset("synthetic", None, "train", size=(32, 32), length=6, augment=True)
    view = SeededItems(ds, seed=3, epoch=1)
    state = torch.get_rng_state()
    items = [view[i] for i in (5, 0, 3)]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(sample_seed(3, 1, 0))
    direct = ds[0]
    assert torch.equal(items[1]["image"], direct["image"]) and torch.equal(items[1]["label"], direct["label"])
    assert not torch.equal(SeededItems(ds, 3, 2)[0]["image"], items[1]["image"])   # another epoch, other draws
    batches = {w: [b["image"] for b in build_loader(view, batch_size=2, num_workers=w)] for w in (0, 2)}
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2]))
    assert torch.equal(batches[0][2][1], items[0]["image"]) and view.description is ds.description
    assert len({sample_seed(0, e, i) for e in range(3) for i in range(100)}) == 300


class _Pids(torch.utils.data.Dataset):
    """Items saying which process built them and whether it ignores SIGINT there."""

    def __len__(self):
        return 6

    def __getitem__(self, index):
        import signal

        return {"pid": torch.tensor(os.getpid()), "sigint_ignored": torch.tensor(signal.getsignal(signal.SIGINT)
                                                                                   == signal.SIG_IGN)}


@pytest.mark.skipif(not hasattr(signal, "sigwaitinfo"), reason="needs sigwaitinfo (Linux)")
def test_loader_workers_leave_ctrl_c_and_sigterm_to_the_main_process():
    """SIGINT/SIGTERM sent to the process group reach the workers too: a worker ignores them
    (the main process stops cleanly; a worker killed mid-batch would stop it with torch's error),
    but its parent's SIGTERM (torch's last resort, multiprocessing's at exit) still ends it. The
    main process keeps its handlers and nothing stays blocked there."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    loader = build_loader(_Pids(), batch_size=1, num_workers=1)
    items = iter(loader)
    first = next(items)
    worker = int(first["pid"][0])
    assert worker != os.getpid() and bool(first["sigint_ignored"][0])
    for sig in ("-TERM", "-INT"):   # sent by another process, as `kill -TERM -PGID` does
        subprocess.run(["kill", sig, str(worker)], check=True)
    time.sleep(0.5)
    assert [int(b["pid"][0]) for b in items] == [worker] * 5     # the same worker served the rest
    process = loader._iterator._workers[0]
    assert process.is_alive()
    process.terminate()             # the parent's SIGTERM
    process.join(timeout=60)
    assert not process.is_alive() and process.exitcode == 0
    assert {s: signal.getsignal(s) for s in before} == before
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    in_process = next(iter(build_loader(_Pids(), batch_size=1, num_workers=0)))
    assert int(in_process["pid"][0]) == os.getpid()
