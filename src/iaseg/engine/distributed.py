"""torchrun / DistributedDataParallel helpers (PyTorch's own engine, nothing custom).

`torchrun --nproc_per_node=N -m iaseg train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; a plain
`iaseg train` runs as a single process with no process group (so SyncBatchNorm is never used there).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_hint: str = "auto") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_hint != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local)


def resolve_device(spec: str, info: DistInfo) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and info.enabled:
        spec = f"cuda:{info.local_rank}"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


# what the collectives of gloo / NCCL say when a peer process is gone (killed, crashed)
_PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "gloo", "NCCL",
              "ProcessGroup", "Socket Timeout")


def peer_failure(error: BaseException) -> bool:
    """Whether `error` is a collective that failed because another process of the group went away."""
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(error, dist_error):
        return True
    return isinstance(error, RuntimeError) and any(s in str(error) for s in _PEER_LOST)


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
