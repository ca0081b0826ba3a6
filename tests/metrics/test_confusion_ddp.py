import datetime
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from iaseg.metrics import ConfusionMatrix


C, IGNORE = 4, 255


def batch(rank):
    g = torch.Generator().manual_seed(100 + rank)
    target = torch.randint(0, C, (2, 5, 6), generator=g)
    target[:, 0] = IGNORE
    return torch.randint(0, C, (2, 5, 6), generator=g), target


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        cm = ConfusionMatrix(C, IGNORE)
        cm.update(*batch(rank))  # each process sees a different shard
        cm.all_reduce()
        torch.save(cm.matrix, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_reduce_sums_the_matrices_of_two_gloo_processes(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    expected = ConfusionMatrix(C, IGNORE)
    for rank in (0, 1):
        expected.update(*batch(rank))
    assert expected.matrix.sum() == 2 * 2 * 4 * 6  # ignored first rows excluded
    for rank in (0, 1):
        assert torch.equal(torch.load(tmp_path / f"rank{rank}.pt"), expected.matrix)
